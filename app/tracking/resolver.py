"""Link and delivery lookups for the redirect, cached in process.

Links never change once created, so a code resolves from memory after its first request. A
cold code costs little even when thousands arrive at once (a launch: every click is its link's
first): the misses waiting at one moment are looked up together in one query, which also
brings in every other link of their deliveries (the amplifier's other share and visit links,
clicked next) and the deliveries' `sent_at` (cached once set: it is set once). A code wanted
while the query that brings it in runs (a visit just after its share) costs no query of its own.

On SQLite a lookup of a few codes (what arrives at one moment outside a burst) is read on the
event loop itself, from a connection of the resolver's own: an indexed read of a few dozen rows
from a WAL database takes well under a millisecond and never waits for the writer, while a
hand-over to a driver thread and back waits for the GIL and the loop, which a dashboard polling
keeps busy. Larger lookups (a launch's burst) go to the driver's thread as one call.
"""

import asyncio
import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from sqlalchemy import Select, select, union
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import driver_connection
from app.models import Campaign, Delivery, Link, LinkKind
from app.tracking.clickids import attribution_parts
from app.tracking.clickstore import FACT_COLUMNS, LinkFacts, link_facts

LINK_CACHE_SIZE = 500_000
MISS_CACHE_SIZE = 50_000
MISS_TTL_SECONDS = 5.0
CODES_PER_QUERY = 500
# SQLite: lookups of at most this many codes (at most 24 links each) run on the event loop.
INLINE_CODES = 8


_LOCATION_SAFE = ":/?#[]@!$&'()*+,;=%~"


def location_header(target: str) -> bytes:
    """Stored targets are validated URLs; non-ASCII characters are percent-encoded for HTTP."""
    if target.isascii():
        return target.encode()
    return quote(target, safe=_LOCATION_SAFE).encode()


@dataclass(frozen=True, slots=True)
class CachedLink:
    code: str
    id: int
    target: str
    delivery_id: int | None
    facts: LinkFacts
    location: bytes  # the `Location` header value, built once with the cached link
    # A visit link of an attribution campaign: the `Location` of a human visit is
    # `prefix + click id + suffix` (app/tracking/clickids.py).
    attributed: tuple[bytes, bytes] | None = None

    @property
    def kind(self) -> str:
        return self.facts.kind


_LINK_COLUMNS: tuple[Any, ...] = (
    Link.code,
    Link.id,
    Link.target,
    Link.delivery_id,
    Delivery.sent_at,
    Campaign.attribution,
    *FACT_COLUMNS,
)


def _links_where(*criteria: Any) -> Select[Any]:
    return (
        select(*_LINK_COLUMNS)
        .join(Campaign, Campaign.id == Link.campaign_id)
        .outerjoin(Delivery, Delivery.id == Link.delivery_id)
        .where(*criteria)
    )


def _with_their_deliveries(codes: list[str]) -> Any:
    """The links with these codes and every link of their deliveries, in one statement."""
    deliveries = select(Link.delivery_id).where(Link.code.in_(codes), Link.delivery_id.is_not(None))
    return union(_links_where(Link.code.in_(codes)), _links_where(Link.delivery_id.in_(deliveries)))


class LinkRow(NamedTuple):
    """A row of `_LINK_COLUMNS`, as SQLAlchemy would have typed it."""

    code: str
    id: int
    target: str
    delivery_id: int | None
    sent_at: datetime | None
    attribution: bool
    kind: str
    campaign_id: int
    organization_id: int
    message_id: int
    amplifier_id: int | None
    network: str
    variant: int


_SQLITE_LINK_ROWS = """
SELECT l.code, l.id, l.target, l.delivery_id, d.sent_at, c.attribution, l.kind, l.campaign_id,
       c.organization_id, l.message_id, l.amplifier_id, l.network, l.variant
FROM links AS l
JOIN campaigns AS c ON c.id = l.campaign_id
LEFT JOIN deliveries AS d ON d.id = l.delivery_id
"""
# `_with_their_deliveries` for SQLite, the codes one JSON array (?1).
_SQLITE_LINKS = f"""{_SQLITE_LINK_ROWS}WHERE l.code IN (SELECT value FROM json_each(?1))
UNION{_SQLITE_LINK_ROWS}WHERE l.delivery_id IN (
    SELECT delivery_id FROM links
    WHERE code IN (SELECT value FROM json_each(?1)) AND delivery_id IS NOT NULL
)
"""


def _codes_document(codes: list[str]) -> str:
    """The codes as the JSON array `_SQLITE_LINKS` reads."""
    return json.dumps(codes, separators=(",", ":"))


def _sqlite_link_row(values: Any) -> LinkRow:
    """A raw SQLite row: `sent_at` is stored as text (UTC), `attribution` as 0/1."""
    code, id_, target, delivery_id, sent_at, attribution, *facts = values
    moment = datetime.fromisoformat(sent_at).replace(tzinfo=UTC) if sent_at else None
    return LinkRow(code, id_, target, delivery_id, moment, bool(attribution), *facts)


class InlineReader:
    """A SQLite connection of its own, read on the event loop's thread: autocommit (each read
    sees what is committed), read-only, and never waiting for a lock (no busy timeout: a
    lookup that finds the database locked goes to the driver's thread instead)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def of(cls, engine: AsyncEngine) -> "InlineReader | None":
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        return cls(Path(database))

    def rows(self, document: str) -> list[Any] | None:
        """The raw rows of `_SQLITE_LINKS` for a `_codes_document`, or None when SQLite could
        not answer at once."""
        try:
            if self._connection is None:
                connection = sqlite3.connect(self.path, timeout=0, isolation_level=None)
                connection.execute("PRAGMA query_only = ON")
                self._connection = connection
            return self._connection.execute(_SQLITE_LINKS, (document,)).fetchall()
        except sqlite3.Error:
            return None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class LinkResolver:
    def __init__(self, engine: AsyncEngine, *, attribution_param: str = "amp_cid") -> None:
        self.engine = engine
        self._inline = InlineReader.of(engine)
        self.attribution_param = attribution_param
        self._links: dict[str, CachedLink] = {}
        self._misses: dict[str, float] = {}
        # By link code, not delivery id: SQLite may reuse the id of a deleted delivery.
        self._sent_at: dict[str, datetime] = {}
        # Codes waiting for the next lookup, and the task that looks them up.
        self._wanted: dict[str, asyncio.Future[CachedLink | None]] = {}
        self._looking: asyncio.Task[None] | None = None
        self.queries = 0  # lookups sent to the database
        self.inline_queries = 0  # of which read on the event loop (SQLite)

    async def link(self, code: str) -> CachedLink | None:
        cached = self._links.get(code)
        if cached is not None:
            return cached
        missed = self._misses.get(code)
        if missed is not None and time.monotonic() - missed < MISS_TTL_SECONDS:
            return None
        waiting = self._wanted.get(code)
        if waiting is None:
            waiting = self._wanted[code] = asyncio.get_running_loop().create_future()
            if self._looking is None or self._looking.done():
                self._looking = asyncio.create_task(self._look_up(), name="amplify-link-lookup")
        # Shielded: one redirect giving up must not cancel the lookup others wait for.
        return await asyncio.shield(waiting)

    async def _look_up(self) -> None:
        """Resolve every wanted code, a query at a time, until none is left: codes wanted
        while a query runs go together into the next one."""
        await asyncio.sleep(0)  # let the misses of this moment gather
        while self._wanted:
            self._answer_brought_in()
            if not self._wanted:
                return
            codes = list(self._wanted)[:CODES_PER_QUERY]
            wanted = {code: self._wanted.pop(code) for code in codes}
            try:
                await self._fetch(codes, wanted)
            except Exception as error:
                for future in wanted.values():
                    if not future.done():
                        future.set_exception(error)
                        future.exception()  # retrieved: a waiter that left does not log it

    def _answer(
        self, wanted: dict[str, "asyncio.Future[CachedLink | None]"], found: dict[str, CachedLink]
    ) -> None:
        for code, future in wanted.items():
            link = found.get(code)
            if link is None:
                self._missed(code)
            if not future.done():
                future.set_result(link)
        self._answer_brought_in()

    def _answer_brought_in(self) -> None:
        """Answer the codes that the previous query brought in with their deliveries."""
        for code in [code for code in self._wanted if code in self._links]:
            future = self._wanted.pop(code)
            if not future.done():
                future.set_result(self._links[code])

    async def _fetch(
        self, codes: list[str], wanted: dict[str, "asyncio.Future[CachedLink | None]"]
    ) -> None:
        """Look `codes` up and answer their waiters; they are answered before the connection
        goes back to the pool (on SQLite that is one more call into the driver's thread)."""
        self.queries += 1
        document = _codes_document(codes)
        if self._inline is not None and len(codes) <= INLINE_CODES:
            raw = self._inline.rows(document)
            if raw is not None:
                self.inline_queries += 1
                self._found([_sqlite_link_row(values) for values in raw], wanted)
                return
        async with self.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                driver = await driver_connection(connection)
                rows: Any = [
                    _sqlite_link_row(values)
                    for values in await driver.execute_fetchall(_SQLITE_LINKS, (document,))
                ]
            else:
                rows = (await connection.execute(_with_their_deliveries(codes))).all()
            self._found(rows, wanted)

    def _found(self, rows: Any, wanted: dict[str, "asyncio.Future[CachedLink | None]"]) -> None:
        found: dict[str, CachedLink] = {}
        for row in rows:
            link = self._links.get(row.code) or self._remember(row)
            found[row.code] = link
            if row.sent_at is not None:
                self._remember_sent_at(row.code, row.sent_at)
        self._answer(wanted, found)

    def close(self) -> None:
        if self._inline is not None:
            self._inline.close()

    def _remember(self, row: Any) -> CachedLink:
        link = CachedLink(
            code=row.code,
            id=row.id,
            target=row.target,
            delivery_id=row.delivery_id,
            facts=link_facts(row),
            location=location_header(row.target),
            attributed=self._attributed(row),
        )
        if len(self._links) >= LINK_CACHE_SIZE:
            del self._links[next(iter(self._links))]
        self._links[row.code] = link
        return link

    def _attributed(self, row: Any) -> tuple[bytes, bytes] | None:
        if not row.attribution or row.kind != LinkKind.VISIT:
            return None
        prefix, suffix = attribution_parts(row.target, self.attribution_param)
        return location_header(prefix), location_header(suffix)

    def _missed(self, code: str) -> None:
        if len(self._misses) >= MISS_CACHE_SIZE:
            self._misses.clear()
        self._misses[code] = time.monotonic()

    def _remember_sent_at(self, code: str, sent_at: datetime) -> None:
        if len(self._sent_at) >= LINK_CACHE_SIZE:
            del self._sent_at[next(iter(self._sent_at))]
        self._sent_at[code] = sent_at

    async def delivery_sent_at(self, link: CachedLink) -> datetime | None:
        """When the SMTP server accepted the digest holding this link (None: not yet)."""
        sent_at = self._sent_at.get(link.code)
        if sent_at is not None or link.delivery_id is None:
            return sent_at
        async with self.engine.connect() as connection:
            value = await connection.scalar(
                select(Delivery.sent_at).where(Delivery.id == link.delivery_id)
            )
        if value is not None:
            self._remember_sent_at(link.code, value)
        return value
