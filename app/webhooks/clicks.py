"""clicks.recorded from the click flush: one outbox row per organization and flush, in the
flush's own transaction, and only when the organization has an endpoint listening. Splitting
into events of ≤ 500 clicks per endpoint is the dispatcher's work, away from the redirects."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.schemas import format_utc
from app.models import WebhookEndpoint
from app.tracking.clickstore import LinkFacts, facts_of_links
from app.webhooks.events import Event, EventType, emit_events


class RecordedClick(Protocol):
    link_id: int
    at: datetime
    is_bot: bool
    facts: LinkFacts | None


async def listening_organizations(connection: AsyncConnection) -> set[int]:
    rows = await connection.scalars(
        select(WebhookEndpoint.organization_id)
        .where(WebhookEndpoint.wants_clicks.is_(True), WebhookEndpoint.enabled.is_(True))
        .distinct()
    )
    return set(rows.all())


async def report_clicks(connection: AsyncConnection, clicks: Sequence[RecordedClick]) -> None:
    """Never called for nothing: bots and organizations without a listener cost one query."""
    humans = [c for c in clicks if not c.is_bot]
    if not humans:
        return
    listening = await listening_organizations(connection)
    if not listening:
        return
    missing = sorted({c.link_id for c in humans if c.facts is None})
    looked_up = await facts_of_links(connection, missing) if missing else {}
    by_org: dict[int, list[list[Any]]] = defaultdict(list)
    for click in humans:
        facts = click.facts or looked_up.get(click.link_id)
        if facts is None or facts.organization_id not in listening:
            continue
        by_org[facts.organization_id].append(
            [
                facts.kind,
                facts.campaign_id,
                facts.message_id,
                facts.amplifier_id or None,
                facts.network,
                format_utc(click.at),
            ]
        )
    await emit_events(
        connection,
        [Event(org, EventType.CLICKS_RECORDED, {"clicks": rows}) for org, rows in by_org.items()],
    )
