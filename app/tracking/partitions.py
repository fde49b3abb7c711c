"""PostgreSQL keeps raw clicks in one partition per UTC month of their time (`clicks_y2026m11`,
migration 0009), so retention drops a month in one statement instead of deleting its rows one
by one, and the indexes a flush updates stay the size of a month. SQLite keeps one table.

This month's and next month's partitions exist before their first click: the migration
creates them, every process creates them at startup and the worker's retention job every hour.
A click in a month without its partition anyway (no worker ran for weeks, a clock far off)
lands in the default partition instead of failing its whole flush; the next run moves such
clicks into their month's new partition."""

import logging
import re
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

logger = logging.getLogger("amplify.partitions")

MONTHS_AHEAD = 1
DEFAULT_PARTITION = "clicks_default"
# Serializes partition changes between processes starting or running the job together.
_LOCK_KEY = 0x616D706C6966  # "amplif"
_MONTHLY = re.compile(r"clicks_y(\d{4})m(\d{2})")


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"clicks_y{start:%Y}m{start:%m}"


async def monthly_partitions(connection: AsyncConnection) -> dict[str, datetime]:
    """The month partitions of `clicks` by name, with the month each starts."""
    names = await connection.scalars(
        text(
            "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'clicks'::regclass"
        )
    )
    months: dict[str, datetime] = {}
    for name in names:
        if found := _MONTHLY.fullmatch(name):
            months[name] = datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)
    return months


async def ensure_click_partitions(
    connection: AsyncConnection, *, now: datetime, months_ahead: int = MONTHS_AHEAD
) -> list[str]:
    """Create the partitions of `now`'s month and the `months_ahead` next ones that are
    missing (none on SQLite), in the caller's transaction; the names created."""
    if connection.dialect.name != "postgresql":
        return []
    await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    existing = await monthly_partitions(connection)
    created = []
    start = month_start(now)
    for _ in range(months_ahead + 1):
        name = partition_name(start)
        if name not in existing:
            await _create_partition(connection, name, start)
            created.append(name)
        start = next_month(start)
    return created


async def _create_partition(connection: AsyncConnection, name: str, start: datetime) -> None:
    end = next_month(start)
    bounds = f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    month = {"start": start, "end": end}
    in_default = text(f"FROM {DEFAULT_PARTITION} WHERE at >= :start AND at < :end")
    strays = await connection.scalar(text(f"SELECT EXISTS (SELECT 1 {in_default})"), month)
    if not strays:
        await connection.exec_driver_sql(f"CREATE TABLE {name} PARTITION OF clicks {bounds}")
        return
    # PostgreSQL refuses a partition whose rows sit in the default one: move them first.
    await connection.exec_driver_sql(f"CREATE TABLE {name} (LIKE clicks INCLUDING DEFAULTS)")
    await connection.execute(
        text(f"WITH moved AS (DELETE {in_default} RETURNING *) INSERT INTO {name} TABLE moved"),
        month,
    )
    await connection.exec_driver_sql(f"ALTER TABLE clicks ATTACH PARTITION {name} {bounds}")


async def drop_expired_click_partitions(
    connection: AsyncConnection, *, cutoff: datetime
) -> list[str]:
    """Drop the month partitions whose every click is older than `cutoff` (none on SQLite);
    the names dropped."""
    if connection.dialect.name != "postgresql":
        return []
    await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    dropped = []
    for name, start in sorted((await monthly_partitions(connection)).items()):
        if next_month(start) <= cutoff:
            await connection.exec_driver_sql(f"DROP TABLE {name}")
            dropped.append(name)
    return dropped


async def prepare_click_partitions(engine: AsyncEngine, *, now: datetime) -> list[str]:
    """At startup: this month's and next month's partitions, in a transaction of their own.
    Never raises: a process that cannot reach the database yet still starts (its clicks would
    land in the default partition at worst)."""
    if engine.dialect.name != "postgresql":
        return []
    try:
        async with engine.begin() as connection:
            return await ensure_click_partitions(connection, now=now)
    except Exception:
        logger.exception("creating this month's click partitions failed")
        return []
