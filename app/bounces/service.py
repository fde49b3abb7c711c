"""What a bounce or complaint changes: the delivery, the amplifier, the counts.

Hard bounce → the delivery is `bounced` and the amplifier `bounced`; soft bounces → the amplifier
is `bounced` after SOFT_LIMIT of them within SOFT_WINDOW; complaint → the amplifier is
`unsubscribed` (reason `complaint`). Each report is stored under its event key first, so a repeat
(a provider retrying its callback, a DSN delivered twice) changes nothing."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.bounces.reports import BounceReport
from app.models import (
    Amplifier,
    AmplifierStatus,
    BounceEvent,
    BounceKind,
    Delivery,
    DeliveryStatus,
)
from app.webhooks.events import report_bounce, report_complaint

SOFT_LIMIT = 3
SOFT_WINDOW = timedelta(days=30)


class Recorded(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    UNMAPPED = "unmapped"


@dataclass(frozen=True, slots=True)
class _Target:
    delivery_ids: list[int]
    campaign_id: int
    amplifier_id: int | None


async def record(session: AsyncSession, report: BounceReport, *, now: datetime) -> Recorded:
    target = await _target(session, report)
    if target is None:
        return Recorded.UNMAPPED
    if not await _store_event(session, report, target, now=now):
        return Recorded.DUPLICATE
    if report.kind == BounceKind.HARD:
        await _hard(session, report, target, now=now)
    elif report.kind == BounceKind.SOFT:
        await _soft(session, target, now=now)
    else:
        await _complaint(session, target, now=now)
    return Recorded.RECORDED


async def _target(session: AsyncSession, report: BounceReport) -> _Target | None:
    """The delivery named by the return-path token, else by the quoted Message-ID, else (for
    providers that quote neither) the newest sent delivery to the recipient's address."""
    found = select(Delivery.id, Delivery.campaign_id, Delivery.amplifier_id)
    attempts = []
    if report.delivery_id is not None:
        attempts.append(found.where(Delivery.id == report.delivery_id))
    if report.message_id:
        # A combined digest shares one Message-ID among several deliveries.
        attempts.append(found.where(Delivery.message_id == report.message_id).limit(50))
    if report.recipient:
        attempts.append(
            found.join(Amplifier, Amplifier.id == Delivery.amplifier_id)
            .where(
                Amplifier.email_key == report.recipient.strip().lower(),
                Delivery.sent_at.is_not(None),
            )
            .order_by(Delivery.sent_at.desc())
            .limit(1)
        )
    for stmt in attempts:
        rows = (await session.execute(stmt)).all()
        if rows:
            return _Target([r.id for r in rows], rows[0].campaign_id, rows[0].amplifier_id)
    return None


async def _store_event(
    session: AsyncSession, report: BounceReport, target: _Target, *, now: datetime
) -> bool:
    """Insert the event unless its key is known; True when this call stored it."""
    values = {
        "event_key": report.event_key[:160],
        "source": report.source,
        "kind": report.kind.value,
        "delivery_id": target.delivery_ids[0],
        "campaign_id": target.campaign_id,
        "amplifier_id": target.amplifier_id,
        "status": report.status,
        "detail": report.detail,
        "created_at": now,
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(BounceEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["event_key"])
        .returning(BounceEvent.id)
    )
    return result.first() is not None


async def _hard(
    session: AsyncSession, report: BounceReport, target: _Target, *, now: datetime
) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(target.delivery_ids), Delivery.status == DeliveryStatus.SENT)
        .values(
            status=DeliveryStatus.BOUNCED,
            last_error=_error(report),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await _set_amplifier(
        session, target, AmplifierStatus.BOUNCED, "hard_bounce", (AmplifierStatus.ACTIVE,), now
    )
    await report_bounce(
        session,
        campaign_id=target.campaign_id,
        delivery_ids=target.delivery_ids,
        amplifier_id=target.amplifier_id,
        error=_error(report),
    )


def _error(report: BounceReport) -> str:
    text = f"bounced: {report.status or ''} {report.detail or ''}"
    return " ".join(text.split())[:500]


async def _soft(session: AsyncSession, target: _Target, *, now: datetime) -> None:
    if target.amplifier_id is None:
        return
    recent = await session.scalar(
        select(func.count()).where(
            BounceEvent.amplifier_id == target.amplifier_id,
            BounceEvent.kind == BounceKind.SOFT,
            BounceEvent.created_at >= now - SOFT_WINDOW,
        )
    )
    if (recent or 0) >= SOFT_LIMIT:
        await _set_amplifier(
            session, target, AmplifierStatus.BOUNCED, "soft_bounces", (AmplifierStatus.ACTIVE,), now
        )


async def _complaint(session: AsyncSession, target: _Target, *, now: datetime) -> None:
    await _set_amplifier(
        session,
        target,
        AmplifierStatus.UNSUBSCRIBED,
        "complaint",
        (AmplifierStatus.ACTIVE, AmplifierStatus.BOUNCED, AmplifierStatus.UNSUBSCRIBED),
        now,
    )
    await report_complaint(
        session, campaign_id=target.campaign_id, amplifier_id=target.amplifier_id
    )
    # The campaign's statistics count complaints: move their version marker.
    await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(target.delivery_ids))
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def _set_amplifier(
    session: AsyncSession,
    target: _Target,
    status: AmplifierStatus,
    reason: str,
    from_statuses: tuple[AmplifierStatus, ...],
    now: datetime,
) -> None:
    if target.amplifier_id is None:
        return
    await session.execute(
        update(Amplifier)
        .where(Amplifier.id == target.amplifier_id, Amplifier.status.in_(from_statuses))
        .values(status=status, status_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
