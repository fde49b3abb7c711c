"""The click flush's bulk writes, one statement per table whatever the batch size.

A flush runs beside the redirects on one event loop, so its cost per click is what the redirect
pays for recording. Here every table takes a whole batch in one statement with one parameter
per column (PostgreSQL: COPY and `unnest` over arrays) or one JSON document (SQLite: `json_each`,
a single step of the SQLite engine instead of a bind and a step per row).
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import bulk_insert, driver_connection, sqlite_datetime, utcnow
from app.models import Campaign, Link

VisitorRow = tuple[int, date, str, datetime]  # link, day, visitor key, hour of the first click
RollupRow = tuple[int, datetime, int, int, int]  # link, hour, clicks, bot clicks, unique visitors

CLICK_COLUMNS = (
    "link_id",
    "delivery_id",
    "kind",
    "at",
    "is_bot",
    "bot_reason",
    "visitor_key",
    "ua_class",
    "referrer_host",
)


def _json_values(count: int) -> str:
    """The first `count` items of each `json_each` row: the SELECT list of a SQLite insert."""
    return ", ".join(f"value ->> {i}" for i in range(count))


def _added(table: str, columns: Sequence[str]) -> str:
    """An upsert's SET clause adding the new row's counts to the stored ones."""
    return ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)


_SQLITE_CLICKS = (
    f"INSERT INTO clicks ({', '.join(CLICK_COLUMNS)}) "
    f"SELECT {_json_values(len(CLICK_COLUMNS))} FROM json_each(?)"
)
# `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint of the SELECT.
_SQLITE_VISITORS = (
    "INSERT INTO link_visitors (link_id, day, visitor_key, hour) "
    f"SELECT {_json_values(4)} FROM json_each(?) WHERE true "
    "ON CONFLICT DO NOTHING RETURNING link_id, hour"
)
_PG_VISITORS = (
    "INSERT INTO link_visitors (link_id, day, visitor_key, hour) "
    "SELECT * FROM unnest($1::bigint[], $2::date[], $3::text[], $4::timestamptz[]) "
    "ON CONFLICT DO NOTHING RETURNING link_id, hour"
)
_ROLLUP_UPDATE = "ON CONFLICT (link_id, hour) DO UPDATE SET " + _added(
    "click_rollups", ("clicks", "bot_clicks", "unique_visitors")
)
_SQLITE_ROLLUPS = (
    "INSERT INTO click_rollups (link_id, hour, clicks, bot_clicks, unique_visitors) "
    f"SELECT {_json_values(5)} FROM json_each(?) WHERE true {_ROLLUP_UPDATE}"
)
_PG_ROLLUPS = (
    "INSERT INTO click_rollups (link_id, hour, clicks, bot_clicks, unique_visitors) "
    "SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::int[], $5::int[]) "
    + _ROLLUP_UPDATE
)


# (delivery, visitor) pairs whose clicks since a moment touch at least a number of links.
_SQLITE_BURST_SUSPECTS = (
    "SELECT c.delivery_id, c.visitor_key FROM json_each(?) AS p JOIN clicks AS c "
    "ON c.delivery_id = p.value ->> 0 AND c.visitor_key = p.value ->> 1 "
    "WHERE c.at >= ? "
    "GROUP BY c.delivery_id, c.visitor_key HAVING count(DISTINCT c.link_id) >= ?"
)
_PG_BURST_SUSPECTS = (
    "SELECT c.delivery_id, c.visitor_key FROM unnest($1::int[], $2::text[]) AS p(d, v) "
    "JOIN clicks AS c ON c.delivery_id = p.d AND c.visitor_key = p.v "
    "WHERE c.at >= $3 "
    "GROUP BY c.delivery_id, c.visitor_key HAVING count(DISTINCT c.link_id) >= $4"
)


@dataclass(frozen=True, slots=True)
class LinkFacts:
    """What the statistics rollups need to know about a link (it never changes)."""

    kind: str
    campaign_id: int
    organization_id: int
    message_id: int
    amplifier_id: int  # 0 once the amplifier is deleted
    network: str


FACT_COLUMNS = (
    Link.kind,
    Link.campaign_id,
    Campaign.organization_id,
    Link.message_id,
    Link.amplifier_id,
    Link.network,
)


def link_facts(row: Any) -> LinkFacts:
    return LinkFacts(
        kind=row.kind,
        campaign_id=row.campaign_id,
        organization_id=row.organization_id,
        message_id=row.message_id,
        amplifier_id=row.amplifier_id or 0,
        network=row.network,
    )


async def facts_of_links(connection: AsyncConnection, ids: Sequence[int]) -> dict[int, LinkFacts]:
    facts: dict[int, LinkFacts] = {}
    for start in range(0, len(ids), 5_000):
        rows = await connection.execute(
            select(Link.id, *FACT_COLUMNS)
            .join(Campaign, Campaign.id == Link.campaign_id)
            .where(Link.id.in_(ids[start : start + 5_000]))
        )
        facts.update((row.id, link_facts(row)) for row in rows.all())
    return facts


# Rows for the statistics rollups (app/models/stats.py):
# engagement: campaign, amplifier, message, network, organization, share clicks, visits,
#   unique visitors, bot clicks, hour of the batch's first human share click (or None);
# campaign hours: campaign, hour, share clicks, visits, unique visitors, bot clicks;
# amplifier days: organization, day, amplifier, share clicks, visits, unique visitors.
EngagementRow = tuple[int, int, int, str, int, int, int, int, int, datetime | None]
HourRow = tuple[int, datetime, int, int, int, int]
DayRow = tuple[int, date, int, int, int, int]


_COUNTS = ("share_clicks", "visits", "unique_visitors")
_ENGAGEMENT_COLUMNS = (
    "campaign_id, amplifier_id, message_id, network, organization_id, share_clicks, visits, "
    "unique_visitors, bot_clicks, first_shared_at"
)
# A (message, network) earns its share points at its first human share click; a burst
# re-flagging every share of it takes them back.
_ENGAGEMENT_UPDATE = (
    "ON CONFLICT (campaign_id, amplifier_id, message_id, network) DO UPDATE SET "
    f"{_added('engagement', (*_COUNTS, 'bot_clicks'))}, "
    "first_shared_at = CASE "
    "WHEN engagement.share_clicks + excluded.share_clicks <= 0 THEN NULL "
    "WHEN engagement.share_clicks <= 0 THEN excluded.first_shared_at "
    "ELSE engagement.first_shared_at END, "
    "updated_at = excluded.updated_at"
)
_HOUR_COLUMNS = "campaign_id, hour, share_clicks, visits, unique_visitors, bot_clicks, updated_at"
_HOUR_UPDATE = (
    "ON CONFLICT (campaign_id, hour) DO UPDATE SET "
    f"{_added('campaign_hours', (*_COUNTS, 'bot_clicks'))}, updated_at = excluded.updated_at"
)
_DAY_COLUMNS = "organization_id, day, amplifier_id, share_clicks, visits, unique_visitors"
_DAY_UPDATE = (
    "ON CONFLICT (organization_id, day, amplifier_id) DO UPDATE SET "
    f"{_added('amplifier_days', _COUNTS)}"
)


# SQLite: ?1 the rows as JSON, ?2 the time of the change.
_SQLITE_ENGAGEMENT = (
    f"INSERT INTO engagement ({_ENGAGEMENT_COLUMNS}, updated_at) "
    f"SELECT {_json_values(10)}, ?2 FROM json_each(?1) WHERE true {_ENGAGEMENT_UPDATE}"
)
_SQLITE_HOURS = (
    f"INSERT INTO campaign_hours ({_HOUR_COLUMNS}) "
    f"SELECT {_json_values(6)}, ?2 FROM json_each(?1) WHERE true {_HOUR_UPDATE}"
)
_SQLITE_DAYS = (
    f"INSERT INTO amplifier_days ({_DAY_COLUMNS}) "
    f"SELECT {_json_values(6)} FROM json_each(?1) WHERE true {_DAY_UPDATE}"
)
_PG_ENGAGEMENT = (
    f"INSERT INTO engagement ({_ENGAGEMENT_COLUMNS}, updated_at) "
    "SELECT *, $11::timestamptz FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], "
    "$5::int[], $6::int[], $7::int[], $8::int[], $9::int[], $10::timestamptz[]) "
    + _ENGAGEMENT_UPDATE
)
_PG_HOURS = (
    f"INSERT INTO campaign_hours ({_HOUR_COLUMNS}) "
    "SELECT *, $7::timestamptz FROM unnest($1::int[], $2::timestamptz[], $3::int[], $4::int[], "
    "$5::int[], $6::int[]) " + _HOUR_UPDATE
)
_PG_DAYS = (
    f"INSERT INTO amplifier_days ({_DAY_COLUMNS}) "
    "SELECT * FROM unnest($1::int[], $2::date[], $3::int[], $4::int[], $5::int[], $6::int[]) "
    + _DAY_UPDATE
)


async def add_stats(
    connection: AsyncConnection,
    engagement: Sequence[EngagementRow],
    hours: Sequence[HourRow],
    days: Sequence[DayRow],
) -> None:
    """Add a batch's counts to the statistics rollups, one statement per table."""
    now = utcnow()
    if _is_postgresql(connection):
        driver = await driver_connection(connection)
        if engagement:
            await driver.execute(_PG_ENGAGEMENT, *_columns(engagement), now)
        if hours:
            await driver.execute(_PG_HOURS, *_columns(hours), now)
        if days:
            await driver.execute(_PG_DAYS, *_columns(days))
        return
    stamp = sqlite_datetime(now)
    if engagement:
        firsts = _texts(row[9] for row in engagement if row[9] is not None)
        document = _json(
            [(*row[:9], None if row[9] is None else firsts[row[9]]) for row in engagement]
        )
        await connection.exec_driver_sql(_SQLITE_ENGAGEMENT, (document, stamp))
    if hours:
        texts = _texts(row[1] for row in hours)
        document = _json([(row[0], texts[row[1]], *row[2:]) for row in hours])
        await connection.exec_driver_sql(_SQLITE_HOURS, (document, stamp))
    if days:
        document = _json([(row[0], row[1].isoformat(), *row[2:]) for row in days])
        await connection.exec_driver_sql(_SQLITE_DAYS, (document,))


def _is_postgresql(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


def _columns(rows: Sequence[Sequence[object]]) -> list[list[object]]:
    """Rows turned into one list per column: `unnest` parameters."""
    return [list(column) for column in zip(*rows, strict=True)]


def _texts(moments: Iterable[datetime]) -> dict[datetime, str]:
    """SQLite's text for each distinct moment (a batch holds few distinct hours)."""
    return {moment: sqlite_datetime(moment) for moment in set(moments)}


def _json(rows: Sequence[Sequence[object]]) -> str:
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False)


async def insert_clicks(connection: AsyncConnection, clicks: Sequence[Any]) -> None:
    """Click events (recorder.ClickEvent), with aware UTC times."""
    if not clicks:
        return
    if _is_postgresql(connection):
        await bulk_insert(connection, "clicks", CLICK_COLUMNS, [c.row() for c in clicks])
        return
    rows = [c.row(sqlite_datetime(c.at)) for c in clicks]
    await connection.exec_driver_sql(_SQLITE_CLICKS, (_json(rows),))


async def add_visitors(
    connection: AsyncConnection, rows: Sequence[VisitorRow]
) -> list[tuple[int, datetime]]:
    """Add (link, day, visitor) to the visitor sets; returns (link, hour) of each one new."""
    if not rows:
        return []
    if _is_postgresql(connection):
        driver = await driver_connection(connection)
        records = await driver.fetch(_PG_VISITORS, *_columns(rows))
        return [(record[0], record[1]) for record in records]
    texts = _texts(row[3] for row in rows)
    days = {day: day.isoformat() for day in {row[1] for row in rows}}
    document = _json([(link, days[day], visitor, texts[hour]) for link, day, visitor, hour in rows])
    result = await connection.exec_driver_sql(_SQLITE_VISITORS, (document,))
    hours = {text: hour for hour, text in texts.items()}
    new: list[Any] = list(result.all())
    return [(link, hours[hour]) for link, hour in new]


async def add_rollups(connection: AsyncConnection, rows: Sequence[RollupRow]) -> None:
    """Add the counts to each (link, hour) rollup row, creating it when missing."""
    if not rows:
        return
    if _is_postgresql(connection):
        driver = await driver_connection(connection)
        await driver.execute(_PG_ROLLUPS, *_columns(rows))
        return
    texts = _texts(row[1] for row in rows)
    document = _json([(link, texts[hour], *counts) for link, hour, *counts in rows])
    await connection.exec_driver_sql(_SQLITE_ROLLUPS, (document,))


async def burst_suspects(
    connection: AsyncConnection, pairs: Sequence[tuple[int, str]], since: datetime, links: int
) -> list[tuple[int, str]]:
    """The (delivery, visitor) pairs among `pairs` with clicks on at least `links`
    different links since `since`: one indexed lookup per pair, in one statement."""
    if not pairs:
        return []
    if _is_postgresql(connection):
        driver = await driver_connection(connection)
        records = await driver.fetch(_PG_BURST_SUSPECTS, *_columns(pairs), since, links)
        return [(record[0], record[1]) for record in records]
    result = await connection.exec_driver_sql(
        _SQLITE_BURST_SUSPECTS, (_json(pairs), sqlite_datetime(since), links)
    )
    suspects: list[Any] = list(result.all())
    return [(delivery, visitor) for delivery, visitor in suspects]
