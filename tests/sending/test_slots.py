"""Slots are wall-clock times in the amplifier's zone: the pure rules (no database)."""

from datetime import UTC, datetime, time, timedelta

import pytest

from app.sending.slots import (
    Preferences,
    Schedule,
    cap_frees,
    due_at,
    next_slot,
    parse_clock,
    pause_ends,
    zone,
)

NINE = Schedule(time(9, 0), weekly_on=0)
NEW_YORK = zone("America/New_York")
COPENHAGEN = zone("Europe/Copenhagen")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "slot"),
    [
        (utc(2026, 3, 7, 13, 0), utc(2026, 3, 7, 14, 0)),  # EST: 09:00 = 14:00 UTC
        (utc(2026, 3, 7, 15, 0), utc(2026, 3, 8, 13, 0)),  # the next day is EDT
        (utc(2026, 10, 31, 14, 0), utc(2026, 11, 1, 14, 0)),  # back to EST overnight
        (utc(2026, 11, 1, 14, 0), utc(2026, 11, 1, 14, 0)),  # at the slot is the slot
    ],
)
def test_daily_slots_in_new_york_follow_dst(after: datetime, slot: datetime) -> None:
    assert next_slot(after, weekly=False, tz=NEW_YORK, schedule=NINE) == slot


def test_daily_slots_in_copenhagen_summer_and_winter() -> None:
    assert next_slot(utc(2026, 7, 1, 5, 0), weekly=False, tz=COPENHAGEN, schedule=NINE) == utc(
        2026, 7, 1, 7, 0
    )
    assert next_slot(utc(2026, 12, 1, 8, 1), weekly=False, tz=COPENHAGEN, schedule=NINE) == utc(
        2026, 12, 2, 8, 0
    )


def test_a_slot_the_spring_change_skips_falls_after_the_gap() -> None:
    early = Schedule(time(2, 30))
    slot = next_slot(utc(2026, 3, 8, 6, 0), weekly=False, tz=NEW_YORK, schedule=early)
    assert slot == utc(2026, 3, 8, 7, 30)  # 02:30 does not exist; 03:30 EDT


def test_weekly_slot_is_on_the_weekday_in_the_amplifiers_zone() -> None:
    friday = Schedule(time(9, 0), weekly_on=4)
    slot = next_slot(utc(2026, 11, 30, 12, 0), weekly=True, tz=zone("Asia/Tokyo"), schedule=friday)
    assert slot == utc(2026, 12, 4, 0, 0)  # Friday 09:00 JST


def test_pause_ends_the_next_local_midnight() -> None:
    assert pause_ends(utc(2026, 12, 5, 23, 30), COPENHAGEN) == utc(2026, 12, 6, 23, 0)


def test_cap_frees_when_the_oldest_counted_mail_leaves_the_week() -> None:
    now = utc(2026, 12, 10, 12, 0)
    sent = [now - timedelta(days=d) for d in (1, 2, 6, 9)]
    assert cap_frees(sent, cap=None, now=now) is None
    assert cap_frees(sent, cap=4, now=now) is None  # 3 within 7 days
    assert cap_frees(sent, cap=3, now=now) == now - timedelta(days=6) + timedelta(days=7)
    assert cap_frees(sent, cap=2, now=now) == now - timedelta(days=2) + timedelta(days=7)


def test_due_at_combines_frequency_pause_and_cap() -> None:
    now = utc(2026, 12, 1, 10, 0)
    each = Preferences("each", None, zone("UTC"))
    assert due_at(each, now=now, schedule=NINE, cap_free_at=None) is None
    daily = Preferences("daily", None, zone("UTC"))
    assert due_at(daily, now=now, schedule=NINE, cap_free_at=None) == utc(2026, 12, 2, 9, 0)
    paused = Preferences("each", utc(2026, 12, 5, 12, 0), zone("UTC"))
    assert due_at(paused, now=now, schedule=NINE, cap_free_at=None) == utc(2026, 12, 6, 9, 0)
    capped = due_at(each, now=now, schedule=NINE, cap_free_at=utc(2026, 12, 3, 10, 0))
    assert capped == utc(2026, 12, 4, 9, 0)
    weekly = Preferences("weekly", None, zone("UTC"))
    assert due_at(weekly, now=now, schedule=NINE, cap_free_at=None) == utc(2026, 12, 7, 9, 0)


@pytest.mark.parametrize("text", ["9:00", "24:00", "09:60", "0900", "09:00:00", "ab:cd", ""])
def test_clock_times_are_hh_mm(text: str) -> None:
    with pytest.raises(ValueError):
        parse_clock(text)
