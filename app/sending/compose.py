"""The composer part of the send engine: a job in, the finished bytes of its digest out.

Each campaign's content, its headers per language and its prototypes per (language, set of
networks, kind of impact block) are built once and kept until the campaign's version changes,
so composing a mail is mostly string joining. The impact numbers are read once per campaign
and refreshed every few minutes, never per mail.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from app import i18n
from app.core.config import Settings
from app.core.db import utcnow
from app.core.public_links import (
    UNSUBSCRIBE,
    impact_url,
    unsubscribe_mailto_base,
    unsubscribe_token,
    url_of_token,
    web_version_url,
)
from app.core.security import Signer
from app.sending.mime import CampaignHeaders, build_digest, domain_of, envelope_address, message_id
from app.sending.parts import CampaignState, ComposedMail, Job
from app.sending.render import CampaignContent, DigestPrototype, Recipient, impact_kind
from app.stats.impact import Board

CampaignLoader = Callable[[int], Awaitable[tuple[datetime, CampaignContent]]]
# A campaign's organization's impact board, or None when it hides the impact block.
ImpactLoader = Callable[[int], Awaitable[Board | None]]
IMPACT_REFRESH = timedelta(minutes=5)

# (chrome language, translation used by each text, networks, kind of impact block, variant
# shown of each message: empty when every message shows its base text or a translation)
PrototypeKey = tuple[str, tuple[str | None, ...], tuple[str, ...], str, tuple[int, ...]]


@dataclass
class _CampaignCache:
    updated_at: datetime
    content: CampaignContent
    # (chrome language, translation of the subject) → headers
    headers: dict[tuple[str, str | None], CampaignHeaders] = field(default_factory=dict)
    prototypes: dict[PrototypeKey, DigestPrototype] = field(default_factory=dict)
    impact: Board | None = None
    impact_read_at: datetime | None = None
    # Mails are composed concurrently: the first one reads the board, the others wait for it.
    impact_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # amplifier locale → (chrome language, translation used by each text)
    languages: dict[str, tuple[str, tuple[str | None, ...]]] = field(default_factory=dict)

    def language(self, locale: str) -> tuple[str, tuple[str | None, ...]]:
        found = self.languages.get(locale)
        if found is None:
            found = (i18n.chrome_locale(locale), self.content.translation_key(locale))
            self.languages[locale] = found
        return found

    def variants_shown(self, job: Job) -> tuple[int, ...]:
        """The variant each message shows this amplifier: a translated message shows its
        translation whatever variant it was dealt, so it counts as 0."""
        if not job.variants:
            return ()
        _, translations = self.language(job.locale)
        return tuple(
            0 if translated else job.variants.get(message.id, 0)
            for message, translated in zip(self.content.messages, translations[1:], strict=True)
        )


class DigestComposer:
    """Renders digests; `load_campaign` gives a campaign's version and content."""

    def __init__(
        self,
        settings: Settings,
        signer: Signer,
        load_campaign: CampaignLoader,
        *,
        load_impact: ImpactLoader | None = None,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.load_campaign = load_campaign
        self.load_impact = load_impact
        self.sender = envelope_address(settings.mail_from)
        self.domain = domain_of(settings.mail_from)
        self._mailto_base = unsubscribe_mailto_base(settings)
        self._campaigns: dict[int, _CampaignCache] = {}

    async def compose(self, job: Job, *, state: CampaignState, eight_bit: bool) -> ComposedMail:
        assert job.email is not None and job.amplifier_id is not None
        campaign = await self._campaign(job.campaign_id, state)
        board = await self._impact(job.campaign_id, campaign)
        token = unsubscribe_token(self.signer, job.amplifier_id)
        unsubscribe = url_of_token(self.settings.public_url, UNSUBSCRIBE, token)
        recipient = Recipient(
            name=job.name or "",
            email=job.email,
            share_urls=job.share_urls,
            web_version_url=web_version_url(self.settings.public_url, self.signer, job.delivery_id),
            unsubscribe_url=unsubscribe,
            locale=job.locale,
            impact_url=impact_url(self.settings.public_url, self.signer, job.amplifier_id),
            impact=board.of(job.amplifier_id) if board is not None else None,
            show_impact=board is not None,
        )
        prototype = self._prototype(campaign, job, impact_kind(recipient))
        headers = self._headers(campaign, job.locale)
        text, html = prototype.render_parts(recipient, eight_bit=eight_bit)
        mailto_subject = quote(f"unsubscribe {token}", safe="")
        list_unsubscribe = f"<{unsubscribe}>, <{self._mailto_base}{mailto_subject}>"
        mid = message_id(self.domain, job.campaign_id, job.delivery_id)
        raw = build_digest(
            campaign_headers=headers,
            to_name=job.name,
            to_addr=job.email,
            message_id_value=mid,
            date=utcnow(),
            list_unsubscribe=list_unsubscribe,
            text=text,
            html=html,
        )
        return ComposedMail(raw=raw, message_id=mid, envelope_from=self.sender)

    @staticmethod
    def _prototype(campaign: _CampaignCache, job: Job, impact: str) -> DigestPrototype:
        language, translation = campaign.language(job.locale)
        key = (language, translation, job.networks, impact, campaign.variants_shown(job))
        prototype = campaign.prototypes.get(key)
        if prototype is None:
            content = campaign.content.localized(job.locale, job.variants)
            prototype = DigestPrototype(content, job.networks, locale=language, impact=impact)
            campaign.prototypes[key] = prototype
        return prototype

    def _headers(self, campaign: _CampaignCache, locale: str) -> CampaignHeaders:
        language, translation = campaign.language(locale)
        key = (language, translation[0])  # the first text is the campaign's subject and intro
        headers = campaign.headers.get(key)
        if headers is None:
            headers = CampaignHeaders.build(
                mail_from=self.settings.mail_from,
                subject=campaign.content.localized(locale).subject,
                extra={"Content-Language": language},
            )
            campaign.headers[key] = headers
        return headers

    async def _campaign(self, campaign_id: int, state: CampaignState) -> _CampaignCache:
        cached = self._campaigns.get(campaign_id)
        if cached is None or cached.updated_at != state.updated_at:
            updated_at, content = await self.load_campaign(campaign_id)
            cached = _CampaignCache(updated_at, content)
            self._campaigns[campaign_id] = cached
        return cached

    async def _impact(self, campaign_id: int, campaign: _CampaignCache) -> Board | None:
        if self.load_impact is None:
            return None
        if _stale(campaign.impact_read_at):
            async with campaign.impact_lock:
                if _stale(campaign.impact_read_at):
                    campaign.impact = await self.load_impact(campaign_id)
                    campaign.impact_read_at = utcnow()
        return campaign.impact


def _stale(read_at: datetime | None) -> bool:
    return read_at is None or utcnow() - read_at >= IMPACT_REFRESH
