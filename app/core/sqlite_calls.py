"""SQLAlchemy's aiosqlite adapter with one call into the driver's thread per statement.

The stock adapter awaits the driver four times per statement (open a cursor, execute, fetch
the rows, close the cursor); every one of those is a hand-over to the connection's thread and
back, and the thread needs the GIL for each. While the event loop is busy (redirects, a
dashboard polling) every hand-over waits for it, so a statement's latency grows with the number
of hand-overs, not with the work SQLite does. Here a statement is one call: the thread opens a
cursor, executes, reads every row and closes, and the adapter keeps the description, row count
and last row id it returned. Server-side cursors (streamed results) stay the stock ones.
"""

import sqlite3
from collections import deque
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

# What one call returns: description, rows, row count, last row id.
_Outcome = tuple[Any, list[Any], int, int | None]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In the driver's thread: the whole statement, its rows read, its cursor closed."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneCallCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement is one call into the driver's thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No driver cursor is opened here (the stock cursor opens one: a hand-over).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._rows: deque[Any] = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:  # type: ignore[override]
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        pass  # no driver cursor stays open

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._call(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            return await_(self._call(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _call(self, operation: str, parameters: Any, many: bool) -> None:
        driver = self._connection
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await driver._execute(
                _run, driver._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = deque(rows)


class OneCallConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneCallCursor  # type: ignore[assignment]


class OneCallDbapi(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI module whose connections make `OneCallCursor`s."""

    def connect(self, *arg: Any, **kw: Any) -> OneCallConnection:
        stock = super().connect(*arg, **kw)
        return OneCallConnection(self, stock._connection)


def one_call_dbapi() -> OneCallDbapi | None:
    """The module to give `create_async_engine(module=...)` for aiosqlite, or None when the
    installed aiosqlite no longer has the call this relies on (then the stock adapter runs)."""
    import aiosqlite

    if not callable(getattr(aiosqlite.Connection, "_execute", None)):
        return None
    driver: ModuleType = aiosqlite
    return OneCallDbapi(driver, sqlite3)
