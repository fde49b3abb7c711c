"""The composer part of the send engine: a job in, the finished bytes of its digest out.

Each campaign's content, headers and per-network-set prototypes are built once and kept until
the campaign's version changes, so composing a mail is mostly string joining.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from app.core.config import Settings
from app.core.db import utcnow
from app.core.public_links import (
    UNSUBSCRIBE,
    unsubscribe_mailto_base,
    unsubscribe_token,
    url_of_token,
    web_version_url,
)
from app.core.security import Signer
from app.sending.mime import CampaignHeaders, build_digest, domain_of, envelope_address, message_id
from app.sending.parts import CampaignState, ComposedMail, Job
from app.sending.render import CampaignContent, DigestPrototype, Recipient

CampaignLoader = Callable[[int], Awaitable[tuple[datetime, CampaignContent]]]


@dataclass
class _CampaignCache:
    updated_at: datetime
    content: CampaignContent
    headers: CampaignHeaders
    prototypes: dict[tuple[str, ...], DigestPrototype] = field(default_factory=dict)


class DigestComposer:
    """Renders digests; `load_campaign` gives a campaign's version and content."""

    def __init__(self, settings: Settings, signer: Signer, load_campaign: CampaignLoader) -> None:
        self.settings = settings
        self.signer = signer
        self.load_campaign = load_campaign
        self.sender = envelope_address(settings.mail_from)
        self.domain = domain_of(settings.mail_from)
        self._mailto_base = unsubscribe_mailto_base(settings)
        self._campaigns: dict[int, _CampaignCache] = {}

    async def compose(self, job: Job, *, state: CampaignState, eight_bit: bool) -> ComposedMail:
        assert job.email is not None and job.amplifier_id is not None
        campaign = await self._campaign(job.campaign_id, state)
        prototype = campaign.prototypes.get(job.networks)
        if prototype is None:
            prototype = DigestPrototype(campaign.content, job.networks)
            campaign.prototypes[job.networks] = prototype
        token = unsubscribe_token(self.signer, job.amplifier_id)
        unsubscribe = url_of_token(self.settings.public_url, UNSUBSCRIBE, token)
        text, html = prototype.render_parts(
            Recipient(
                name=job.name or "",
                email=job.email,
                share_urls=job.share_urls,
                web_version_url=web_version_url(
                    self.settings.public_url, self.signer, job.delivery_id
                ),
                unsubscribe_url=unsubscribe,
            ),
            eight_bit=eight_bit,
        )
        mailto_subject = quote(f"unsubscribe {token}", safe="")
        list_unsubscribe = f"<{unsubscribe}>, <{self._mailto_base}{mailto_subject}>"
        mid = message_id(self.domain, job.campaign_id, job.delivery_id)
        raw = build_digest(
            campaign_headers=campaign.headers,
            to_name=job.name,
            to_addr=job.email,
            message_id_value=mid,
            date=utcnow(),
            list_unsubscribe=list_unsubscribe,
            text=text,
            html=html,
        )
        return ComposedMail(raw=raw, message_id=mid, envelope_from=self.sender)

    async def _campaign(self, campaign_id: int, state: CampaignState) -> _CampaignCache:
        cached = self._campaigns.get(campaign_id)
        if cached is None or cached.updated_at != state.updated_at:
            updated_at, content = await self.load_campaign(campaign_id)
            headers = CampaignHeaders.build(
                mail_from=self.settings.mail_from, subject=content.subject
            )
            cached = _CampaignCache(updated_at, content, headers)
            self._campaigns[campaign_id] = cached
        return cached
