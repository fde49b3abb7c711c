"""The tracked links of one delivery: a visit link and a share link per message × network."""

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.models import LinkKind
from app.sending.networks import SharePost, share_url
from app.tracking.codes import new_code


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


def link_rows(
    *,
    public_url: str,
    campaign_id: int,
    campaign_name: str,
    utm: bool,
    delivery_id: int,
    amplifier_id: int,
    networks: Sequence[str],
    messages: Sequence[MessageLinkSource],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for message in messages:
        for network in networks:
            visit_code = new_code()
            share_code = new_code()
            common = {
                "campaign_id": campaign_id,
                "message_id": message.id,
                "delivery_id": delivery_id,
                "amplifier_id": amplifier_id,
                "network": network,
            }
            post = SharePost(
                text=message.network_text.get(network) or message.text,
                visit_url=f"{public_url}/r/{visit_code}",
                hashtags=message.hashtags,
            )
            rows.append(
                {
                    **common,
                    "code": visit_code,
                    "kind": LinkKind.VISIT,
                    "target": visit_target(
                        message.url,
                        utm=utm,
                        network=network,
                        campaign_name=campaign_name,
                        message_id=message.id,
                    ),
                }
            )
            rows.append(
                {
                    **common,
                    "code": share_code,
                    "kind": LinkKind.SHARE,
                    "target": share_url(network, post),
                }
            )
    return rows
