"""Webhook event types and the one way to put an event into the outbox.

`emit` only inserts a row, in whatever transaction the caller is in: the event exists exactly
when the change it reports was committed. Which endpoints get it is decided later, by the
dispatcher, so emitting costs one insert whether or not anyone listens.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.db import utcnow
from app.models import Campaign, WebhookEvent


class EventType(StrEnum):
    CAMPAIGN_SENDING = "campaign.sending"
    CAMPAIGN_SENT = "campaign.sent"
    CAMPAIGN_PAUSED = "campaign.paused"
    DELIVERY_FAILED = "delivery.failed"
    DELIVERY_BOUNCED = "delivery.bounced"
    AMPLIFIER_UNSUBSCRIBED = "amplifier.unsubscribed"
    AMPLIFIER_COMPLAINED = "amplifier.complained"
    CLICKS_RECORDED = "clicks.recorded"
    CONVERSION_CREATED = "conversion.created"
    WEBHOOK_TEST = "webhook.test"


@dataclass(frozen=True, slots=True)
class Event:
    organization_id: int
    type: EventType
    data: dict[str, Any]
    endpoint_id: int | None = None


async def emit_events(db: AsyncSession | AsyncConnection, events: Sequence[Event]) -> None:
    """Write events to the outbox in the caller's transaction (one statement)."""
    if not events:
        return
    now = utcnow()
    await db.execute(
        insert(WebhookEvent),
        [
            {
                "organization_id": e.organization_id,
                "type": str(e.type),
                "data": e.data,
                "endpoint_id": e.endpoint_id,
                "created_at": now,
            }
            for e in events
        ],
    )


async def emit(
    db: AsyncSession | AsyncConnection,
    *,
    organization_id: int,
    type: EventType,
    data: dict[str, Any],
) -> None:
    """Write one event to the outbox in the caller's transaction; it is posted to every
    endpoint of the organization subscribed to `type` once that transaction commits."""
    await emit_events(db, [Event(organization_id, type, data)])


def campaign_event(
    type: EventType, *, organization_id: int, campaign_id: int, name: str, **extra: Any
) -> Event:
    """campaign.sending / sent / paused: `{"campaign_id", "name", "status", …}`."""
    status = type.value.removeprefix("campaign.")
    data = {"campaign_id": campaign_id, "name": name, "status": status, **extra}
    return Event(organization_id, type, data)


def delivery_event(
    type: EventType,
    *,
    organization_id: int,
    delivery_id: int,
    campaign_id: int,
    amplifier_id: int | None,
    error: str | None,
    **extra: Any,
) -> Event:
    """delivery.failed / delivery.bounced: `{"delivery_id", "campaign_id", "amplifier_id",
    "error", …}`."""
    data = {
        "delivery_id": delivery_id,
        "campaign_id": campaign_id,
        "amplifier_id": amplifier_id,
        "error": error,
        **extra,
    }
    return Event(organization_id, type, data)


async def report_campaigns(
    db: AsyncSession | AsyncConnection, type: EventType, campaigns: Sequence[Any], **extra: Any
) -> None:
    """One campaign event per row of `campaigns` (rows with `id`, `organization_id`, `name`)."""
    await emit_events(
        db,
        [
            campaign_event(
                type,
                organization_id=row.organization_id,
                campaign_id=row.id,
                name=row.name,
                **extra,
            )
            for row in campaigns
        ],
    )


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    delivery_id: int
    campaign_id: int
    amplifier_id: int | None
    error: str | None
    bounce: bool


async def report_failed_deliveries(
    db: AsyncSession | AsyncConnection, failures: Sequence[FailedDelivery]
) -> None:
    """delivery.failed for each delivery that failed for good."""
    if not failures:
        return
    rows = await db.execute(
        select(Campaign.id, Campaign.organization_id).where(
            Campaign.id.in_({f.campaign_id for f in failures})
        )
    )
    organization_of = {row.id: row.organization_id for row in rows}
    await emit_events(
        db,
        [
            delivery_event(
                EventType.DELIVERY_FAILED,
                organization_id=organization_of[f.campaign_id],
                delivery_id=f.delivery_id,
                campaign_id=f.campaign_id,
                amplifier_id=f.amplifier_id,
                error=f.error,
                permanent_bounce=f.bounce,
            )
            for f in failures
            if f.campaign_id in organization_of
        ],
    )


async def _organization_of(db: AsyncSession | AsyncConnection, campaign_id: int) -> int | None:
    found: int | None = await db.scalar(
        select(Campaign.organization_id).where(Campaign.id == campaign_id)
    )
    return found


async def report_bounce(
    db: AsyncSession | AsyncConnection,
    *,
    campaign_id: int,
    delivery_ids: Sequence[int],
    amplifier_id: int | None,
    error: str,
) -> None:
    """delivery.bounced for each delivery a bounce report names."""
    organization_id = await _organization_of(db, campaign_id)
    if organization_id is None:
        return
    await emit_events(
        db,
        [
            delivery_event(
                EventType.DELIVERY_BOUNCED,
                organization_id=organization_id,
                delivery_id=delivery_id,
                campaign_id=campaign_id,
                amplifier_id=amplifier_id,
                error=error,
            )
            for delivery_id in delivery_ids
        ],
    )


async def report_complaint(
    db: AsyncSession | AsyncConnection, *, campaign_id: int, amplifier_id: int | None
) -> None:
    """amplifier.complained: a spam complaint about a digest (the amplifier is unsubscribed)."""
    organization_id = await _organization_of(db, campaign_id)
    if organization_id is None or amplifier_id is None:
        return
    data = {"amplifier_id": amplifier_id, "campaign_id": campaign_id}
    await emit_events(db, [Event(organization_id, EventType.AMPLIFIER_COMPLAINED, data)])
