"""What the amplifier pages show and do, reached by a signed token instead of an API key."""

from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.amplifiers import service as amplifiers
from app.core.errors import NotFound
from app.core.public_links import DIGEST, UNSUBSCRIBE, read_page_token, unsubscribe_url
from app.core.security import Signer
from app.models import Amplifier, AmplifierStatus, Campaign, Delivery, Organization
from app.sending.preview import campaign_content, share_urls_of_delivery
from app.sending.render import digest_context


class PageNotFound(NotFound):
    """A bad or foreign token, or what it names is gone: the same answer for both."""


class Subscriber(TypedDict):
    """Who an unsubscribe token names, as its pages show them."""

    amplifier_id: int
    email_masked: str
    organization_name: str


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


async def web_version(
    session: AsyncSession, *, signer: Signer, public_url: str, token: str
) -> dict[str, Any]:
    """The template context of a digest's web version, with the delivery's own tracked links."""
    delivery_id = read_page_token(signer, DIGEST, token)
    delivery = await session.get(Delivery, delivery_id) if delivery_id is not None else None
    if delivery is None or delivery.amplifier_id is None:
        raise PageNotFound("No such digest.")
    campaign = await session.scalar(
        select(Campaign)
        .where(Campaign.id == delivery.campaign_id)
        .options(selectinload(Campaign.messages))
    )
    amplifier = await session.get(Amplifier, delivery.amplifier_id)
    if campaign is None or amplifier is None:
        raise PageNotFound("No such digest.")
    shares = await share_urls_of_delivery(session, delivery_id=delivery.id, public_url=public_url)
    return digest_context(
        await campaign_content(session, campaign),
        list(dict.fromkeys(n for _, n in shares)),
        name=amplifier.name or "",
        email=amplifier.email,
        share_url=lambda message_id, network: shares[(message_id, network)],
        web_version_url="",
        unsubscribe_url=unsubscribe_url(public_url, signer, amplifier.id),
        preview=False,
    )


async def subscriber(session: AsyncSession, *, signer: Signer, token: str) -> Subscriber:
    amplifier_id = read_page_token(signer, UNSUBSCRIBE, token)
    if amplifier_id is None:
        raise PageNotFound("No such subscriber.")
    row = (
        await session.execute(
            select(Amplifier.email, Organization.name)
            .join(Organization, Organization.id == Amplifier.organization_id)
            .where(Amplifier.id == amplifier_id)
        )
    ).first()
    if row is None:
        raise PageNotFound("No such subscriber.")
    return Subscriber(
        amplifier_id=amplifier_id,
        email_masked=mask_email(row.email),
        organization_name=row.name,
    )


async def unsubscribe(session: AsyncSession, *, signer: Signer, token: str) -> Subscriber:
    """Unsubscribe whom the token names; unsubscribing again changes nothing."""
    found = await subscriber(session, signer=signer, token=token)
    await amplifiers.set_status(
        session, amplifier_id=found["amplifier_id"], status=AmplifierStatus.UNSUBSCRIBED
    )
    return found
