"""Business-time arithmetic over a calendar: pure, deterministic, safe inside a workflow.

Opening intervals are local wall-clock times turned into real instants, so a business
second is a real second: an "00:00-24:00" day lasts 23 hours on the spring DST change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from sops.schema import WEEKDAYS, BusinessCalendar

UTC = timezone.utc
_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)
# Weekly hours exist (the validator insists), so only a run of closed dates this long could stop us.
_MAX_CLOSED_RUN = 3700


def _aware_utc(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _open_intervals(calendar: BusinessCalendar, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The opening intervals as ordered, disjoint UTC instants, clipped to start no earlier than `since`."""
    weekly = [calendar.hours.get(day, []) for day in WEEKDAYS]
    if not any(weekly):
        raise ValueError(f"calendar {calendar.id!r} has no opening hours")
    zone = calendar.tzinfo
    closed = set(calendar.closed_dates)
    day = since.astimezone(zone).date() - _ONE_DAY
    floor = since
    closed_run = 0
    while closed_run <= _MAX_CLOSED_RUN:
        opened = False
        if day not in closed and not (calendar.holidays is not None and calendar.is_closed(day)):
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            for start_s, end_s in weekly[day.weekday()]:
                # Wall-clock addition, then conversion: the instant the clock on the wall shows that time.
                begin = max((midnight + timedelta(seconds=start_s)).astimezone(UTC), floor)
                end = (midnight + timedelta(seconds=end_s)).astimezone(UTC)
                if end > begin:
                    yield begin, end
                    floor, opened = end, True
        closed_run = 0 if opened else closed_run + 1
        day += _ONE_DAY
    raise ValueError(f"calendar {calendar.id!r} stays closed for more than {_MAX_CLOSED_RUN} days")


def due_at(start: datetime, seconds: int, calendar: BusinessCalendar) -> datetime:
    """The instant `seconds` of business time after `start` (counting from the next opening if closed)."""
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    remaining = timedelta(seconds=seconds)
    for begin, end in _open_intervals(calendar, _aware_utc("start", start)):
        if remaining <= end - begin:
            return begin + remaining
        remaining -= end - begin
    raise AssertionError("unreachable: _open_intervals never ends quietly")


def business_seconds(a: datetime, b: datetime, calendar: BusinessCalendar) -> int:
    """Whole business seconds between `a` and `b` (0 if b is not after a)."""
    a, b = _aware_utc("a", a), _aware_utc("b", b)
    if b <= a:
        return 0
    total = timedelta()
    for begin, end in _open_intervals(calendar, a):
        if begin >= b:
            break
        total += min(end, b) - begin
    return total // _ONE_SECOND


def next_opening(at: datetime, calendar: BusinessCalendar) -> datetime:
    """`at` itself if the calendar is open then, else the instant it next opens."""
    return due_at(at, 0, calendar)


def is_open(at: datetime, calendar: BusinessCalendar) -> bool:
    """Whether the calendar is open at an instant (an interval's end counts as closed)."""
    at = _aware_utc("at", at)
    begin, _ = next(_open_intervals(calendar, at))
    return begin == at

