"""Batched, durable click recording (group commit) with the rollups in the same transaction.

The redirect appends a click to memory and answers at once; a background task commits the
pending clicks at the latest `AMPLIFY_CLICK_FLUSH_SECONDS` after the oldest of them arrived (or
sooner when many are waiting), together with the per-link hourly rollups and the unique-visitor
sets. Clicks keep arriving while a batch commits, so under load a commit starts as soon as the
previous one ends: an answered click waits at most the flush interval or one commit, whichever
is longer, plus its own commit — all that a crash can lose. A failed commit keeps its clicks and
retries; shutting down flushes everything, so no answered click is lost on a clean stop.
"""

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.metrics import (
    CLICK_BATCH_SIZE,
    CLICK_COMMIT_INTERVAL,
    CLICK_FLUSH_FAILURES,
    CLICK_WAIT_SECONDS,
    CLICKS_FAILED,
    CLICKS_PENDING,
    CLICKS_RECORDED,
)
from app.models import Click, Link, LinkVisitor
from app.tracking.clickstore import (
    LinkFacts,
    add_rollups,
    add_visitors,
    burst_suspects,
    insert_click_ids,
    insert_clicks,
)
from app.tracking.counters import add_stats
from app.webhooks.clicks import report_clicks

logger = logging.getLogger("amplify.clicks")

BURST_WINDOW = timedelta(seconds=5)
BURST_LINKS = 3
PAIRS_PER_QUERY = 500


@dataclass(slots=True)
class ClickEvent:
    link_id: int
    delivery_id: int | None
    kind: str
    at: datetime
    is_bot: bool
    bot_reason: str | None
    visitor_key: str | None
    ua_class: str | None
    referrer_host: str | None
    facts: LinkFacts | None = None  # looked up at flush time when missing
    click_key: str | None = None  # the stored key of the click id it carried (clickids.py)

    def row(self, at: Any = None) -> tuple[Any, ...]:
        """The values in `clickstore.CLICK_COLUMNS` order (`at` as given, if given)."""
        return (
            self.link_id,
            self.delivery_id,
            self.kind,
            self.at if at is None else at,
            self.is_bot,
            self.bot_reason,
            self.visitor_key,
            self.ua_class,
            self.referrer_host,
        )


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass
class _Delta:
    clicks: int = 0
    bot_clicks: int = 0
    unique_visitors: int = 0


async def _count_new_visitors(
    connection: AsyncConnection,
    clicks: Sequence[ClickEvent],
    hours: Sequence[datetime],
    deltas: dict[Any, _Delta],
) -> None:
    """Add each human visitor's first click of the day on a link to the visitor set; the
    ones that were new count as unique visitors in their hour."""
    first: dict[tuple[int, date, str], datetime] = {}
    for click, hour in zip(clicks, hours, strict=True):
        if click.is_bot or click.visitor_key is None:
            continue
        key = (click.link_id, click.at.date(), click.visitor_key)
        if key not in first or hour < first[key]:
            first[key] = hour
    new = await add_visitors(
        connection,
        [(link_id, day, visitor, hour) for (link_id, day, visitor), hour in first.items()],
    )
    for link_id, hour in new:
        deltas[(link_id, hour)].unique_visitors += 1


async def _apply_rollups(connection: AsyncConnection, deltas: dict[Any, _Delta]) -> None:
    await add_rollups(
        connection,
        [
            (link_id, hour, d.clicks, d.bot_clicks, d.unique_visitors)
            for (link_id, hour), d in deltas.items()
            if d.clicks or d.bot_clicks or d.unique_visitors
        ],
    )


def _bursts(clicks: Sequence[Any]) -> set[int]:
    """Ids of clicks inside any 5-second window that holds ≥ 3 different links (one visitor
    and one delivery, clicks sorted by time)."""
    flagged: set[int] = set()
    start = 0
    for end in range(len(clicks)):
        while clicks[end].at - clicks[start].at > BURST_WINDOW:
            start += 1
        window = clicks[start : end + 1]
        if len({c.link_id for c in window}) >= BURST_LINKS:
            flagged.update(c.id for c in window)
    return flagged


async def _burst_candidates(
    connection: AsyncConnection, pairs: Sequence[tuple[int, str]], since: datetime
) -> list[Any]:
    """Recent clicks of the (delivery, visitor) pairs that touched ≥ 3 links since
    `since`, by time: a cheap aggregate first, since almost no pair is a burst."""
    suspects = await burst_suspects(connection, pairs, since, BURST_LINKS)
    if not suspects:
        return []
    rows: list[Any] = []
    for start in range(0, len(suspects), PAIRS_PER_QUERY):
        rows += (
            await connection.execute(
                select(
                    Click.id,
                    Click.link_id,
                    Click.at,
                    Click.is_bot,
                    Click.delivery_id,
                    Click.visitor_key,
                )
                .where(
                    tuple_(Click.delivery_id, Click.visitor_key).in_(
                        suspects[start : start + PAIRS_PER_QUERY]
                    ),
                    Click.at >= since,
                )
                .order_by(Click.at, Click.id)
            )
        ).all()
    return rows


async def _reclassify_bursts(
    connection: AsyncConnection, clicks: Sequence[ClickEvent], deltas: dict[Any, _Delta]
) -> int:
    """Scanner bursts: re-flag every human click of a burst (the first one included) as a
    bot, moving it between rollup columns and out of the visitor sets. Any links of one
    delivery count, share and visit alike (API.md)."""
    pairs = {(c.delivery_id, c.visitor_key) for c in clicks if c.delivery_id and c.visitor_key}
    if not pairs:
        return 0
    since = min(c.at for c in clicks) - BURST_WINDOW
    groups: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for row in await _burst_candidates(connection, sorted(pairs), since):
        groups[(row.delivery_id, row.visitor_key)].append(row)
    flagged: list[Any] = []
    for group in groups.values():
        ids = _bursts(group)
        flagged += [row for row in group if row.id in ids and not row.is_bot]
    if not flagged:
        return 0
    await connection.execute(
        update(Click)
        .where(Click.id.in_([row.id for row in flagged]))
        .values(is_bot=True, bot_reason="burst")
    )
    for row in flagged:
        delta = deltas[(row.link_id, hour_of(row.at))]
        delta.clicks -= 1
        delta.bot_clicks += 1
    await _uncount_visitors(connection, flagged, deltas)
    return len(flagged)


async def _uncount_visitors(
    connection: AsyncConnection, flagged: Sequence[Any], deltas: dict[Any, _Delta]
) -> None:
    for link_id, day, visitor in {(r.link_id, r.at.date(), r.visitor_key) for r in flagged}:
        day_start = datetime(day.year, day.month, day.day, tzinfo=flagged[0].at.tzinfo)
        still_human = await connection.scalar(
            select(func.count())
            .select_from(Click)
            .where(
                Click.link_id == link_id,
                Click.visitor_key == visitor,
                Click.is_bot.is_(False),
                Click.at >= day_start,
                Click.at < day_start + timedelta(days=1),
            )
        )
        if still_human:
            continue
        counted = (
            await connection.execute(
                delete(LinkVisitor)
                .where(
                    and_(
                        LinkVisitor.link_id == link_id,
                        LinkVisitor.day == day,
                        LinkVisitor.visitor_key == visitor,
                    )
                )
                .returning(LinkVisitor.hour)
            )
        ).first()
        if counted is not None:
            deltas[(link_id, counted.hour)].unique_visitors -= 1


async def store_clicks(connection: AsyncConnection, clicks: Sequence[ClickEvent]) -> int:
    """Insert clicks and keep rollups and visitor sets exact; returns clicks re-flagged."""
    await insert_clicks(connection, clicks)
    await insert_click_ids(connection, clicks)
    hours = [hour_of(c.at) for c in clicks]
    deltas: dict[Any, _Delta] = defaultdict(_Delta)
    for click, hour in zip(clicks, hours, strict=True):
        delta = deltas[(click.link_id, hour)]
        if click.is_bot:
            delta.bot_clicks += 1
        else:
            delta.clicks += 1
    await _count_new_visitors(connection, clicks, hours, deltas)
    reflagged = await _reclassify_bursts(connection, clicks, deltas)
    await _apply_rollups(connection, deltas)
    await add_stats(connection, clicks, deltas)
    await report_clicks(connection, clicks)
    return reflagged


@dataclass(frozen=True, slots=True)
class CommitTiming:
    """One committed batch, on the recorder's clock."""

    started: float
    finished: float
    oldest_arrived: float
    clicks: int


class ClickRecorder:
    """Holds answered clicks until they are committed; see the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        flush_seconds: float = 0.1,
        max_batch: int = 10_000,
        high_water: int = 20_000,
        max_pending: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self.high_water = high_water
        self.max_pending = max_pending
        # Set while the buffer is under its high-water mark, or while the database fails
        # (then the buffer grows to max_pending rather than the redirects waiting on it).
        self._room = asyncio.Event()
        self._room.set()
        self._healthy = True
        self._pending: list[ClickEvent] = []
        # When the oldest pending click arrived: its batch's deadline counts from then.
        self._oldest_arrived = 0.0
        self.recent_commits: deque[CommitTiming] = deque(maxlen=1000)
        # Set by the first click into an empty buffer, a full batch and closing.
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.recorded = 0
        self.failed_flushes = 0
        self.failed_records = 0
        self.dropped = 0
        self._last_drop_log = 0.0
        # One flush at a time: bursts are detected across batches in commit order, and
        # `flush()` returns only once everything answered so far is committed.
        self._flushing = asyncio.Lock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, click: ClickEvent) -> None:
        """Never raises and never waits: the redirect must answer whatever happens here."""
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            CLICKS_FAILED.labels("dropped").inc()
            now = time.monotonic()
            if now - self._last_drop_log > 10:
                self._last_drop_log = now
                logger.error(
                    "click buffer full (%s): dropped %s clicks", self.max_pending, self.dropped
                )
            return
        if not self._pending:
            self._oldest_arrived = self.clock()
            self._wake.set()
        self._pending.append(click)
        if len(self._pending) >= self.max_batch:
            self._wake.set()
            if len(self._pending) >= self.high_water and self._healthy:
                self._room.clear()

    async def room(self) -> None:
        """Wait while more clicks are pending than the database has been keeping up with:
        under overload the redirects slow down to the rate clicks can be stored instead of
        the buffer growing until it drops clicks. Returns at once while the database fails."""
        if not self._room.is_set():
            await self._room.wait()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="amplify-click-recorder")

    async def close(self, timeout: float = 30.0) -> None:
        """Flush everything pending; give up (and say how much) only after `timeout`."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=timeout)
            except TimeoutError:
                logger.error("shutting down with %s clicks not stored", len(self._pending))

    async def flush(self) -> None:
        """Commit what is pending now, including a batch being committed meanwhile."""
        while True:
            async with self._flushing:
                if not self._pending:
                    return
                if not await self._flush_locked():
                    return

    async def _run(self) -> None:
        failures = 0
        while True:
            await self._batch_due()
            if not self._pending:
                if self._closing:
                    return
                continue
            if await self._flush_batch():
                failures = 0
            else:
                failures += 1
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))

    async def _batch_due(self) -> None:
        """Return when the oldest pending click has waited `flush_seconds`, a batch is full,
        or the recorder is closing."""
        while not self._closing:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            remaining = self._oldest_arrived + self.flush_seconds - self.clock()
            if remaining <= 0 or len(self._pending) >= self.max_batch:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=remaining)

    async def _flush_batch(self) -> bool:
        async with self._flushing:
            if not self._pending:
                return True
            return await self._flush_locked()

    async def _flush_locked(self) -> bool:
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        # Clicks left over from a batch larger than max_batch keep the old deadline (passed).
        oldest_arrived, started = self._oldest_arrived, self.clock()
        try:
            async with self.engine.begin() as connection:
                await store_clicks(connection, batch)
        except IntegrityError:
            # A link deleted (with its campaign) after its click was answered: keep the rest.
            try:
                kept = await self._without_deleted_links(batch)
            except Exception:
                kept = batch
            self._pending = kept + self._pending
            self._oldest_arrived = oldest_arrived
            if len(kept) == len(batch):
                self.failed_flushes += 1
                self._flushed(ok=False)
                logger.exception("storing %s clicks failed; they are kept and retried", len(batch))
                return False
            self.dropped += len(batch) - len(kept)
            CLICKS_FAILED.labels("dropped").inc(len(batch) - len(kept))
            self._flushed(ok=True)
            return True
        except Exception:
            self.failed_flushes += 1
            self._pending = batch + self._pending
            self._oldest_arrived = oldest_arrived
            self._flushed(ok=False)
            logger.exception("storing %s clicks failed; they are kept and retried", len(batch))
            return False
        self.recorded += len(batch)
        CLICKS_RECORDED.inc(len(batch))
        CLICK_BATCH_SIZE.observe(len(batch))
        self._committed(CommitTiming(started, self.clock(), oldest_arrived, len(batch)))
        self._flushed(ok=True)
        return True

    def _committed(self, timing: CommitTiming) -> None:
        previous = self.recent_commits[-1] if self.recent_commits else None
        self.recent_commits.append(timing)
        CLICK_WAIT_SECONDS.observe(timing.finished - timing.oldest_arrived)
        if previous is not None and timing.oldest_arrived <= previous.finished:
            # Clicks were waiting when the previous commit ended: the load is continuous.
            CLICK_COMMIT_INTERVAL.observe(timing.started - previous.started)

    def _flushed(self, *, ok: bool) -> None:
        self._healthy = ok
        CLICKS_PENDING.set(len(self._pending))
        if not ok:
            CLICK_FLUSH_FAILURES.inc()
        if not ok or len(self._pending) < self.high_water:
            self._room.set()

    async def _without_deleted_links(self, batch: list[ClickEvent]) -> list[ClickEvent]:
        async with self.engine.connect() as connection:
            existing = set(
                (
                    await connection.scalars(
                        select(Link.id).where(Link.id.in_({c.link_id for c in batch}))
                    )
                ).all()
            )
        logger.warning(
            "dropping clicks on %s deleted links", len({c.link_id for c in batch} - existing)
        )
        return [c for c in batch if c.link_id in existing]
