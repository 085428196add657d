"""When a customer can expect the desk's answer, from a concern's SLA clocks, in words a customer understands."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# The clocks that promise the customer an answer (resolution promises an outcome, not the next message).
RESPONSE_CLOCKS = ("first_response", "next_response")


def _field(clock: Any, name: str) -> Any:
    return clock.get(name) if isinstance(clock, dict) else getattr(clock, name, None)


def _instant(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo("UTC"))


def response_due(clocks: Iterable[Any]) -> datetime | None:
    """The nearest due time of the running first- or next-response clock, or None when no answer is owed
    (answered, waiting for the customer, or resolved). `clocks` are projection dicts or `Clock` models."""
    due = [_instant(_field(c, "due_at")) for c in clocks or []
           if _field(c, "name") in RESPONSE_CLOCKS and _field(c, "state") == "running"]
    due = [d for d in due if d is not None]
    return min(due) if due else None


def zone_label(timezone: str) -> str:
    """"Berlin time" for Europe/Berlin, "UTC" for UTC."""
    if timezone in ("UTC", "Etc/UTC", "GMT"):
        return "UTC"
    return timezone.rsplit("/", 1)[-1].replace("_", " ") + " time"


def describe_due(due: datetime, now: datetime, timezone: str = "UTC") -> str:
    """The promise in words: "within 20 minutes", "within 2 hours", "today by 15:00", "tomorrow by 09:00",
    "by Thursday 12:00", "by 3 March 12:00", with the calendar's time zone named for clock times."""
    left = due - now
    if left <= timedelta(0):
        return "as soon as possible"
    if left <= timedelta(minutes=1):
        return "within a minute"
    if left < timedelta(hours=1):
        minutes = math.ceil(left.total_seconds() / 60)
        return f"within {minutes} minutes"
    if left <= timedelta(hours=3):
        hours = math.ceil(left.total_seconds() / 3600)
        return f"within {hours} hours"
    zone = ZoneInfo(timezone)
    local, today = due.astimezone(zone), now.astimezone(zone).date()
    clock = f"{local:%H:%M} ({zone_label(timezone)})"
    days = (local.date() - today).days
    if days == 0:
        return f"today by {clock}"
    if days == 1:
        return f"tomorrow by {clock}"
    if days < 7:
        return f"by {local:%A} {clock}"
    return f"by {local.day} {local:%B} {clock}"


def answer_promise(clocks: Iterable[Any], now: datetime, timezone: str = "UTC") -> str | None:
    """`describe_due` of the nearest response due time, or None when no answer is owed."""
    due = response_due(clocks)
    return describe_due(due, now, timezone) if due is not None else None
