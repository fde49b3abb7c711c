"""The tracked links of one delivery: a visit link and a share link per message × network."""

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app import i18n
from app.core.public_links import redirect_url
from app.models import LinkKind, Message
from app.sending.networks import SharePost, share_url


def slugify(value: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "campaign"


def visit_target(url: str, *, utm: bool, network: str, campaign_name: str, message_id: int) -> str:
    """The message URL, with UTM parameters appended unless the URL sets them itself."""
    if not utm:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {key for key, _ in query}
    wanted = {
        "utm_source": network,
        "utm_medium": "amplify",
        "utm_campaign": slugify(campaign_name),
        "utm_content": str(message_id),
    }
    extra = [(key, value) for key, value in wanted.items() if key not in present]
    if not extra:
        return url
    joined = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
    return urlunsplit(parts._replace(query=joined))


@dataclass(frozen=True, slots=True)
class MessageLinkSource:
    id: int
    text: str
    url: str
    network_text: dict[str, str]
    hashtags: Sequence[str]
    # locale tag → {"text", "network_text"?}
    translations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # variants 1, 2 … as stored: {"text", "network_text"}
    variants: Sequence[Mapping[str, Any]] = ()
    variant: int = 0  # the variant these texts are

    @classmethod
    def of(cls, message: Message) -> "MessageLinkSource":
        return cls(
            id=message.id,
            text=message.text,
            url=message.url,
            network_text=message.network_text or {},
            hashtags=message.hashtags or [],
            translations=message.translations or {},
            variants=message.variants or [],
        )

    @property
    def variant_count(self) -> int:
        return 1 + len(self.variants)

    def translation_key(self, locale: str | None) -> str | None:
        return i18n.best_match(locale, {key: key for key in self.translations})

    def with_variant(self, variant: int) -> "MessageLinkSource":
        """The message in copy variant `variant` (0: the base text)."""
        if variant == 0:
            return self
        chosen = self.variants[variant - 1]
        return replace(
            self,
            text=chosen["text"],
            network_text=dict(chosen.get("network_text") or {}),
            variant=variant,
        )

    def localized(self, locale: str | None) -> "MessageLinkSource":
        """The message as an amplifier of `locale` shares it: a translation for its language
        wins over the variant's text (the base text without a match)."""
        chosen = i18n.best_match(locale, self.translations)
        if not chosen:
            return self
        return replace(
            self,
            text=chosen.get("text") or self.text,
            network_text=dict(chosen.get("network_text") or {}),
            translations={},
        )


def visit_targets(
    messages: Sequence[MessageLinkSource], networks: Sequence[str], *, utm: bool, campaign_name: str
) -> dict[tuple[int, str], str]:
    """The landing URL per message × network: the same for every amplifier, so built once."""
    return {
        (m.id, n): visit_target(
            m.url, utm=utm, network=n, campaign_name=campaign_name, message_id=m.id
        )
        for m in messages
        for n in networks
    }


LINK_COLUMNS = (
    "code",
    "kind",
    "campaign_id",
    "message_id",
    "delivery_id",
    "amplifier_id",
    "network",
    "target",
    "created_at",
    "variant",
)
LinkRow = tuple[str, str, int, int, int, int, str, str, datetime, int]


def link_rows(
    *,
    codes: Iterator[str],
    public_url: str,
    campaign_id: int,
    targets: dict[tuple[int, str], str],
    delivery_id: int,
    amplifier_id: int,
    networks: Sequence[str],
    messages: Sequence[MessageLinkSource],
    created_at: datetime,
) -> list[LinkRow]:
    """Two links per message × network, as rows in LINK_COLUMNS order; `codes` supplies fresh
    random codes."""
    rows: list[LinkRow] = []
    ids = (campaign_id, delivery_id, amplifier_id)
    for message in messages:
        for network in networks:
            visit_code = next(codes)
            share_code = next(codes)
            post = SharePost(
                text=message.network_text.get(network) or message.text,
                visit_url=redirect_url(public_url, visit_code),
                hashtags=message.hashtags,
            )
            visit_target_url = targets[(message.id, network)]
            share_target_url = share_url(network, post)
            rows.append(
                (
                    visit_code,
                    LinkKind.VISIT,
                    ids[0],
                    message.id,
                    ids[1],
                    ids[2],
                    network,
                    visit_target_url,
                    created_at,
                    message.variant,
                )
            )
            rows.append(
                (
                    share_code,
                    LinkKind.SHARE,
                    ids[0],
                    message.id,
                    ids[1],
                    ids[2],
                    network,
                    share_target_url,
                    created_at,
                    message.variant,
                )
            )
    return rows
