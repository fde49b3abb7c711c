"""Engine, sessions and the column types shared by every model."""

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    MetaData,
    any_,
    event,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from app.core.sqlite_calls import one_call_dbapi

# Ids are 32-bit integers; a larger one cannot exist (and PostgreSQL would refuse to compare).
MAX_ID = 2**31 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python on both databases (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL so arrays can be searched with @> and a GIN index.
JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_array_contains_any(column: Any, values: Sequence[str], dialect_name: str) -> Any:
    """SQL that is true when the JSON array `column` holds any of `values`."""
    if dialect_name == "postgresql":
        return or_(*(column.op("@>")(func.jsonb_build_array(v)) for v in values))
    each = func.json_each(column).table_valued("value")
    return select(literal(1)).select_from(each).where(each.c.value.in_(values)).exists()


_Item = TypeVar("_Item")


def chunks(items: Sequence[_Item], size: int) -> Iterator[Sequence[_Item]]:
    """Slices of at most `size` items: a statement's number of parameters stays bounded."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def in_ids(column: Any, ids: Sequence[int], dialect_name: str) -> Any:
    """`column IN ids` with the ids as ONE parameter (a PostgreSQL array, a JSON array read by
    SQLite's json_each): the statement's text is the same whatever the number of ids, so it
    is compiled and prepared once instead of rendered with a placeholder per id."""
    if dialect_name == "postgresql":
        return column == any_(literal(list(ids), ARRAY(Integer)))
    each = func.json_each(literal(json.dumps(list(ids)))).table_valued("value")
    return column.in_(select(each.c.value))


def sqlite_datetime(value: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime stores (UTC, no zone): rows stay readable by
    # the ORM exactly as if it had written them.
    if value.tzinfo is UTC:  # the common case, without two conversions
        return value.isoformat(" ", "microseconds")[:26]
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


async def driver_connection(connection: AsyncConnection) -> Any:
    """The driver's own connection (asyncpg's for COPY and array parameters), inside the
    transaction `connection` is in. SQLAlchemy begins the asyncpg transaction lazily, at its
    first statement: a statement sent to the driver before that would commit on its own."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if (
        connection.dialect.name == "postgresql"
        and connection.in_transaction()
        and not driver.is_in_transaction()
    ):
        await connection.exec_driver_sql("SELECT 1")
    return driver


async def bulk_insert(
    connection: AsyncConnection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert many rows below the ORM: COPY on PostgreSQL, one executemany on SQLite.

    For hot bulk paths only (a campaign snapshot writes hundreds of thousands of links); values
    must already be what the column stores (aware UTC datetimes, plain str/int).
    """
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        driver = await driver_connection(connection)
        await driver.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    placeholders = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    # A nullable time column may be None in the first rows: each column's first value decides.
    times = [i for i in range(len(columns)) if isinstance(_first_value(rows, i), datetime)]
    if times:
        texts: dict[datetime, str] = {}

        def converted(row: Sequence[Any]) -> tuple[Any, ...]:
            values = list(row)
            for i in times:
                stamp = values[i]
                if stamp is None:
                    continue
                text = texts.get(stamp)
                if text is None:
                    text = texts[stamp] = sqlite_datetime(stamp)
                values[i] = text
            return tuple(values)

        rows = [converted(row) for row in rows]
    await connection.exec_driver_sql(statement, list(rows))


def _first_value(rows: Sequence[Sequence[Any]], column: int) -> Any:
    """The column's first value that is not None (None when every row has none)."""
    return next((row[column] for row in rows if row[column] is not None), None)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # ANALYZE samples this many index rows instead of reading whole tables (see `analyze`).
    cursor.execute("PRAGMA analysis_limit=1000")
    cursor.close()


ANALYZE_AFTER_ROWS = 1_000


async def analyze(connection: AsyncConnection, tables: Sequence[str], *, rows: int) -> None:
    """Refresh the query planner's statistics of `tables` after a bulk write added `rows`
    rows to them (from a threshold on): a planner still expecting a handful of rows picks
    nested loops that cost seconds at 10,000 amplifiers, until autovacuum gets round to it.
    In the caller's transaction: the new statistics are published with the rows."""
    if rows < ANALYZE_AFTER_ROWS:
        return
    for table in tables:
        await connection.exec_driver_sql(f"ANALYZE {table}")


def make_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        module = one_call_dbapi()
        if module is not None:
            kwargs.setdefault("module", module)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """The one place that commits: on success the unit of work is committed, else rolled back."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
