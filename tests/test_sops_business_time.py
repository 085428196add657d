"""Business-time arithmetic: weekends, breaks, holidays, DST and zones, by example and by property."""

import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sops import BusinessCalendar, business_seconds, due_at, is_open, load_calendars, next_opening

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

OFFICE = load_calendars()["office-berlin"].pinned(2023, 2031)
ALWAYS_UTC = load_calendars()["always"]
ALL_DAY = {d: ["00:00-24:00"] for d in EVERY_DAY}
ALWAYS_BERLIN = BusinessCalendar(id="always-berlin", timezone="Europe/Berlin", hours=ALL_DAY)
NEW_YORK = BusinessCalendar(
    id="new-york",
    timezone="America/New_York",
    hours={d: ["09:00-12:30", "13:30-17:00"] for d in EVERY_DAY[:5]},
    holidays={"country": "US"},
).pinned(2023, 2031)
LORD_HOWE = BusinessCalendar(  # half-hour DST shifts
    id="lord-howe",
    timezone="Australia/Lord_Howe",
    hours=ALL_DAY,
    closed_dates=[date(2024, 12, 25), date(2025, 4, 6), date(2025, 10, 5), date(2026, 1, 1)],
)
WEEKENDS = BusinessCalendar(
    id="weekends",
    timezone="Asia/Kolkata",
    hours={"sat": ["10:00-14:00"], "sun": ["10:00-12:00", "12:00-14:00"]},
    closed_dates=[date(2025, 1, 4), date(2025, 1, 5), date(2025, 1, 11)],
)
CALENDARS = [OFFICE, ALWAYS_UTC, ALWAYS_BERLIN, NEW_YORK, LORD_HOWE, WEEKENDS]


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def local(at: datetime) -> datetime:
    return at.astimezone(BERLIN)


def test_friday_evening_plus_an_hour_lands_monday_morning():
    due = due_at(berlin(2025, 1, 10, 17, 30), HOUR, OFFICE)
    assert local(due) == berlin(2025, 1, 13, 8, 30)
    assert due.tzinfo == UTC


def test_lunch_break_is_skipped():
    assert local(due_at(berlin(2025, 1, 14, 11, 30), HOUR, OFFICE)) == berlin(2025, 1, 14, 13, 30)
    assert business_seconds(berlin(2025, 1, 14, 11, 0), berlin(2025, 1, 14, 14, 0), OFFICE) == 2 * HOUR


def test_a_start_before_opening_counts_from_the_opening():
    assert local(due_at(berlin(2025, 1, 14, 6, 0), HOUR, OFFICE)) == berlin(2025, 1, 14, 9, 0)
    assert local(due_at(berlin(2025, 1, 14, 17, 0), HOUR, OFFICE)) == berlin(2025, 1, 14, 18, 0)


def test_easter_is_skipped():
    # Good Friday 2025-04-18 and Easter Monday 2025-04-21 are holidays in Berlin.
    assert local(due_at(berlin(2025, 4, 17, 17, 30), HOUR, OFFICE)) == berlin(2025, 4, 22, 8, 30)
    assert local(due_at(berlin(2026, 4, 4, 10, 0), HOUR, OFFICE)) == berlin(2026, 4, 7, 9, 0)
    assert business_seconds(berlin(2026, 4, 6, 0, 0), berlin(2026, 4, 7, 0, 0), OFFICE) == 0


def test_german_unity_day_is_skipped():
    assert local(due_at(berlin(2024, 10, 2, 17, 30), HOUR, OFFICE)) == berlin(2024, 10, 4, 8, 30)
    assert local(due_at(berlin(2025, 10, 2, 17, 0), 2 * HOUR, OFFICE)) == berlin(2025, 10, 6, 9, 0)


def test_a_start_inside_a_closed_date():
    # Christmas 2025 is a Thursday, the 26th a holiday too, then the weekend.
    assert local(due_at(berlin(2025, 12, 25, 10, 0), HOUR, OFFICE)) == berlin(2025, 12, 29, 9, 0)
    closed = BusinessCalendar(id="c", timezone="UTC", hours=ALL_DAY, closed_dates=[date(2025, 5, 5)])
    start = datetime(2025, 5, 5, 12, 0, tzinfo=UTC)
    assert due_at(start, 60, closed) == datetime(2025, 5, 6, 0, 1, tzinfo=UTC)
    assert business_seconds(start, datetime(2025, 5, 6, 1, 0, tzinfo=UTC), closed) == HOUR


def test_dst_change_in_march_counts_real_time():
    # Sunday 2025-03-30 has 23 hours in Berlin; the office is closed then, so Monday opens at 08:00 CEST.
    assert business_seconds(berlin(2025, 3, 30), berlin(2025, 3, 31), ALWAYS_BERLIN) == 23 * HOUR
    assert local(due_at(berlin(2025, 3, 30), 24 * HOUR, ALWAYS_BERLIN)) == berlin(2025, 3, 31, 1, 0)
    due = due_at(berlin(2025, 3, 28, 17, 0), 2 * HOUR, OFFICE)
    assert local(due) == berlin(2025, 3, 31, 9, 0) and due == datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
    assert business_seconds(berlin(2025, 3, 28, 8, 0), berlin(2025, 3, 31, 18, 0), OFFICE) == 18 * HOUR
    night = BusinessCalendar(id="night", timezone="Europe/Berlin", hours={"sun": ["00:00-06:00"]})
    assert business_seconds(berlin(2025, 3, 29), berlin(2025, 3, 31), night) == 5 * HOUR


def test_dst_change_in_october_counts_real_time():
    assert business_seconds(berlin(2025, 10, 26), berlin(2025, 10, 27), ALWAYS_BERLIN) == 25 * HOUR
    due = due_at(berlin(2025, 10, 24, 17, 0), 2 * HOUR, OFFICE)
    assert local(due) == berlin(2025, 10, 27, 9, 0) and due == datetime(2025, 10, 27, 8, 0, tzinfo=UTC)
    night = BusinessCalendar(id="night", timezone="Europe/Berlin", hours={"sun": ["00:00-06:00"]})
    assert business_seconds(berlin(2025, 10, 25), berlin(2025, 10, 27), night) == 7 * HOUR


def test_time_zones_matter():
    # 09:00 in New York is 15:00 in Berlin (both on standard time in January).
    start = berlin(2025, 1, 14, 12, 0)
    assert local(due_at(start, HOUR, NEW_YORK)) == berlin(2025, 1, 14, 16, 0)


def test_an_unpinned_calendar_agrees_with_its_pinned_copy():
    unpinned = load_calendars()["office-berlin"]
    for start in (berlin(2025, 4, 17, 17, 30), berlin(2025, 12, 23, 12, 0), berlin(2026, 9, 30, 9, 0)):
        assert due_at(start, 20 * HOUR, unpinned) == due_at(start, 20 * HOUR, OFFICE)


def test_open_and_next_opening():
    assert is_open(berlin(2025, 1, 14, 9, 0), OFFICE)
    assert not is_open(berlin(2025, 1, 14, 12, 30), OFFICE)
    assert not is_open(berlin(2025, 10, 3, 10, 0), OFFICE)
    assert local(next_opening(berlin(2025, 1, 14, 12, 30), OFFICE)) == berlin(2025, 1, 14, 13, 0)
    assert local(next_opening(berlin(2025, 1, 14, 9, 15), OFFICE)) == berlin(2025, 1, 14, 9, 15)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(datetime(2025, 1, 1, 9, 0), 60, OFFICE)
    with pytest.raises(ValueError, match="negative"):
        due_at(berlin(2025, 1, 14, 9, 0), -1, OFFICE)
    assert business_seconds(berlin(2025, 1, 14, 12), berlin(2025, 1, 14, 9), OFFICE) == 0
    empty = BusinessCalendar.model_construct(id="empty", timezone="UTC", hours={}, holidays=None, closed_dates=[])
    with pytest.raises(ValueError, match="no opening hours"):
        due_at(berlin(2025, 1, 14, 9, 0), 60, empty)


def test_long_targets_skip_whole_days():
    began = time.perf_counter()
    due = due_at(berlin(2025, 1, 2, 9, 0), 366 * 86400, OFFICE)
    assert time.perf_counter() - began < 1.0
    assert local(due).year == 2028  # 8784 business hours at 45 hours a week
    assert business_seconds(berlin(2025, 1, 2, 9, 0), due, OFFICE) == 366 * 86400


starts = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC))
amounts = st.integers(min_value=0, max_value=30 * 86400)
calendars = st.sampled_from(CALENDARS)


@settings(max_examples=300, deadline=None)
@given(calendars, starts, amounts)
def test_counting_back_gives_the_target(calendar, start, seconds):
    assert business_seconds(start, due_at(start, seconds, calendar), calendar) == seconds


@settings(max_examples=200, deadline=None)
@given(calendars, starts, amounts, amounts)
def test_due_at_is_monotonic(calendar, start, s1, s2):
    low, high = sorted((s1, s2))
    assert start <= due_at(start, low, calendar) <= due_at(start, high, calendar)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([ALWAYS_UTC, ALWAYS_BERLIN]), starts, amounts)
def test_always_open_is_plain_addition(calendar, start, seconds):
    assert due_at(start, seconds, calendar) == start + timedelta(seconds=seconds)


@settings(max_examples=300, deadline=None)
@given(calendars, starts, st.integers(min_value=1, max_value=30 * 86400))
def test_due_never_falls_inside_closed_time(calendar, start, seconds):
    due = due_at(start, seconds, calendar)
    assert business_seconds(due - timedelta(seconds=1), due, calendar) == 1
    wall = due.astimezone(calendar.tzinfo)
    day = wall.date() if wall.time() != datetime.min.time() else wall.date() - timedelta(days=1)
    assert day not in calendar.closed_dates


@settings(max_examples=150, deadline=None)
@given(calendars, starts, st.integers(0, 5 * 86400), st.integers(0, 5 * 86400))
def test_business_seconds_add_up(calendar, start, gap1, gap2):
    a = start.replace(microsecond=0)
    b, c = a + timedelta(seconds=gap1), a + timedelta(seconds=gap1 + gap2)
    assert business_seconds(a, c, calendar) == business_seconds(a, b, calendar) + business_seconds(b, c, calendar)


def _open_by_the_wall_clock(calendar: BusinessCalendar, at: datetime) -> bool:
    wall = at.astimezone(calendar.tzinfo)
    if wall.date() in calendar.closed_dates:
        return False
    second = wall.hour * 3600 + wall.minute * 60 + wall.second
    return any(a <= second < b for a, b in calendar.hours.get(EVERY_DAY[wall.weekday()], []))


@settings(max_examples=60, deadline=None)
@given(calendars, starts, st.integers(0, 3 * 24 * 60))
def test_matches_a_minute_by_minute_count(calendar, start, minutes):
    a = start.replace(second=0, microsecond=0)
    expected = sum(60 for m in range(minutes) if _open_by_the_wall_clock(calendar, a + timedelta(minutes=m)))
    assert business_seconds(a, a + timedelta(minutes=minutes), calendar) == expected
