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

from app.core.db import bulk_insert, driver_connection, sqlite_datetime

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
    """Add the counts to each (link, hour) rollup row, creating it when missing."""
    if not rows:
        return
    if _is_postgresql(connection):
        driver = await driver_connection(connection)
        await driver.execute(_PG_ROLLUPS, *_columns(rows))
        return
    texts = {hour: sqlite_datetime(hour) for hour in {row[1] for row in rows}}
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
