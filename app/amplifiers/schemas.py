import re
from functools import lru_cache
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    DOT_ATOM_TEXT,
    EMAIL_MAX_LENGTH,
)
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, field_validator

from app.core.schemas import (
    NO_CONTROL_CHARACTERS,
    HeaderText,
    InputModel,
    Moment,
    Network,
    OutputModel,
    UtcDatetime,
)
from app.models import AmplifierStatus, Frequency
from app.sending.slots import is_timezone

MAX_EMAIL_LENGTH = 320
MAX_NAME_LENGTH = 200
MAX_TAG_LENGTH = 64
MAX_TAGS = 50
MAX_AUDIENCE = 10**12
DEFAULT_LOCALE = "en"

# Unicode category Cc: C0 controls, DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ASCII_DOMAIN = re.compile(r"[A-Za-z0-9.-]+\Z")
# BCP 47 subset: language, optional script, optional region ("en", "pt-BR", "zh-Hant-TW", "es-419").
_LOCALE = re.compile(r"^([a-zA-Z]{2,3})(?:[-_]([a-zA-Z]{4}))?(?:[-_]([a-zA-Z]{2}|[0-9]{3}))?$")


def email_key(email: str) -> str:
    """The identity of an address inside an organization: uniqueness and upserts use it."""
    return email.lower()


@lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> tuple[str, str] | None:
    """(normalized, IDNA ASCII) form of a domain email-validator accepts, else None."""
    try:
        result = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.domain, result.ascii_domain


def normalize_email(value: str) -> str:
    """email-validator's normalized form (no DNS lookups).

    Most of its cost is checking the domain, and a roster repeats a few domains thousands of
    times; so a plain ASCII address reuses the verdict on its domain. Such a local part comes
    back from email-validator unchanged (except RFC 2142 role names, which take the full
    path), and the length limits are checked here as it does; everything else takes the
    full path. tests/amplifiers/test_schemas.py holds the two paths equal."""
    value = value.strip(" \t")
    local, at, domain = value.rpartition("@")
    if (
        at
        and DOT_ATOM_TEXT.match(local)
        and _ASCII_DOMAIN.match(domain)
        and local.lower() not in CASE_INSENSITIVE_MAILBOX_NAMES
    ):
        checked = _checked_domain(domain)
        if checked is not None:
            normalized = f"{local}@{checked[0]}"
            ascii_form = f"{local}@{checked[1]}"
            if max(len(value), len(normalized.encode()), len(ascii_form)) <= EMAIL_MAX_LENGTH:
                return normalized
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address: {exc}") from None


def _strip(value: str) -> str:
    return value.strip()


def _tag(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_TAG_LENGTH:
        raise ValueError(f"must be at most {MAX_TAG_LENGTH} characters")
    return value


def _network_name(value: Any) -> Any:
    # Spreadsheets write "LinkedIn"; the vocabulary itself stays lower-case.
    return value.strip().lower() if isinstance(value, str) else value


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a whole number of followers")
    return value


def _locale(value: str) -> str:
    match = _LOCALE.match(value.strip())
    if match is None:
        raise ValueError("must be a language tag such as 'en' or 'pt-BR'")
    language, script, region = match.groups()
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


def _timezone(value: str) -> str:
    value = value.strip()
    if not is_timezone(value):
        raise ValueError("must be an IANA time zone name such as 'Europe/Copenhagen' or 'UTC'")
    return value


Email = Annotated[str, Field(max_length=MAX_EMAIL_LENGTH), AfterValidator(normalize_email)]
# Header-bound: CR/LF/NUL are refused before surrounding blanks are trimmed.
Name = Annotated[HeaderText, Field(max_length=MAX_NAME_LENGTH), AfterValidator(_strip)]
Tag = Annotated[
    str,
    Field(max_length=4 * MAX_TAG_LENGTH, json_schema_extra={"pattern": NO_CONTROL_CHARACTERS}),
    AfterValidator(_tag),
]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_dedupe)]
NetworkName = Annotated[Network, BeforeValidator(_network_name)]
Networks = Annotated[list[NetworkName], Field(max_length=50), AfterValidator(_dedupe)]
Followers = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=MAX_AUDIENCE)]
Audience = dict[NetworkName, Followers]
Locale = Annotated[str, Field(max_length=35), AfterValidator(_locale)]
TimeZone = Annotated[
    str,
    Field(max_length=64, description="IANA time zone name (e.g. `Europe/Copenhagen`)."),
    AfterValidator(_timezone),
]
FREQUENCY_DESCRIPTION = (
    "`each`: a digest per campaign; `daily` / `weekly`: one combined digest at the "
    "organization's slot."
)


class AmplifierCreate(InputModel):
    email: Email
    name: Name | None = None
    tags: Tags = Field(default_factory=list)
    networks: Networks = Field(
        default_factory=list,
        description="Networks this amplifier shares on; empty = every network of a campaign.",
    )
    audience: Audience = Field(
        default_factory=dict, description="Followers per network (for potential reach)."
    )
    locale: Locale = DEFAULT_LOCALE
    frequency: Frequency = Field(default=Frequency.EACH, description=FREQUENCY_DESCRIPTION)
    paused_until: Moment | None = Field(
        default=None, description="No mail until the day after this moment."
    )
    timezone: TimeZone | None = Field(
        default=None, description="null: the organization's default time zone."
    )

    @field_validator("name")
    @classmethod
    def _blank_name_is_none(cls, value: str | None) -> str | None:
        return value or None


class AmplifierUpdate(InputModel):
    email: Email | None = None
    name: Name | None = Field(default=None, description="null clears the name.")
    tags: Tags | None = None
    networks: Networks | None = None
    audience: Audience | None = None
    locale: Locale | None = None
    status: AmplifierStatus | None = Field(
        default=None, description="'unsubscribed' cannot be changed back by an API key."
    )
    frequency: Frequency | None = Field(default=None, description=FREQUENCY_DESCRIPTION)
    paused_until: Moment | None = Field(default=None, description="null ends a pause.")
    timezone: TimeZone | None = Field(
        default=None, description="null: the organization's default time zone."
    )

    # Runs only for fields the body gives: absent means "keep", an explicit null is refused.
    @field_validator("email", "tags", "networks", "audience", "locale", "status", "frequency")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("name")
    @classmethod
    def _blank_name_is_none(cls, value: str | None) -> str | None:
        return value or None


class AmplifierRead(OutputModel):
    id: int
    email: str
    name: str | None
    tags: list[str]
    networks: list[str]
    audience: dict[str, int]
    locale: str
    status: AmplifierStatus
    frequency: Frequency
    paused_until: UtcDatetime | None
    timezone: str | None
    status_reason: str | None = Field(
        default=None,
        description="Why the status is not active when the amplifier did not choose it: "
        "`complaint` (a spam complaint), `hard_bounce`, `soft_bounces` (3 within 30 days).",
    )
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ImportRowError(BaseModel):
    row: int = Field(
        description="CSV: line of the record's first line (header = 1); JSON: 1-based."
    )
    error: str = Field(description="'<field>: <reason>'")


class ImportResult(BaseModel):
    created: int
    updated: int
    skipped: int = Field(description="Rows reported in `errors` and not imported.")
    unchanged: int
    errors: list[ImportRowError]
    errors_truncated: bool = Field(
        default=False, description="True when more bad rows exist than `errors` lists."
    )
