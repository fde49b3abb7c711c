"""The organization's sending settings as the API reads and writes them."""

from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, StrictBool, StrictInt

from app.core.schemas import InputModel, OutputModel, hide_null
from app.sending.slots import WEEKDAYS, is_timezone, parse_clock

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
assert tuple(Weekday.__args__) == WEEKDAYS  # type: ignore[attr-defined]


def _clock(value: str) -> str:
    parse_clock(value)
    return value


def _timezone(value: str) -> str:
    if not is_timezone(value):
        raise ValueError("must be an IANA time zone name such as 'Europe/Copenhagen' or 'UTC'")
    return value


ClockTime = Annotated[
    str,
    Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Time of day, HH:MM (24 h)."),
    AfterValidator(_clock),
]
TimeZoneName = Annotated[
    str, Field(max_length=64, description="IANA time zone name."), AfterValidator(_timezone)
]


class SendingSettingsRead(OutputModel):
    max_digests_per_week: int | None = Field(
        description="At most this many mails to one amplifier in any 7 days (null: no cap)."
    )
    daily_at: str = Field(description="The slot of daily and weekly digests, HH:MM local time.")
    weekly_on: Weekday
    default_timezone: str = Field(description="For amplifiers without a time zone of their own.")
    show_impact: bool
    public_leaderboard: bool


class SendingSettingsUpdate(InputModel):
    """Only the fields given change."""

    model_config = ConfigDict(
        json_schema_extra=hide_null(
            "show_impact", "public_leaderboard", "daily_at", "weekly_on", "default_timezone"
        )
    )

    max_digests_per_week: Annotated[StrictInt, Field(ge=1, le=100)] | None = Field(
        default=None, description="null removes the cap."
    )
    daily_at: ClockTime | None = None
    weekly_on: Weekday | None = None
    default_timezone: TimeZoneName | None = None
    show_impact: StrictBool | None = None
    public_leaderboard: StrictBool | None = None
