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
from decimal import Decimal
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
    variant: int = 0  # the message's copy variant the link carries


FACT_COLUMNS = (
    Link.kind,
    Link.campaign_id,
    Campaign.organization_id,
    Link.message_id,
    Link.amplifier_id,
    Link.network,
    Link.variant,
)


def link_facts(row: Any) -> LinkFacts:
    return LinkFacts(
        kind=row.kind,
        campaign_id=row.campaign_id,
        organization_id=row.organization_id,
        message_id=row.message_id,
        amplifier_id=row.amplifier_id or 0,
        network=row.network,
        variant=row.variant,
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


@dataclass(frozen=True, slots=True)
class BulkUpsert:
    """`INSERT … ON CONFLICT` of a whole batch in one statement: `unnest` over one array per
    column on PostgreSQL, `json_each` over one document on SQLite. Rows are tuples in
    `columns` order; `stamped` names a column set to the moment of the write."""

    table: str
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type), in row order
    key: tuple[str, ...]
    added: tuple[str, ...] = ()  # columns whose new values are added to the stored ones
    extra_set: str = ""  # further SET assignments, after the additions
    returning: tuple[str, ...] = ()
    stamped: str | None = None

    def _assignments(self) -> str:
        parts = [f"{c} = {self.table}.{c} + excluded.{c}" for c in self.added]
        if self.extra_set:
            parts.append(self.extra_set)
        if self.stamped:
            parts.append(f"{self.stamped} = excluded.{self.stamped}")
        return ", ".join(parts)

    def _tail(self) -> str:
        conflict = f" ON CONFLICT ({', '.join(self.key)}) "
        assignments = self._assignments()
        tail = conflict + (f"DO UPDATE SET {assignments}" if assignments else "DO NOTHING")
        if self.returning:
            tail += f" RETURNING {', '.join(self.returning)}"
        return tail

    def _names(self) -> str:
        names = [name for name, _ in self.columns]
        if self.stamped:
            names.append(self.stamped)
        return ", ".join(names)

    def postgresql(self) -> str:
        arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(self.columns, 1))
        stamp = f", ${len(self.columns) + 1}::timestamptz" if self.stamped else ""
        return (
            f"INSERT INTO {self.table} ({self._names()}) SELECT *{stamp} FROM unnest({arrays})"
            + self._tail()
        )

    def sqlite(self) -> str:
        stamp = ", ?2" if self.stamped else ""
        # `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint.
        return (
            f"INSERT INTO {self.table} ({self._names()}) "
            f"SELECT {_json_values(len(self.columns))}{stamp} FROM json_each(?1) WHERE true"
            + self._tail()
        )

    async def run(
        self, connection: AsyncConnection, rows: Sequence[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        """Write `rows`; returns the `returning` columns of each row written."""
        if not rows:
            return []
        now = utcnow()
        if _is_postgresql(connection):
            driver = await driver_connection(connection)
            stamp = (now,) if self.stamped else ()
            records = await driver.fetch(self.postgresql(), *_columns(rows), *stamp)
            return [tuple(record) for record in records]
        converted = [i for i, (_, kind) in enumerate(self.columns) if kind in _SQLITE_CONVERTED]
        document = _json([_sqlite_values(row, converted) for row in rows] if converted else rows)
        parameters = (document, sqlite_datetime(now)) if self.stamped else (document,)
        result = await connection.exec_driver_sql(self.sqlite(), parameters)
        return [tuple(row) for row in result.all()] if self.returning else []


_SQLITE_CONVERTED = ("timestamptz", "date", "numeric")  # kinds JSON cannot carry as they are


def _sqlite_values(row: tuple[Any, ...], converted: Sequence[int]) -> list[Any]:
    """The row's moments and days as SQLite's stored text, its decimals as the floats SQLite
    stores (None stays None)."""
    values = list(row)
    for i in converted:
        value = values[i]
        if isinstance(value, datetime):
            values[i] = sqlite_datetime(value)
        elif isinstance(value, date):
            values[i] = value.isoformat()
        elif isinstance(value, Decimal):
            values[i] = float(value)
    return values


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


CLICK_IDS = BulkUpsert(
    table="click_ids",
    columns=(("key", "text"), ("link_id", "int"), ("at", "timestamptz")),
    key=("key",),
)


async def insert_click_ids(connection: AsyncConnection, clicks: Sequence[Any]) -> None:
    """The click ids handed out with these clicks (recorder.ClickEvent.click_key)."""
    rows = [(c.click_key, c.link_id, c.at) for c in clicks if c.click_key is not None]
    if rows:
        await CLICK_IDS.run(connection, rows)


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
    texts = _texts(hour for _, _, _, hour in rows)
    days = {day: day.isoformat() for day in {day for _, day, _, _ in rows}}
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
    texts = _texts(hour for _, hour, _, _, _ in rows)
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
