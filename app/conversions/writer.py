"""Group commit for conversions: requests that arrive while a batch commits go together into
the next one, so a burst costs one transaction and one statement per table per batch instead of
a dozen statements and a commit per conversion (SQLite has one writer at a time; PostgreSQL
saves the round trips). A request is answered once its batch is committed: 201 means stored.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from app.conversions import service
from app.conversions.importer import ParsedConversions
from app.conversions.schemas import ConversionImportResult
from app.conversions.service import Outcome, Reported
from app.tracking.clickids import ClickIds

MAX_BATCH = 1_000


@dataclass(slots=True)
class _Waiting:
    item: Reported
    answer: asyncio.Future[Outcome]


class ConversionWriter:
    """A request must not hold a pooled connection while it waits for its batch (see the
    router): the batch, and the click flush it may ask for, need one."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        click_ids: ClickIds,
        window_days: int,
        pending_clicks: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.engine = engine
        self.click_ids = click_ids
        self.window_days = window_days
        self.pending_clicks = pending_clicks
        self._waiting: list[_Waiting] = []
        self._writing: asyncio.Task[None] | None = None
        # One batch at a time: a later batch sees the external ids an earlier one recorded.
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        """Let the batches being written finish."""
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)

    async def record(self, item: Reported) -> Outcome:
        """The conversion's outcome once its batch is committed (raises if the commit fails)."""
        answer: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(item, answer))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write(), name="amplify-conversions")
        # Shielded: a client that goes away must not cancel the others' batch.
        return await asyncio.shield(answer)

    async def import_rows(
        self, *, organization_id: int, parsed: ParsedConversions, now: datetime
    ) -> ConversionImportResult:
        """A whole file as one batch of its own, in its own transaction."""
        async with self._lock, self.engine.begin() as connection:
            return await service.import_rows(
                connection,
                organization_id=organization_id,
                parsed=parsed,
                now=now,
                click_ids=self.click_ids,
                window_days=self.window_days,
                pending_clicks=self.pending_clicks,
            )

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            await self._answer(batch)

    async def _answer(self, batch: list[_Waiting]) -> None:
        try:
            outcomes = await self._commit([w.item for w in batch])
        except Exception as error:
            if len(batch) > 1:  # one conversion's failure (its campaign just deleted …)
                for waiting in batch:  # must not cost the others theirs
                    await self._answer([waiting])
                return
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(error)
                    waiting.answer.exception()  # retrieved: a waiter that left won't log it
            return
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(outcome)

    async def _commit(self, items: Sequence[Reported]) -> list[Outcome]:
        async with self._lock, self.engine.begin() as connection:
            return await service.record(
                connection,
                items,
                click_ids=self.click_ids,
                window_days=self.window_days,
                pending_clicks=self.pending_clicks,
            )
