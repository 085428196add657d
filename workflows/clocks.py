"""SLA clocks as pure state: start, pause, resume, stop, and which warnings and breaches are due.

Deterministic (the caller passes the time), so the workflow can use it and tests can drive it directly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sops.business_time import business_seconds, due_at
from sops.schema import BusinessCalendar
from workflows.payloads import Clock

Transition = tuple[Clock, Literal["start", "pause", "resume", "warn", "breach", "stop"]]

SLA_CLOCKS = ("first_response", "next_response", "resolution")


def deadline_label(name: str, kind: str) -> str:
    """What a clock's timer is for, in the desk's words: "resolution warning", "escalation of level1"."""
    if is_step_clock(name):
        step = name.split(":")[1]
        return f"end of the wait for the customer at {step}" if name.endswith(":wall") else f"escalation of {step}"
    title = name.replace("_", " ")
    if name.startswith("ola_l"):
        title = f"level {name.removeprefix('ola_l')} OLA"
    return f"{title} {'warning' if kind == 'warn' else 'breach'}"


def is_step_clock(name: str) -> bool:
    """Step clocks time a step's own wait (escalation, customer reply) rather than an SLA target."""
    return name.startswith("step:")


class ClockBook:
    """The clocks of one concern, measured in business seconds of one pinned calendar."""

    def __init__(self, clocks: list[Clock], calendar: BusinessCalendar, warn_at: float) -> None:
        self.clocks = {c.name: c for c in clocks}
        self.calendar = calendar
        self.warn_at = warn_at

    def get(self, name: str) -> Clock | None:
        return self.clocks.get(name)

    def _elapsed_since(self, clock: Clock, now: datetime) -> int:
        if clock.run_started is None:
            return 0
        if is_step_clock(clock.name) and clock.name.endswith(":wall"):
            return max(0, int((now - clock.run_started).total_seconds()))
        return business_seconds(clock.run_started, now, self.calendar)

    def _instant(self, clock: Clock, seconds: int) -> datetime:
        assert clock.run_started is not None
        if seconds <= 0:
            return clock.run_started
        if clock.name.endswith(":wall"):
            return clock.run_started + timedelta(seconds=seconds)
        return due_at(clock.run_started, seconds, self.calendar)

    def _schedule(self, clock: Clock) -> None:
        clock.due_at = self._instant(clock, clock.target - clock.elapsed)
        warn_target = int(clock.target * self.warn_at)
        if is_step_clock(clock.name) or clock.warned or clock.elapsed >= warn_target:
            clock.warn_due_at = None
        else:
            clock.warn_due_at = self._instant(clock, warn_target - clock.elapsed)

    def start(self, name: str, target: int, now: datetime) -> list[Transition]:
        """Start `name` afresh (a new cycle), replacing a stopped or idle clock of that name."""
        clock = Clock(name=name, target=target, state="running", run_started=now)
        self.clocks[name] = clock
        self._schedule(clock)
        return [(clock, "start")]

    def pause(self, name: str, now: datetime) -> list[Transition]:
        clock = self.clocks.get(name)
        if clock is None or clock.state != "running":
            return []
        clock.elapsed += self._elapsed_since(clock, now)
        clock.state, clock.run_started, clock.due_at, clock.warn_due_at = "paused", None, None, None
        return [(clock, "pause")]

    def resume(self, name: str, now: datetime) -> list[Transition]:
        clock = self.clocks.get(name)
        if clock is None or clock.state != "paused":
            return []
        clock.state, clock.run_started = "running", now
        self._schedule(clock)
        return [(clock, "resume")]

    def stop(self, name: str, now: datetime) -> list[Transition]:
        clock = self.clocks.get(name)
        if clock is None or clock.state not in ("running", "paused"):
            return []
        if clock.state == "running":
            clock.elapsed += self._elapsed_since(clock, now)
        clock.state, clock.run_started, clock.warn_due_at = "stopped", None, None
        if not clock.breached:
            clock.due_at = None
        return [(clock, "stop")]

    def discard(self, name: str) -> None:
        """Forget a step clock once its step is over."""
        self.clocks.pop(name, None)

    def retarget(self, name: str, target: int, now: datetime) -> None:
        """Apply a new target (a priority change) to a running or paused clock."""
        clock = self.clocks.get(name)
        if clock is None or clock.state in ("idle", "stopped"):
            return
        clock.target = target
        if clock.state == "running":
            clock.elapsed += self._elapsed_since(clock, now)
            clock.run_started = now
            self._schedule(clock)

    def next_deadline(self) -> datetime | None:
        """The earliest pending warning or breach instant among running clocks."""
        nearest = self.nearest()
        return nearest[0] if nearest else None

    def nearest(self) -> tuple[datetime, str, Literal["warn", "breach"]] | None:
        """The earliest pending warning or breach among running clocks: (instant, clock name, kind)."""
        pending: list[tuple[datetime, str, Literal["warn", "breach"]]] = []
        for clock in self.clocks.values():
            if clock.state != "running":
                continue
            if clock.warn_due_at is not None and not clock.warned:
                pending.append((clock.warn_due_at, clock.name, "warn"))
            if clock.due_at is not None and not clock.breached:
                pending.append((clock.due_at, clock.name, "breach"))
        return min(pending, default=None)

    def fire_due(self, now: datetime) -> list[Transition]:
        """Mark the warnings and breaches whose instant has come."""
        fired: list[Transition] = []
        for clock in self.clocks.values():
            if clock.state != "running":
                continue
            if not clock.warned and clock.warn_due_at is not None and now >= clock.warn_due_at:
                clock.warned = True
                fired.append((clock, "warn"))
            if not clock.breached and clock.due_at is not None and now >= clock.due_at:
                clock.breached = True
                clock.warned = True
                fired.append((clock, "breach"))
        return fired

    def all(self) -> list[Clock]:
        return list(self.clocks.values())

    def sla_state(self, waiting: bool) -> Literal["ok", "warning", "breached", "paused"]:
        """The queue's colour for this concern."""
        live = [c for c in self.clocks.values() if not is_step_clock(c.name) and c.state in ("running", "paused")]
        if any(c.breached for c in live):
            return "breached"
        if waiting:
            return "paused"
        if any(c.warned for c in live):
            return "warning"
        return "ok"

    def next_due(self) -> datetime | None:
        """The nearest breach instant among running SLA clocks, for sorting the queue."""
        dues = [
            c.due_at
            for c in self.clocks.values()
            if c.state == "running" and not is_step_clock(c.name) and c.due_at is not None and not c.breached
        ]
        return min(dues, default=None)
