"""The SOP language and SLA model as frozen pydantic models: what a process owner may write."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, time
from functools import lru_cache
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

MAX_DURATION = 366 * 86400
_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_DURATION_UNITS = (86400, 3600, 60, 1)


def parse_duration(value: Any) -> int:
    """Seconds from an int or a string such as "30s", "15m", "2h", "3d" or "1h30m"."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{value!r} is not a duration; use seconds or a form like 30s, 15m, 2h, 3d, 1h30m")
    if isinstance(value, int):
        seconds = value
    else:
        text = value.strip().lower().replace(" ", "")
        match = _DURATION_RE.fullmatch(text)
        if text.isdigit():
            seconds = int(text)
        elif text and match:
            seconds = sum(int(n) * unit for n, unit in zip(match.groups(), _DURATION_UNITS) if n)
        else:
            raise ValueError(f"{value!r} is not a duration; use seconds or a form like 30s, 15m, 2h, 3d, 1h30m")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"a duration must be at most 366d, got {value!r}")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest spelling of a duration, e.g. 5400 -> "1h30m"."""
    parts = []
    for unit, suffix in zip(_DURATION_UNITS, "dhms"):
        count, seconds = divmod(seconds, unit)
        if count:
            parts.append(f"{count}{suffix}")
    return "".join(parts) or "0s"


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": f"^{_DURATION_RE.pattern}$"}]}
    ),
]
Priority = Literal["low", "normal", "high", "urgent"]
Channel = Literal["web", "email", "api", "phone", "walk_in"]
Tier = Literal["standard", "gold", "platinum"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Slug = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_outcomes(outcomes: dict[str, str], allowed: tuple[str, ...], required: str, kind: str) -> dict[str, str]:
    unknown = [name for name in outcomes if name not in allowed]
    if unknown:
        raise ValueError(f"unknown outcome {unknown[0]!r} (a {kind} step has {', '.join(allowed)})")
    if required not in outcomes:
        raise ValueError(f"outcome {required!r} is required")
    return outcomes


BOUND_FIELDS = ("max_visits", "on_max_visits")


class _Step(_Frozen):
    title: str | None = None
    # A bound on how often the concern may come to this step without meeting a person; the next arrival
    # goes to `on_max_visits` instead (see "Writing a SOP").
    max_visits: int | None = Field(default=None, ge=1)
    on_max_visits: str | None = None

    @model_validator(mode="after")
    def _bound_complete(self) -> _Step:
        if (self.max_visits is None) != (self.on_max_visits is None):
            raise ValueError("max_visits and on_max_visits go together: the bound and where to go when it is reached")
        if self.max_visits is not None and self.type in ("human", "end"):
            raise ValueError(f"max_visits bounds automated and waiting steps; a {self.type} step needs no bound")
        return self

    def edges(self) -> list[tuple[str, str]]:
        """(label, target) pairs in declaration order, the bound's target last."""
        return [*self._own_edges(), *self._bound_edge()]

    def _own_edges(self) -> list[tuple[str, str]]:
        return []

    def _bound_edge(self) -> list[tuple[str, str]]:
        if self.on_max_visits is None:
            return []
        return [(f"after {self.max_visits} visit{'s' if self.max_visits != 1 else ''}", self.on_max_visits)]


class AutomateStep(_Step):
    """Run a registered e-level action; its result names the outcome."""

    type: Literal["automate"] = "automate"
    action: str
    outcomes: dict[str, str]

    def _own_edges(self) -> list[tuple[str, str]]:
        return list(self.outcomes.items())


class DecideStep(_Step):
    """Branch on a field of the concern."""

    type: Literal["decide"] = "decide"
    on: Literal["priority", "category", "channel", "tier"]
    cases: dict[str, str]
    default: str

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean True.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data

    def _own_edges(self) -> list[tuple[str, str]]:
        return [*self.cases.items(), ("default", self.default)]


class HumanStep(_Step):
    """Queue the concern for an agent of a level with skills, until resolve, escalate or timer."""

    type: Literal["human"] = "human"
    level: int = Field(ge=1, le=3)
    skills: list[str] = []
    escalate_after: Duration | None = None
    outcomes: dict[str, str]

    @field_validator("outcomes")
    @classmethod
    def _outcomes(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_outcomes(value, ("resolved", "escalated", "timeout"), "resolved", "human")

    def _own_edges(self) -> list[tuple[str, str]]:
        return list(self.outcomes.items())


class AskCustomerStep(_Step):
    """Send a message and wait for the customer; SLA clocks pause meanwhile."""

    type: Literal["ask_customer"] = "ask_customer"
    message: str
    wait: Duration
    outcomes: dict[str, str]

    @field_validator("outcomes")
    @classmethod
    def _outcomes(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_outcomes(value, ("replied", "solved", "not_solved", "no_reply"), "no_reply", "ask_customer")

    def _own_edges(self) -> list[tuple[str, str]]:
        return list(self.outcomes.items())


class NotifyStep(_Step):
    """Send a message template to the customer or the team, then go on."""

    type: Literal["notify"] = "notify"
    template: str
    to: Literal["customer", "team"] = "customer"
    next: str

    def _own_edges(self) -> list[tuple[str, str]]:
        return [("", self.next)]


class SurveyStep(_Step):
    """Ask for CSAT and NPS and wait a while for the answer."""

    type: Literal["survey"] = "survey"
    wait: Duration = 7 * 86400
    next: str

    def _own_edges(self) -> list[tuple[str, str]]:
        return [("", self.next)]


class EndStep(_Step):
    """Finish the concern with a result."""

    type: Literal["end"] = "end"
    result: Literal["resolved", "closed", "cancelled"] = "resolved"


Step = Annotated[
    Union[AutomateStep, DecideStep, HumanStep, AskCustomerStep, NotifyStep, SurveyStep, EndStep],
    Field(discriminator="type"),
]
STEP_TYPES = ("automate", "decide", "human", "ask_customer", "notify", "survey", "end")
WAITING_STEP_TYPES = frozenset({"human", "ask_customer", "survey"})


class AppliesTo(_Frozen):
    """Which concerns a SOP is meant for."""

    categories: list[str] = []
    channels: list[Channel] = []


class SopDefinition(_Frozen):
    """One version of a SOP: a flow chart of named steps."""

    id: Slug
    version: int = Field(default=1, ge=1)
    title: str = Field(min_length=1)
    applies_to: AppliesTo = AppliesTo()
    sla: str
    start: str
    steps: dict[str, Step]

    def targets(self, step_id: str) -> list[str]:
        """The distinct steps `step_id` can lead to, in declaration order."""
        return list(dict.fromkeys(target for _, target in self.steps[step_id].edges()))

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of everything but the version number."""
        content = self.model_dump(mode="json", exclude={"version"})
        for step in content["steps"].values():
            # An unbounded step hashes as it did before bounds existed, so published versions keep their hash.
            for name in BOUND_FIELDS:
                if step.get(name) is None:
                    step.pop(name, None)
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


class SlaTargets(_Frozen):
    """Business seconds allowed for each customer-facing SLA clock."""

    first_response: Duration
    next_response: Duration
    resolution: Duration

    @model_validator(mode="after")
    def _first_before_resolution(self) -> SlaTargets:
        if self.first_response > self.resolution:
            raise ValueError("first_response must not be longer than resolution")
        return self


class SlaPolicy(_Frozen):
    """Per-priority targets and per-level OLAs measured in one business calendar."""

    id: str = Field(min_length=1)
    title: str
    calendar: str
    warn_at: float = Field(default=0.75, gt=0, lt=1)
    priorities: dict[Priority, SlaTargets]
    levels: dict[int, Duration] = {}

    @field_validator("priorities")
    @classmethod
    def _all_priorities(cls, value: dict[str, SlaTargets]) -> dict[str, SlaTargets]:
        missing = [p for p in ("low", "normal", "high", "urgent") if p not in value]
        if missing:
            raise ValueError(f"targets are missing for priority {', '.join(missing)}")
        return value

    @field_validator("levels")
    @classmethod
    def _known_levels(cls, value: dict[int, int]) -> dict[int, int]:
        bad = [level for level in value if level not in (1, 2, 3)]
        if bad:
            raise ValueError(f"level {bad[0]} does not exist (levels are 1, 2, 3)")
        return value


_INTERVAL_RE = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")


def _parse_interval(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(type(v) is int for v in value):
        start, end = value
    elif isinstance(value, str) and (match := _INTERVAL_RE.fullmatch(value.replace(" ", ""))):
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{value!r} has an impossible time of day")
        start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    else:
        raise ValueError(f"{value!r} is not an opening interval like '09:00-17:00'")
    if not 0 <= start < end <= 86400:
        raise ValueError(f"{value!r} must open before it closes, within one day")
    return start, end


def _format_interval(value: tuple[int, int]) -> str:
    return "-".join(f"{s // 3600:02d}:{s % 3600 // 60:02d}" for s in value)


# Seconds after local midnight, (start, end); "24:00" is 86400, which datetime.time cannot express.
OpeningInterval = Annotated[
    tuple[int, int],
    BeforeValidator(_parse_interval),
    PlainSerializer(_format_interval, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^\\d{2}:\\d{2}-\\d{2}:\\d{2}$"}),
]


def interval_times(interval: tuple[int, int]) -> tuple[time, time | None]:
    """An interval as times of day; None stands for the end of the day (24:00)."""
    start, end = interval
    as_time = lambda s: time(s // 3600, s % 3600 // 60)  # noqa: E731
    return as_time(start), None if end == 86400 else as_time(end)


class HolidaySource(_Frozen):
    """Public holidays of a country (and subdivision) from the `holidays` package."""

    country: str
    subdiv: str | None = None

    @model_validator(mode="after")
    def _known(self) -> HolidaySource:
        import holidays  # only calendars that are not pinned need it

        try:
            holidays.country_holidays(self.country, subdiv=self.subdiv)
        except NotImplementedError as exc:
            raise ValueError(f"unknown holiday source: {exc}") from None
        return self


@lru_cache(maxsize=256)
def public_holidays(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    """The public holidays of one year."""
    import holidays

    return frozenset(holidays.country_holidays(country, subdiv=subdiv, years=year))


class BusinessCalendar(_Frozen):
    """Weekly opening hours in a time zone, minus public holidays and closed dates."""

    id: str = Field(min_length=1)
    timezone: str
    hours: dict[Weekday, list[OpeningInterval]]
    holidays: HolidaySource | None = None
    closed_dates: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as 'Europe/Berlin'") from None
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, list[tuple[int, int]]]) -> dict[str, list[tuple[int, int]]]:
        tidy = {}
        for day, intervals in value.items():
            ordered = sorted(intervals)
            for (_, end), (start, _) in zip(ordered, ordered[1:]):
                if start < end:
                    raise ValueError(f"opening intervals on {day} overlap")
            tidy[day] = ordered
        if not any(tidy.values()):
            raise ValueError("a calendar needs opening hours on at least one day")
        return tidy

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_closed(self, day: date) -> bool:
        """Whether a local date is a closed date or a public holiday."""
        if day in self.closed_dates:
            return True
        source = self.holidays
        return source is not None and day in public_holidays(source.country, source.subdiv, day.year)

    def pinned(self, first_year: int, last_year: int) -> BusinessCalendar:
        """A copy with the public holidays of those years written out as closed dates."""
        if first_year > last_year:
            raise ValueError("first_year must not be after last_year")
        closed = set(self.closed_dates)
        if self.holidays is not None:
            for year in range(first_year, last_year + 1):
                closed |= public_holidays(self.holidays.country, self.holidays.subdiv, year)
        return self.model_copy(update={"holidays": None, "closed_dates": sorted(closed)})
