"""The composer part of the send engine: a job in, the finished bytes of its digest out.

Each campaign's content, its headers per language and its prototypes per (language, set of
networks, kind of impact block) are built once and kept until the campaign's version changes,
so composing a mail is mostly string joining. The impact numbers are read once per campaign
and refreshed every few minutes, never per mail.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from app import i18n
from app.core.config import Settings
from app.core.db import utcnow
from app.core.public_links import (
    UNSUBSCRIBE,
    impact_url,
    preferences_url,
    unsubscribe_mailto_base,
    unsubscribe_token,
    url_of_token,
    web_version_url,
)
from app.core.security import Signer
from app.sending.mime import CampaignHeaders, build_digest, domain_of, envelope_address, message_id
from app.sending.parts import CampaignState, ComposedMail, Job
from app.sending.render import (
    CampaignContent,
    DigestPrototype,
    Recipient,
    Section,
    combined_subject,
    impact_kind,
)
from app.stats.impact import Board

CampaignLoader = Callable[[int], Awaitable[tuple[datetime, CampaignContent]]]
# A campaign's organization's impact board, or None when it hides the impact block.
ImpactLoader = Callable[[int], Awaitable[Board | None]]
IMPACT_REFRESH = timedelta(minutes=5)

# (chrome language, translation used by each text, networks, kind of impact block, variant
# shown of each message: empty when every message shows its base text or a translation)
PrototypeKey = tuple[str, tuple[str | None, ...], tuple[str, ...], str, tuple[int, ...]]


# per section (campaign, its version, chrome language, translations, networks), impact kind
CombinedKey = tuple[tuple[object, ...], str]


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
        # Combined digests' prototypes and headers. Entries of old campaign versions are never
        # read again; a worker's campaigns are few.
        self._combined: dict[CombinedKey, tuple[DigestPrototype, CampaignHeaders]] = {}

    async def compose(
        self, job: Job, *, states: Mapping[int, CampaignState], eight_bit: bool
    ) -> ComposedMail:
        assert job.email is not None and job.amplifier_id is not None
        campaign = await self._campaign(job.campaign_id, states[job.campaign_id])
        board = await self._impact(job.campaign_id, campaign)
        token = unsubscribe_token(self.signer, job.amplifier_id)
        public_url = self.settings.public_url
        combined = bool(job.parts)
        recipient = Recipient(
            name=job.name or "",
            email=job.email,
            share_urls=_all_share_urls(job) if combined else job.share_urls,
            # A combined digest has a web version per section (each delivery's own).
            web_version_url=""
            if combined
            else web_version_url(public_url, self.signer, job.delivery_id),
            unsubscribe_url=url_of_token(public_url, UNSUBSCRIBE, token),
            locale=job.locale,
            impact_url=impact_url(public_url, self.signer, job.amplifier_id),
            impact=board.of(job.amplifier_id) if board is not None else None,
            show_impact=board is not None,
            preferences_url=preferences_url(public_url, self.signer, job.amplifier_id),
            section_web_urls={
                part.campaign_id: web_version_url(public_url, self.signer, part.delivery_id)
                for part in job.parts
            },
        )
        if combined:
            prototype, headers = await self._combined_parts(job, states, impact_kind(recipient))
        else:
            prototype = self._prototype(campaign, job, impact_kind(recipient))
            headers = self._headers(campaign, job.locale)
        text, html = prototype.render_parts(recipient, eight_bit=eight_bit)
        mailto_subject = quote(f"unsubscribe {token}", safe="")
        list_unsubscribe = f"<{recipient.unsubscribe_url}>, <{self._mailto_base}{mailto_subject}>"
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

    async def _combined_parts(
        self, job: Job, states: Mapping[int, CampaignState], impact: str
    ) -> tuple[DigestPrototype, CampaignHeaders]:
        """A combined digest's prototype (a section per campaign) and headers, cached."""
        campaigns = [
            (part, await self._campaign(part.campaign_id, states[part.campaign_id]))
            for part in job.parts
        ]
        key: CombinedKey = (
            tuple(
                (
                    part.campaign_id,
                    cache.updated_at,
                    *cache.language(job.locale),
                    part.networks,
                    cache.variants_shown(part),
                )
                for part, cache in campaigns
            ),
            impact,
        )
        found = self._combined.get(key)
        if found is None:
            found = self._combined[key] = self._build_combined(campaigns, job.locale, impact)
        return found

    def _build_combined(
        self, campaigns: list[tuple[Job, _CampaignCache]], locale: str, impact: str
    ) -> tuple[DigestPrototype, CampaignHeaders]:
        sections = [
            Section(part.campaign_id, cache.content.localized(locale, part.variants), part.networks)
            for part, cache in campaigns
        ]
        first = campaigns[0][1].content
        posts = sum(len(section.content.messages) for section in sections)
        language = i18n.chrome_locale(locale)
        header = CampaignContent(
            organization_name=first.organization_name,
            name="",
            subject=combined_subject(first.organization_name, posts, language),
            intro="",
            messages=[m for section in sections for m in section.content.messages],
        )
        prototype = DigestPrototype(header, (), locale=language, impact=impact, sections=sections)
        headers = CampaignHeaders.build(
            mail_from=self.settings.mail_from,
            subject=header.subject,
            extra={"Content-Language": language},
        )
        return prototype, headers

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


def _all_share_urls(job: Job) -> dict[tuple[int, str], str]:
    """Every part's own share links (message ids differ between campaigns)."""
    urls: dict[tuple[int, str], str] = {}
    for part in job.parts:
        urls.update(part.share_urls)
    return urls


def _stale(read_at: datetime | None) -> bool:
    return read_at is None or utcnow() - read_at >= IMPACT_REFRESH
