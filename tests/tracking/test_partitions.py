"""PostgreSQL's monthly click partitions: created ahead (and idempotently), clicks stored into
their month's partition across a month boundary by the real flush, strays in the default
partition moved into a late-created month, and retention dropping whole expired months while
still deleting the expired rows of the month the cutoff falls in."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from app.models import Link
from app.tracking.partitions import (
    ensure_click_partitions,
    monthly_partitions,
    partition_name,
)
from app.tracking.recorder import ClickEvent, store_clicks
from app.tracking.retention import maintain_click_partitions, purge_old_clicks


@pytest.fixture(autouse=True)
def _postgresql_only(app: FastAPI) -> None:
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("clicks are partitioned on PostgreSQL only (SQLite keeps one table)")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def _a_link(sent_campaign: Callable[..., Any], sessionmaker: Any) -> tuple[int, int, str]:
    await sent_campaign(("ada@example.com",))
    async with sessionmaker() as session:
        link = (await session.scalars(select(Link).order_by(Link.id).limit(1))).one()
    return link.id, link.delivery_id, link.kind


async def _store(app: FastAPI, link: tuple[int, int, str], *moments: datetime) -> None:
    link_id, delivery_id, kind = link
    clicks = [
        ClickEvent(link_id, delivery_id, kind, at, False, None, f"{i:032x}", "desktop", None)
        for i, at in enumerate(moments)
    ]
    async with app.state.engine.begin() as connection:
        await store_clicks(connection, clicks)


async def _where(app: FastAPI) -> list[tuple[str, datetime]]:
    """(partition, at) of every click."""
    async with app.state.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT tableoid::regclass::text, at FROM clicks ORDER BY at")
        )
        return [(name, at) for name, at in rows.all()]


async def _partitions(app: FastAPI) -> set[str]:
    async with app.state.engine.connect() as connection:
        return set(await monthly_partitions(connection))


class TestPartitions:
    async def test_this_month_and_the_next_are_created_ahead_once(self, app: FastAPI) -> None:
        async with app.state.engine.begin() as connection:
            created = await ensure_click_partitions(connection, now=utc(2031, 12, 20))
            again = await ensure_click_partitions(connection, now=utc(2031, 12, 31, 23, 59))
        assert created == ["clicks_y2031m12", "clicks_y2032m01"]
        assert again == []
        assert {"clicks_y2031m12", "clicks_y2032m01"} <= await _partitions(app)

    async def test_the_running_month_exists_after_startup(self, app: FastAPI) -> None:
        now = datetime.now(UTC)
        assert partition_name(now.replace(day=1)) in await _partitions(app)

    async def test_clicks_across_a_month_boundary_land_in_their_months(
        self, app: FastAPI, sent_campaign: Callable[..., Any], sessionmaker: Any
    ) -> None:
        async with app.state.engine.begin() as connection:
            await ensure_click_partitions(connection, now=utc(2032, 3, 1))
        link = await _a_link(sent_campaign, sessionmaker)
        await _store(app, link, utc(2032, 3, 31, 23, 59), utc(2032, 4, 1, 0, 0))
        assert [name for name, _ in await _where(app)] == ["clicks_y2032m03", "clicks_y2032m04"]

    async def test_a_click_without_its_month_waits_in_the_default_partition(
        self, app: FastAPI, sent_campaign: Callable[..., Any], sessionmaker: Any
    ) -> None:
        link = await _a_link(sent_campaign, sessionmaker)
        await _store(app, link, utc(2033, 7, 4, 12))  # no partition for July 2033 yet
        assert [name for name, _ in await _where(app)] == ["clicks_default"]
        async with app.state.engine.begin() as connection:
            created = await ensure_click_partitions(connection, now=utc(2033, 7, 5))
        assert created == ["clicks_y2033m07", "clicks_y2033m08"]
        assert await _where(app) == [("clicks_y2033m07", utc(2033, 7, 4, 12))]


class TestRetention:
    async def test_expired_months_are_dropped_and_the_cutoff_month_trimmed(
        self, app: FastAPI, sent_campaign: Callable[..., Any], sessionmaker: Any
    ) -> None:
        async with app.state.engine.begin() as connection:
            await ensure_click_partitions(connection, now=utc(2025, 1, 10), months_ahead=3)
        link = await _a_link(sent_campaign, sessionmaker)
        await _store(
            app,
            link,
            utc(2025, 1, 15),  # January: wholly expired, dropped with its partition
            utc(2025, 2, 5),  # February, before the cutoff: deleted row by row
            utc(2025, 2, 20),  # after the cutoff: kept
            utc(2025, 3, 1),
        )
        now = utc(2025, 5, 10)  # 90 days: the cutoff is 2025-02-09
        partitioned = await maintain_click_partitions(sessionmaker, now=now, retention_days=90)
        assert partitioned.dropped == ["clicks_y2025m01"]
        async with sessionmaker.begin() as session:
            purged = await purge_old_clicks(session, now=now, retention_days=90)
        assert purged.clicks == 1
        partitions = await _partitions(app)
        assert "clicks_y2025m01" not in partitions
        assert {"clicks_y2025m02", "clicks_y2025m03"} <= partitions
        assert [at for _, at in await _where(app)] == [utc(2025, 2, 20), utc(2025, 3, 1)]
