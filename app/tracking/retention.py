"""Privacy: raw clicks and visitor sets are deleted after the retention period; the hourly
rollups stay, so every statistic survives the purge. On PostgreSQL whole expired months of
clicks are dropped as partitions (app/tracking/partitions.py) and only the month the cutoff
falls in has rows deleted; the same job creates the coming months' partitions. Click ids live
on their own clock: as long as a conversion may still be attributed to them (the attribution
window), plus a grace period for conversions reported late, whatever the raw clicks'
retention."""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import utcnow
from app.models import Click, ClickId, LinkVisitor, VisitorSalt
from app.tracking.partitions import drop_expired_click_partitions, ensure_click_partitions

logger = logging.getLogger("amplify.retention")

PURGE_EVERY_SECONDS = 3600.0
# A conversion inside the window may be reported some days after it occurred.
CLICK_ID_GRACE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Purged:
    clicks: int
    visitors: int
    salts: int


@dataclass(frozen=True, slots=True)
class Partitioned:
    created: list[str]
    dropped: list[str]


async def maintain_click_partitions(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime, retention_days: int
) -> Partitioned:
    """PostgreSQL: the coming months' partitions created and the expired months' dropped, each
    in a short transaction of its own (a DROP holds every flush back until it commits); a
    no-op on SQLite. Rows older than the cutoff in the month it falls in are purge_old_clicks'."""
    async with sessionmaker.begin() as session:
        created = await ensure_click_partitions(await session.connection(), now=now)
    async with sessionmaker.begin() as session:
        dropped = await drop_expired_click_partitions(
            await session.connection(), cutoff=now - timedelta(days=retention_days)
        )
    return Partitioned(created, dropped)


async def purge_old_clicks(session: AsyncSession, *, now: datetime, retention_days: int) -> Purged:
    cutoff = now - timedelta(days=retention_days)
    clicks = await session.execute(delete(Click).where(Click.at < cutoff))
    visitors = await session.execute(delete(LinkVisitor).where(LinkVisitor.day < cutoff.date()))
    # Yesterday's salt is still needed for late clicks around midnight; older ones go, so old
    # visitor keys can never again be matched to an address.
    salts = await session.execute(
        delete(VisitorSalt).where(VisitorSalt.day < (now - timedelta(days=1)).date())
    )
    return Purged(
        clicks=int(clicks.rowcount),  # type: ignore[attr-defined]
        visitors=int(visitors.rowcount),  # type: ignore[attr-defined]
        salts=int(salts.rowcount),  # type: ignore[attr-defined]
    )


async def purge_old_click_ids(session: AsyncSession, *, now: datetime, window_days: int) -> int:
    """Click ids no conversion can be attributed to any more."""
    cutoff = now - timedelta(days=window_days) - CLICK_ID_GRACE
    purged = await session.execute(delete(ClickId).where(ClickId.at < cutoff))
    return int(purged.rowcount)  # type: ignore[attr-defined]


async def purge_clicks_periodically(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    retention_days: int,
    attribution_days: int,
    every_seconds: float = PURGE_EVERY_SECONDS,
) -> None:
    """The retention job: keep the click partitions and purge, now and then every
    `every_seconds`, until cancelled."""
    while True:
        try:
            partitioned = await maintain_click_partitions(
                sessionmaker, now=utcnow(), retention_days=retention_days
            )
            async with sessionmaker.begin() as session:
                purged = await purge_old_clicks(
                    session, now=utcnow(), retention_days=retention_days
                )
                await purge_old_click_ids(session, now=utcnow(), window_days=attribution_days)
            if purged.clicks or purged.visitors or partitioned.created or partitioned.dropped:
                logger.info(
                    "retention: purged %s clicks, %s visitor entries; click partitions "
                    "created %s, dropped %s",
                    purged.clicks,
                    purged.visitors,
                    partitioned.created,
                    partitioned.dropped,
                )
        except Exception:
            logger.exception("purging old clicks failed")
        await asyncio.sleep(every_seconds)
