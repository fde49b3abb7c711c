"""SQLite statements are one call into the driver's thread each, and answer exactly as the
stock adapter does: rows, row counts, last row ids, RETURNING, errors, transactions."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import make_engine
from app.core.sqlite_calls import OneCallConnection


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        )
    yield engine
    await engine.dispose()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions the driver's threads are handed, by name."""
    handed: list[str] = []
    stock = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        handed.append(getattr(fn, "__name__", repr(fn)))
        return await stock(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return handed


async def test_a_statement_is_one_call(engine: AsyncEngine, calls: list[str]) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.dbapi_connection, OneCallConnection)
        calls.clear()
        rows = (await connection.execute(text("SELECT 1, 'two'"))).all()
        assert calls == ["_run"]
    assert rows == [(1, "two")]


async def test_writes_answer_as_the_stock_adapter(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        inserted = await connection.execute(text("INSERT INTO things (name) VALUES ('a')"))
        assert (inserted.lastrowid, inserted.rowcount) == (1, 1)
        returned = await connection.execute(
            text("INSERT INTO things (name) VALUES ('b'), ('c') RETURNING id, name")
        )
        assert returned.all() == [(2, "b"), (3, "c")]
        many = await connection.execute(
            text("INSERT INTO things (name) VALUES (:name)"), [{"name": "d"}, {"name": "e"}]
        )
        assert many.rowcount == 2
        updated = await connection.execute(
            text("UPDATE things SET name = name || '!' WHERE id > 3")
        )
        assert updated.rowcount == 2
        result = await connection.execute(text("SELECT id, name FROM things ORDER BY id"))
        assert list(result.keys()) == ["id", "name"]
        assert result.all() == [(1, "a"), (2, "b"), (3, "c"), (4, "d!"), (5, "e!")]


async def test_errors_and_rollbacks_as_the_stock_adapter(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO things (name) VALUES ('kept')"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO things (name) VALUES ('gone')"))
            await connection.execute(text("INSERT INTO things (name) VALUES ('kept')"))
    async with engine.connect() as connection:
        names = (await connection.execute(text("SELECT name FROM things"))).scalars().all()
    assert names == ["kept"]


async def test_streamed_results_keep_the_stock_cursor(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO things (name) VALUES (:name)"),
            [{"name": f"n{i}"} for i in range(50)],
        )
    async with engine.connect() as connection:
        streamed = await connection.stream(text("SELECT name FROM things ORDER BY id"))
        names = [row.name async for row in streamed]
    assert names == [f"n{i}" for i in range(50)]
