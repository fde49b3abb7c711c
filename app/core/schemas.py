"""Field types shared by every domain's schemas."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

Network = Literal[
    "linkedin",
    "x",
    "facebook",
    "email",
    "whatsapp",
    "telegram",
    "reddit",
    "xing",
    "bluesky",
    "threads",
]
NETWORKS: tuple[str, ...] = get_args(Network)

MAX_URL_LENGTH = 2048


def format_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


UtcDatetime = Annotated[datetime, PlainSerializer(format_utc, return_type=str)]

# Times a request may carry: far enough from datetime's limits (years 1 and 9999) that
# converting to UTC or any zone, and adding a day, cannot overflow.
EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9999, 1, 1, tzinfo=UTC)


def check_moment(value: datetime) -> datetime:
    """A timestamp with a time zone, between 1970 and 9999 (UTC)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs a time zone (e.g. 2026-12-01T09:00:00Z)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_MOMENT <= utc < LATEST_MOMENT:
        raise ValueError("must be between 1970-01-01 and 9999-01-01 (UTC)")
    return value


def _timestamp_text(value: Any) -> Any:
    """JSON gives a timestamp as text; a number would be read as seconds since 1970."""
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO 8601 timestamp with a time zone")
    return value


Moment = Annotated[datetime, BeforeValidator(_timestamp_text), AfterValidator(check_moment)]


# The same as a JSON Schema pattern (ECMA-262 escapes).
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"


def has_control_characters(value: str) -> bool:
    """C0 controls (NUL included), DEL and C1 controls."""
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value)


def _no_header_breaks(value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError("must not contain line breaks (CR, LF) or NUL characters")
    return value


def _no_control_chars(value: str) -> str:
    if any((ord(ch) < 32 and ch not in "\n\t\r") or ch == "\x7f" for ch in value):
        raise ValueError("must not contain control characters")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def check_http_url(value: str) -> str:
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in value):
        raise ValueError("must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL: {exc}") from None
    del port
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an absolute http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must have a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (user:password@)")
    return value


# Values that end up in a mail header (subjects, names): CR/LF/NUL are refused.
HeaderText = Annotated[
    str,
    AfterValidator(_no_header_breaks),
    AfterValidator(_no_control_chars),
    Field(json_schema_extra={"pattern": "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$"}),
]
# Free text for bodies: line breaks allowed, other control characters refused.
BodyText = Annotated[
    str,
    AfterValidator(_no_control_chars),
    Field(
        json_schema_extra={"pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"}
    ),
]
HttpUrl = Annotated[str, AfterValidator(check_http_url)]


def _unstorable_text(value: Any) -> str | None:
    """Why a string in `value` cannot be stored, if one cannot."""
    if isinstance(value, str):
        if "\x00" in value:  # PostgreSQL text refuses NUL
            return "must not contain NUL characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (no unpaired surrogates)"
        return None
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    elif isinstance(value, BaseModel):
        items = list(value.__dict__.values())
    else:
        return None
    return next((r for r in map(_unstorable_text, items) if r is not None), None)


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        # JSON escapes can carry NUL (\u0000) and lone surrogates (\ud800) that no database
        # column can store.
        reason = _unstorable_text(value)
        if reason is not None:
            raise ValueError(reason)
        return value


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def refuse_null(*fields: str) -> Any:
    """A validator for an update model: these optional fields may be left out (keep the value)
    but never be `null`. Pair it with `hide_null` on the same fields."""
    return field_validator(*fields, mode="before")(_refuse_null)


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null; leave the field out to keep its value")
    return value


def hide_null(*fields: str) -> Callable[[dict[str, Any]], None]:
    """JSON-schema edit: these optional fields may be left out but never be `null`."""

    def edit(schema: dict[str, Any]) -> None:
        for name in fields:
            prop = schema["properties"][name]
            options = [o for o in prop.pop("anyOf", []) if o != {"type": "null"}]
            if len(options) == 1:
                prop.update(options[0])
            prop.pop("default", None)

    return edit
