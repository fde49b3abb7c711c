"""The click flush's bulk writes, one statement per table whatever the batch size.

A flush runs beside the redirects on one event loop, so its cost per click is what the redirect
pays for recording. Here every table takes a whole batch in one statement with one parameter
per column (PostgreSQL: COPY and `unnest` over arrays) or one JSON document (SQLite: `json_each`,
a single step of the SQLite engine instead of a bind and a step per row).
"""

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import bulk_insert, driver_connection, sqlite_datetime, utcnow

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

_SQLITE_CLICKS = (
    f"INSERT INTO clicks ({', '.join(CLICK_COLUMNS)}) SELECT "
    + ", ".join(f"value ->> {i}" for i in range(len(CLICK_COLUMNS)))
    + " FROM json_each(?)"
)
# `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint of the SELECT.
_SQLITE_VISITORS = (
    "INSERT INTO link_visitors (link_id, day, visitor_key, hour) "
    "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?) WHERE true "
    "ON CONFLICT DO NOTHING RETURNING link_id, hour"
)
_PG_VISITORS = (
    "INSERT INTO link_visitors (link_id, day, visitor_key, hour) "
    "SELECT * FROM unnest($1::bigint[], $2::date[], $3::text[], $4::timestamptz[]) "
    "ON CONFLICT DO NOTHING RETURNING link_id, hour"
)
_ROLLUP_UPDATE = (
    "ON CONFLICT (link_id, hour) DO UPDATE SET "
    "clicks = click_rollups.clicks + excluded.clicks, "
    "bot_clicks = click_rollups.bot_clicks + excluded.bot_clicks, "
    "unique_visitors = click_rollups.unique_visitors + excluded.unique_visitors"
)
_SQLITE_ROLLUPS = (
    "INSERT INTO click_rollups (link_id, hour, clicks, bot_clicks, unique_visitors) "
    "SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 "
    "FROM json_each(?) WHERE true " + _ROLLUP_UPDATE
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


def stats_statements(source: str, d: dict[str, str], day: str, now: str) -> tuple[str, ...]:
    """The statistics rollups (app/models/stats.py) from one batch of per-link hourly deltas
    `d` (link_id, hour, clicks, bot_clicks, unique_visitors) read from `source`."""
    share = f"CASE WHEN l.kind = 'share' THEN {d['clicks']} ELSE 0 END"
    visit = f"CASE WHEN l.kind = 'visit' THEN {d['clicks']} ELSE 0 END"
    unique = f"CASE WHEN l.kind = 'visit' THEN {d['unique_visitors']} ELSE 0 END"
    first_share = f"CASE WHEN l.kind = 'share' AND {d['clicks']} > 0 THEN {d['hour']} END"
    joined = (
        f"FROM {source} JOIN links AS l ON l.id = {d['link_id']} "
        "JOIN campaigns AS c ON c.id = l.campaign_id WHERE true"
    )
    sums = f"sum({share}), sum({visit}), sum({unique})"

    def add(table: str, columns: tuple[str, ...]) -> str:
        return ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)

    counts = ("share_clicks", "visits", "unique_visitors")
    engagement = (
        "INSERT INTO engagement (campaign_id, amplifier_id, message_id, network, "
        "organization_id, share_clicks, visits, unique_visitors, bot_clicks, first_shared_at, "
        "updated_at) "
        f"SELECT l.campaign_id, coalesce(l.amplifier_id, 0), l.message_id, l.network, "
        f"c.organization_id, {sums}, sum({d['bot_clicks']}), min({first_share}), {now} "
        f"{joined} GROUP BY l.campaign_id, coalesce(l.amplifier_id, 0), l.message_id, "
        "l.network, c.organization_id "
        "ON CONFLICT (campaign_id, amplifier_id, message_id, network) DO UPDATE SET "
        f"{add('engagement', (*counts, 'bot_clicks'))}, "
        "first_shared_at = CASE "
        "WHEN engagement.share_clicks + excluded.share_clicks <= 0 THEN NULL "
        "WHEN engagement.share_clicks <= 0 THEN excluded.first_shared_at "
        "ELSE engagement.first_shared_at END, "
        "updated_at = excluded.updated_at"
    )
    campaign_hours = (
        "INSERT INTO campaign_hours (campaign_id, hour, share_clicks, visits, unique_visitors, "
        "bot_clicks, updated_at) "
        f"SELECT l.campaign_id, {d['hour']}, {sums}, sum({d['bot_clicks']}), {now} "
        f"{joined} GROUP BY l.campaign_id, {d['hour']} "
        "ON CONFLICT (campaign_id, hour) DO UPDATE SET "
        f"{add('campaign_hours', (*counts, 'bot_clicks'))}, updated_at = excluded.updated_at"
    )
    amplifier_days = (
        "INSERT INTO amplifier_days (organization_id, day, amplifier_id, share_clicks, visits, "
        "unique_visitors) "
        f"SELECT c.organization_id, {day}, coalesce(l.amplifier_id, 0), {sums} "
        f"{joined} GROUP BY c.organization_id, {day}, coalesce(l.amplifier_id, 0) "
        "ON CONFLICT (organization_id, day, amplifier_id) DO UPDATE SET "
        f"{add('amplifier_days', counts)}"
    )
    return engagement, campaign_hours, amplifier_days


_DELTA_COLUMNS = ("link_id", "hour", "clicks", "bot_clicks", "unique_visitors")
_SQLITE_STATS = stats_statements(  # numbered: the time comes before the document in the text
    "json_each(?1) AS d",
    {name: f"d.value ->> {i}" for i, name in enumerate(_DELTA_COLUMNS)},
    day="date(d.value ->> 1)",
    now="?2",
)
_PG_STATS = stats_statements(
    "unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::int[], $5::int[]) "
    f"AS d({', '.join(_DELTA_COLUMNS)})",
    {name: f"d.{name}" for name in _DELTA_COLUMNS},
    day="(d.hour AT TIME ZONE 'UTC')::date",
    now="$6",
)


def _is_postgresql(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


def _columns(rows: Sequence[Sequence[object]]) -> list[list[object]]:
    """Rows turned into one list per column: `unnest` parameters."""
    return [list(column) for column in zip(*rows, strict=True)]


def _json(rows: Sequence[Sequence[object]]) -> str:
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False)


async def insert_clicks(connection: AsyncConnection, rows: Sequence[Sequence[object]]) -> None:
    """Rows in CLICK_COLUMNS order, with aware UTC datetimes."""
    if not rows:
        return
    if _is_postgresql(connection):
        await bulk_insert(connection, "clicks", CLICK_COLUMNS, rows)
        return
    converted = [(*row[:3], sqlite_datetime(row[3]), *row[4:]) for row in rows]  # type: ignore[arg-type]
    await connection.exec_driver_sql(_SQLITE_CLICKS, (_json(converted),))


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
    texts = {hour: sqlite_datetime(hour) for hour in {row[3] for row in rows}}
    days = {day: day.isoformat() for day in {row[1] for row in rows}}
    document = _json([(link, days[day], visitor, texts[hour]) for link, day, visitor, hour in rows])
    result = await connection.exec_driver_sql(_SQLITE_VISITORS, (document,))
    hours = {text: hour for hour, text in texts.items()}
    new: list[Any] = list(result.all())
    return [(link, hours[hour]) for link, hour in new]


async def add_rollups(connection: AsyncConnection, rows: Sequence[RollupRow]) -> None:
    """Add the counts to each (link, hour) rollup row, creating it when missing, and to the
    statistics rollups derived from them."""
    if not rows:
        return
    now = utcnow()
    if _is_postgresql(connection):
        driver = await driver_connection(connection)
        columns = _columns(rows)
        await driver.execute(_PG_ROLLUPS, *columns)
        for statement in _PG_STATS:
            await driver.execute(statement, *columns, *([now] if "$6" in statement else []))
        return
    texts = {hour: sqlite_datetime(hour) for hour in {row[1] for row in rows}}
    document = _json([(link, texts[hour], *counts) for link, hour, *counts in rows])
    await connection.exec_driver_sql(_SQLITE_ROLLUPS, (document,))
    for statement in _SQLITE_STATS:
        parameters = (document, sqlite_datetime(now)) if "?2" in statement else (document,)
        await connection.exec_driver_sql(statement, parameters)


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
