"""When a held delivery goes out: the amplifier's next slot, in the amplifier's time zone.

Pure functions (no I/O). Slots are wall-clock times (`daily_at` on every day, or on
`weekly_on`) in an IANA zone, converted to UTC per day, so they stay at 09:00 local across DST
changes. A slot time that a spring-forward skips is read as `zoneinfo` reads it (fold 0: the
hour after the gap).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from app.models import Frequency

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CAP_WINDOW = timedelta(days=7)


def is_timezone(name: str) -> bool:
    """An IANA zone name `zoneinfo` knows (case as the database spells it)."""
    return name in _zone_names()


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1024)
def zone(name: str | None) -> ZoneInfo:
    """The zone of `name`; UTC for None or a name no longer known (zones are checked on input)."""
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_clock(value: str) -> time:
    """`HH:MM` (24 h) → a time; ValueError otherwise."""
    hours, sep, minutes = value.partition(":")
    if not sep or len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError("must be a time of day as HH:MM")
    return time(int(hours), int(minutes))


@dataclass(frozen=True, slots=True)
class Schedule:
    """An organization's slots: the time of day of every slot, the weekday of weekly ones."""

    daily_at: time = time(9, 0)
    weekly_on: int = 0  # Monday

    @classmethod
    def of(cls, daily_at: str, weekly_on: str) -> "Schedule":
        return cls(parse_clock(daily_at), WEEKDAYS.index(weekly_on))


@dataclass(frozen=True, slots=True)
class Preferences:
    """What decides whether an amplifier's delivery is held, and until when."""

    frequency: str
    paused_until: datetime | None
    timezone: ZoneInfo


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def next_slot(after: datetime, *, weekly: bool, tz: ZoneInfo, schedule: Schedule) -> datetime:
    """The first slot at or after `after` (UTC): daily at `daily_at`, or weekly on `weekly_on`."""
    day = after.astimezone(tz).date()
    while True:
        if not weekly or day.weekday() == schedule.weekly_on:
            slot = _at(day, schedule.daily_at, tz)
            if slot >= after:
                return slot
        day += timedelta(days=1)


def pause_ends(paused_until: datetime, tz: ZoneInfo) -> datetime:
    """Mail resumes the day after `paused_until` (local midnight)."""
    day = paused_until.astimezone(tz).date() + timedelta(days=1)
    return _at(day, time(0, 0), tz)


def cap_frees(sent_at: Sequence[datetime], *, cap: int | None, now: datetime) -> datetime | None:
    """When the weekly cap allows one more mail, given the times of the mails sent in the last
    7 days; None when it allows one now."""
    if cap is None:
        return None
    recent = sorted(at for at in sent_at if at > now - CAP_WINDOW)
    if len(recent) < cap:
        return None
    # The (len - cap + 1)-th oldest has to leave the window for the count to drop below cap.
    return recent[len(recent) - cap] + CAP_WINDOW


def holds_mail(frequency: str, paused_until: datetime | None, now: datetime) -> bool:
    """Whether these preferences hold an amplifier's mail for a slot (not `each`, or paused)."""
    return frequency != Frequency.EACH or (paused_until is not None and paused_until > now)


def due_at(
    preferences: Preferences, *, now: datetime, schedule: Schedule, cap_free_at: datetime | None
) -> datetime | None:
    """When a delivery created `now` goes out: None for at once (a plain digest), else the
    amplifier's slot after its pause and the weekly cap allow it."""
    start = now
    held = preferences.frequency != Frequency.EACH
    if preferences.paused_until is not None and preferences.paused_until > now:
        start = max(start, pause_ends(preferences.paused_until, preferences.timezone))
        held = True
    if cap_free_at is not None and cap_free_at > now:
        start = max(start, cap_free_at)
        held = True
    if not held:
        return None
    return next_slot(
        start,
        weekly=preferences.frequency == Frequency.WEEKLY,
        tz=preferences.timezone,
        schedule=schedule,
    )
