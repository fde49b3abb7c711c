"""What the statistics and engagement routes read from a query string the same way: moments
(a date or a timestamp with a zone), the periods they bound, and cacheable JSON answers."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Query, Request, Response
from pydantic import BaseModel

from app.core.errors import InvalidInput
from app.core.schemas import check_moment
from app.stats.caching import conditional

CACHED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: `If-None-Match` holds the current `ETag`."}
}


MomentQuery = Annotated[
    str | None, Query(max_length=40, description="A date or an ISO 8601 timestamp with a zone.")
]


def json_answer(request: Request, answer: BaseModel) -> Response:
    return conditional(request, answer.model_dump_json().encode(), "application/json")


def parse_moment(value: str | None, name: str) -> datetime | date | None:
    """An ISO 8601 timestamp with a zone, or a date, from 1970 to 9999."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            check_moment(datetime.combine(day, time(), tzinfo=UTC))
            return day
        return check_moment(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidInput(
            f"`{name}` must be a date (2026-11-20) or a timestamp with a zone "
            "(2026-11-20T09:00:00Z), from 1970 to 9999.",
            errors=[{"loc": ["query", name], "msg": "invalid date or timestamp"}],
        ) from None


def period_start(value: datetime | date | None, zone: ZoneInfo) -> datetime | None:
    if isinstance(value, datetime) or value is None:
        return value
    return datetime.combine(value, time(), tzinfo=zone)


def period_end(value: datetime | date | None, zone: ZoneInfo) -> datetime | None:
    """A date means through the end of that day."""
    if isinstance(value, datetime) or value is None:
        return value
    return datetime.combine(value + timedelta(days=1), time(), tzinfo=zone) - timedelta(
        microseconds=1
    )


def ensure_ordered(since: date | datetime, until: date | datetime) -> None:
    if until < since:
        raise InvalidInput(
            "`until` is before `since`.", errors=[{"loc": ["query", "until"], "msg": "too early"}]
        )
