"""Digest content for previews and web versions, from the campaign and its stored links."""

from collections.abc import Mapping
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.amplifiers import service as amplifiers
from app.campaigns import service as campaigns
from app.core.errors import InvalidInput
from app.core.public_links import (
    DIGEST,
    PREFERENCES,
    UNSUBSCRIBE,
    preferences_url,
    redirect_url,
    stand_in_url,
    unsubscribe_url,
    web_version_url,
)
from app.core.security import Signer
from app.models import Campaign, Link, LinkKind, Organization
from app.sending import service
from app.sending.links import MessageLinkSource
from app.sending.networks import SharePost, share_url
from app.sending.render import CampaignContent, Recipient, render_digest


async def campaign_content(session: AsyncSession, campaign: Campaign) -> CampaignContent:
    org_name = await session.scalar(
        select(Organization.name).where(Organization.id == campaign.organization_id)
    )
    return CampaignContent.of(campaign, campaign.messages, org_name or "")


class VariantOutOfRange(InvalidInput):
    pass


class DeliveryLinks(NamedTuple):
    # (message id, network) → tracked share link
    share_urls: dict[tuple[int, str], str]
    # message id → the copy variant the amplifier got (absent: the base text)
    variants: dict[int, int]


async def delivery_links(
    session: AsyncSession, *, delivery_id: int, public_url: str
) -> DeliveryLinks:
    rows = await session.execute(
        select(Link.message_id, Link.network, Link.code, Link.variant).where(
            Link.delivery_id == delivery_id, Link.kind == LinkKind.SHARE
        )
    )
    links = DeliveryLinks({}, {})
    for message_id, network, code, variant in rows.all():
        links.share_urls[(message_id, network)] = redirect_url(public_url, code)
        if variant:
            links.variants[message_id] = variant
    return links


def variants_to_show(campaign: Campaign, variant: int) -> dict[int, int]:
    """Variant `variant` of every message that has it (the others show their base text), or
    VariantOutOfRange when no message has that many."""
    most = max((1 + len(m.variants or []) for m in campaign.messages), default=1)
    if not 0 <= variant < most:
        raise VariantOutOfRange(
            f"Variant {variant} does not exist: the campaign's messages have variants 0 to "
            f"{most - 1}.",
            errors=[{"loc": ["query", "variant"], "msg": f"must be between 0 and {most - 1}"}],
        )
    return {m.id: variant for m in campaign.messages if variant <= len(m.variants or [])}


def _stand_in_share_urls(
    campaign: Campaign,
    networks: list[str],
    public_url: str,
    locale: str,
    variants: Mapping[int, int],
) -> dict[tuple[int, str], str]:
    # Before sending no link exists yet: show the share intents with a stand-in visit link.
    sources = [
        MessageLinkSource.of(m).with_variant(variants.get(m.id, 0)).localized(locale)
        for m in campaign.messages
    ]
    return {
        (m.id, n): share_url(
            n,
            SharePost(
                text=m.network_text.get(n) or m.text,
                visit_url=stand_in_url(public_url),
                hashtags=m.hashtags,
            ),
        )
        for m in sources
        for n in networks
    }


async def preview_html(
    session: AsyncSession,
    *,
    organization_id: int,
    campaign_id: int,
    amplifier_id: int | None,
    public_url: str,
    signer: Signer,
    locale: str | None = None,
    variant: int | None = None,
) -> str:
    """The digest's HTML; `locale` overrides the amplifier's language (chrome and content),
    `variant` the copy variant of every message (with stand-in share links)."""
    campaign = await campaigns.get(
        session, organization_id=organization_id, campaign_id=campaign_id
    )
    chosen = variants_to_show(campaign, variant) if variant is not None else None
    name, email, amplifier_networks = "Alex Example", "alex@example.com", []
    language = "en"
    if amplifier_id is not None:
        amplifier = await amplifiers.get(
            session, organization_id=organization_id, amplifier_id=amplifier_id
        )
        name, email, amplifier_networks = amplifier.name or "", amplifier.email, amplifier.networks
        language = amplifier.locale
    language = locale or language
    networks = service.effective_networks(campaign.networks, amplifier_networks or [])
    delivery = (
        await service.delivery_for_amplifier(
            session, campaign_id=campaign.id, amplifier_id=amplifier_id
        )
        if amplifier_id is not None
        else None
    )
    links = None
    web = stand_in_url(public_url, DIGEST)
    if delivery is not None:
        links = await delivery_links(session, delivery_id=delivery.id, public_url=public_url)
        networks = list(dict.fromkeys(n for _, n in links.share_urls))
        web = web_version_url(public_url, signer, delivery.id)
    if links is not None and chosen is None:
        shares, variants = links.share_urls, links.variants
    else:
        variants = chosen or {}
        shares = _stand_in_share_urls(campaign, networks, public_url, language, variants)
    unsubscribe = (
        unsubscribe_url(public_url, signer, amplifier_id)
        if amplifier_id
        else stand_in_url(public_url, UNSUBSCRIBE)
    )
    preferences = (
        preferences_url(public_url, signer, amplifier_id)
        if amplifier_id
        else stand_in_url(public_url, PREFERENCES)
    )
    rendered = render_digest(
        await campaign_content(session, campaign),
        networks,
        Recipient(
            name=name,
            email=email,
            share_urls=shares,
            web_version_url=web,
            unsubscribe_url=unsubscribe,
            locale=language,
            preferences_url=preferences,
        ),
        preview=True,
        variants=variants,
    )
    return rendered.html
