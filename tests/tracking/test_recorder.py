"""The click recorder on its own: atomic flushes and flow control, against the real database."""

import asyncio

import pytest
from sqlalchemy import func, select, text

from app.core.db import utcnow
from app.models import Click, ClickRollup, Link, LinkVisitor
from app.tracking.recorder import ClickEvent, ClickRecorder, store_clicks


def _click(link_id: int, visitor: str) -> ClickEvent:
    return ClickEvent(
        link_id=link_id,
        delivery_id=None,
        kind="visit",
        at=utcnow(),
        is_bot=False,
        bot_reason=None,
        visitor_key=visitor,
        ua_class="desktop",
        referrer_host=None,
    )


@pytest.fixture
async def link_id(sent_campaign, sessionmaker) -> int:
    sent = await sent_campaign()
    async with sessionmaker() as session:
        link = await session.scalar(
            select(Link.id).where(Link.code == sent.code("ada@example.com", 0, "x", "visit"))
        )
    assert link is not None
    return link


async def _count(sessionmaker, model) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


class TestStoreClicks:
    async def test_a_rolled_back_flush_leaves_no_trace(self, app, link_id, sessionmaker) -> None:
        # The clicks go in first, through COPY on PostgreSQL: they must still be part of the
        # flush's transaction, or a failed flush would store them twice on its retry.
        async with app.state.engine.connect() as connection:
            transaction = await connection.begin()
            await store_clicks(connection, [_click(link_id, f"{i:032x}") for i in range(50)])
            await transaction.rollback()
        for model in (Click, ClickRollup, LinkVisitor):
            assert await _count(sessionmaker, model) == 0

    async def test_a_batch_lands_with_its_rollup_and_visitors(
        self, app, link_id, sessionmaker
    ) -> None:
        clicks = [_click(link_id, f"{i % 7:032x}") for i in range(50)]
        async with app.state.engine.begin() as connection:
            await store_clicks(connection, clicks)
        assert await _count(sessionmaker, Click) == 50
        assert await _count(sessionmaker, LinkVisitor) == 7
        async with sessionmaker() as session:
            rollup = (await session.scalars(select(ClickRollup))).one()
        assert (rollup.clicks, rollup.bot_clicks, rollup.unique_visitors) == (50, 0, 7)


class TestFlowControl:
    async def test_redirects_wait_for_room_over_the_high_water_mark(
        self, app, link_id, sessionmaker
    ) -> None:
        recorder = ClickRecorder(app.state.engine, flush_seconds=60, max_batch=4, high_water=8)
        for i in range(8):
            recorder.record(_click(link_id, f"{i:032x}"))
        waiting = asyncio.create_task(recorder.room())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # nothing flushes yet: the recorder is not running
        recorder.start()
        await asyncio.wait_for(waiting, timeout=10)
        assert recorder.pending < 8
        await recorder.close()
        assert await _count(sessionmaker, Click) == 8

    async def test_no_waiting_while_the_database_fails(self, app, link_id, sessionmaker) -> None:
        recorder = ClickRecorder(app.state.engine, flush_seconds=60, max_batch=4, high_water=8)
        async with app.state.engine.begin() as connection:
            await connection.execute(text("ALTER TABLE clicks RENAME TO clicks_away"))
        try:
            for i in range(8):
                recorder.record(_click(link_id, f"{i:032x}"))
            await recorder.flush()  # fails: the clicks stay pending
            assert recorder.failed_flushes == 1 and recorder.pending == 8
            for i in range(8):
                recorder.record(_click(link_id, f"{i:032x}"))
            await asyncio.wait_for(recorder.room(), timeout=1)  # answers at once
        finally:
            async with app.state.engine.begin() as connection:
                await connection.execute(text("ALTER TABLE clicks_away RENAME TO clicks"))
        await recorder.flush()
        assert recorder.pending == 0
        assert await _count(sessionmaker, Click) == 16
