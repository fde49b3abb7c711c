"""Held deliveries in the database: when each is due, releasing them early, expiring them.

A held delivery carries its slot in `due_at` (and `next_attempt_at`), so scheduled work
survives restarts like scheduled campaigns do; the worker releases an amplifier's due held
deliveries together as one combined digest (`store.SqlDeliveryStore.claim`): they stay `held`
under the worker's lease until they are `sent` (or wait, `held`, for a retry).
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.models import Campaign, Delivery, DeliveryStatus, Organization
from app.sending.slots import CAP_WINDOW, Preferences, Schedule, cap_frees, due_at, zone

SENT_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.BOUNCED)
# Not sent yet: due or retrying (`pending`), or waiting for (or in) a combined digest (`held`).
UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.HELD)


def schedule_of(organization: Organization) -> Schedule:
    return Schedule.of(organization.daily_at, organization.weekly_on)


async def due_times(
    session: AsyncSession, *, organization_id: int, amplifiers: Sequence[Any], start_at: datetime
) -> dict[int, datetime]:
    """amplifier id → slot, for the amplifiers (rows with id, frequency, paused_until,
    timezone) whose delivery starting at `start_at` is held; the others go out at once."""
    organization = await session.get(Organization, organization_id)
    assert organization is not None
    schedule = schedule_of(organization)
    cap = organization.max_digests_per_week
    sent = (
        await recent_mails(session, organization_id=organization_id, since=start_at - CAP_WINDOW)
        if cap is not None
        else {}
    )
    due: dict[int, datetime] = {}
    for row in amplifiers:
        preferences = Preferences(
            frequency=row.frequency,
            paused_until=row.paused_until,
            timezone=zone(row.timezone or organization.default_timezone),
        )
        slot = due_at(
            preferences,
            now=start_at,
            schedule=schedule,
            cap_free_at=cap_frees(sent.get(row.id, ()), cap=cap, now=start_at),
        )
        if slot is not None:
            due[row.id] = slot
    return due


async def recent_mails(
    session: AsyncSession, *, organization_id: int, since: datetime
) -> dict[int, list[datetime]]:
    """amplifier id → when each mail sent to them since `since` went out. A combined digest is
    one mail: its deliveries share one Message-ID."""
    rows = await session.execute(
        select(Delivery.amplifier_id, func.min(Delivery.sent_at))
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(
            Campaign.organization_id == organization_id,
            Delivery.status.in_(SENT_STATUSES),
            Delivery.sent_at > since,
        )
        .group_by(Delivery.amplifier_id, Delivery.message_id)
    )
    mails: defaultdict[int, list[datetime]] = defaultdict(list)
    for amplifier_id, sent_at in rows.all():
        if amplifier_id is not None and sent_at is not None:
            mails[amplifier_id].append(sent_at)
    return mails


async def make_due(session: AsyncSession, *, amplifier_ids: Sequence[int], now: datetime) -> None:
    """The amplifiers' held deliveries go out at once, each amplifier's together (frequency
    back to `each`, or a pause ended)."""
    if not amplifier_ids:
        return
    await session.execute(
        update(Delivery)
        .where(
            Delivery.amplifier_id.in_(sorted(amplifier_ids)),
            Delivery.status == DeliveryStatus.HELD,
            Delivery.due_at > now,
        )
        .values(due_at=now, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def expire_held(session: AsyncSession, *, now: datetime) -> list[int]:
    """Held deliveries of campaigns past `expires_at` become cancelled ("expired"), unless a
    worker is sending them right now; returns the campaigns touched."""
    expired = (
        select(Campaign.id)
        .where(Campaign.expires_at.is_not(None), Campaign.expires_at <= now)
        .scalar_subquery()
    )
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.status == DeliveryStatus.HELD,
            Delivery.campaign_id.in_(expired),
            or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < utcnow()),
        )
        .values(status=DeliveryStatus.CANCELLED, last_error="expired", updated_at=now)
        .returning(Delivery.campaign_id)
        .execution_options(synchronize_session=False)
    )
    return sorted(set(result.scalars().all()))


async def cancel_held(session: AsyncSession, *, amplifier_id: int, reason: str) -> None:
    """held→cancelled for an amplifier about to be deleted (no worker would ever mail them)."""
    await session.execute(
        update(Delivery)
        .where(Delivery.amplifier_id == amplifier_id, Delivery.status == DeliveryStatus.HELD)
        .values(status=DeliveryStatus.CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False)
    )
