"""Field types shared by every domain's schemas."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer, field_validator

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
HeaderText = Annotated[str, AfterValidator(_no_header_breaks), AfterValidator(_no_control_chars)]
# Free text for bodies: line breaks allowed, other control characters refused.
BodyText = Annotated[str, AfterValidator(_no_control_chars)]
HttpUrl = Annotated[str, AfterValidator(check_http_url)]


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_lone_surrogate(v) for v in value)
    if isinstance(value, BaseModel):
        return any(_has_lone_surrogate(v) for v in value.__dict__.values())
    return False


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        # JSON escapes can carry lone surrogates (\ud800) that no database column can store.
        if _has_lone_surrogate(value):
            raise ValueError("must be valid Unicode text (no unpaired surrogates)")
        return value


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
