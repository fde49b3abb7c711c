"""Cursor pagination: `?limit=&cursor=` in, `{"items", "next_cursor"}` out, cursors signed."""

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import InvalidInput
from app.core.security import Signer

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S", bound=Select[*tuple[Any, ...]])

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (max 500).")]
CursorQuery = Annotated[
    str | None, Query(max_length=500, description="`next_cursor` of the previous page.")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def decode_cursor(signer: Signer, cursor: str | None, purpose: str) -> Any:
    if cursor is None:
        return None
    value = signer.loads(f"cursor.{purpose}", cursor)
    if value is None:
        raise InvalidInput(
            "The cursor is not valid for this list.",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid or tampered cursor"}],
        )
    return value


def encode_cursor(signer: Signer, value: Any, purpose: str) -> str:
    return signer.dumps(f"cursor.{purpose}", value)


def _after_cursor(
    stmt: S,
    id_column: InstrumentedAttribute[int],
    *,
    signer: Signer,
    purpose: str,
    cursor: str | None,
) -> S:
    after = decode_cursor(signer, cursor, purpose)
    if after is None:
        return stmt
    if not isinstance(after, int):
        raise InvalidInput("The cursor is not valid for this list.")
    return stmt.where(id_column > after)


def _page(
    rows: Sequence[R], limit: int, row_id: Callable[[R], int], signer: Signer, purpose: str
) -> tuple[Sequence[R], str | None]:
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(signer, row_id(rows[-1]), purpose)


async def paginate_by_id(
    session: AsyncSession,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[int],
    *,
    signer: Signer,
    purpose: str,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Any], str | None]:
    """Entities of `stmt` in ascending id order after the cursor, and the next page's cursor."""
    stmt = _after_cursor(stmt, id_column, signer=signer, purpose=purpose, cursor=cursor)
    rows = (await session.scalars(stmt.order_by(id_column).limit(limit + 1))).all()
    return _page(rows, limit, lambda row: int(getattr(row, id_column.key)), signer, purpose)


async def paginate_rows_by_id(
    session: AsyncSession,
    stmt: Select[*tuple[Any, ...]],
    id_column: InstrumentedAttribute[int],
    *,
    row_id: Callable[[Row[*tuple[Any, ...]]], int],
    signer: Signer,
    purpose: str,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Row[*tuple[Any, ...]]], str | None]:
    """As `paginate_by_id` for a statement of several columns; `row_id` reads a row's id."""
    stmt = _after_cursor(stmt, id_column, signer=signer, purpose=purpose, cursor=cursor)
    rows = (await session.execute(stmt.order_by(id_column).limit(limit + 1))).all()
    return _page(rows, limit, row_id, signer, purpose)
