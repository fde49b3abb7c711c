"""Cursor pagination: `?limit=&cursor=` in, `{"items", "next_cursor"}` out, cursors signed."""

from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import InvalidInput
from app.core.security import Signer

T = TypeVar("T")

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
    """Rows of `stmt` in ascending id order after the cursor, and the next page's cursor."""
    after = decode_cursor(signer, cursor, purpose)
    if after is not None:
        if not isinstance(after, int):
            raise InvalidInput("The cursor is not valid for this list.")
        stmt = stmt.where(id_column > after)
    rows = (await session.scalars(stmt.order_by(id_column).limit(limit + 1))).all()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(signer, getattr(rows[-1], id_column.key), purpose)
