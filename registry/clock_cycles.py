"""One row per cycle of an SLA clock, kept by the projection in the same transaction as its clock events.

A cycle runs from a clock's `start` event to its `stop` (a reopened concern's resolution clock, or next
response after each customer message, starts a new one). The SLA report reads these rows rather than
replaying millions of clock events; `rebuild_cycles` derives them again from `clockevent` alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Index, UniqueConstraint, bindparam, delete, func, insert, select, update
from sqlalchemy import case as sql_case
from sqlmodel import Field, SQLModel

from registry.types import UTCDateTime

REPORTED_CLOCKS = ("first_response", "next_response", "resolution", "ola_l1", "ola_l2", "ola_l3")


def _opt_ts() -> object:
    return Field(default=None, sa_type=UTCDateTime)


class ClockCycle(SQLModel, table=True):
    """A clock from its start to its stop, with the concern's facts the SLA report groups by."""

    __table_args__ = (
        UniqueConstraint("concern_id", "start_seq"),
        Index("ix_clockcycle_concern_clock", "concern_id", "clock", "start_seq"),
        Index("ix_clockcycle_started", "started_at"),
        Index("ix_clockcycle_stopped", "stopped_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    concern_id: str = Field(max_length=20)
    clock: str = Field(max_length=40)
    start_seq: int
    end_seq: int | None = None  # the stop event's seq: the cycle's events are those of its clock in between
    last_seq: int = 0
    workflow_id: str = Field(max_length=100)
    run_id: str = Field(max_length=64)
    status: str = Field(max_length=10)  # running, paused, stopped
    outcome: str = Field(max_length=10)  # running, paused, met, breached
    warned: bool = False
    breached: bool = False
    started_at: datetime = Field(sa_type=UTCDateTime)
    warned_at: datetime | None = _opt_ts()
    breached_at: datetime | None = _opt_ts()
    stopped_at: datetime | None = _opt_ts()
    last_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime | None = _opt_ts()
    elapsed_seconds: int = 0  # business seconds used as of the last event; final once stopped
    target_seconds: int = 0
    used_permille: int | None = None  # elapsed * 1000 // target, once stopped
    start_event_id: int = 0
    warn_event_id: int | None = None
    breach_event_id: int | None = None
    stop_event_id: int | None = None
    policy: str | None = Field(default=None, max_length=60)
    priority: str | None = Field(default=None, max_length=10)
    sop_id: str | None = Field(default=None, max_length=100)
    sop_version: int | None = None
    channel: str | None = Field(default=None, max_length=20)
    category: str | None = Field(default=None, max_length=60)
    organisation_id: int | None = None
    tier: str | None = Field(default=None, max_length=20)
    level: int | None = None
    agent_id: int | None = None
    agent_name: str | None = Field(default=None, max_length=200)


@dataclass
class Facts:
    """Where the concern stands as of a batch: what an open cycle is grouped by."""

    seq: int
    policy: str | None
    priority: str | None
    sop_id: str | None
    sop_version: int | None
    category: str | None
    level: int | None
    assignee_id: int | None
    assignee_name: str | None


_T = ClockCycle.__table__
_c = _T.c


def _ola_level(clock: str) -> int | None:
    return int(clock[5:]) if clock.startswith("ola_l") and clock[5:].isdigit() else None


# Open cycles follow the concern (its priority, category, level and last holder) until they breach or stop;
# then their facts stay as they were at that moment. An older batch retried late never moves them back.
_FOLLOW = (
    update(_T)
    .where(_c.concern_id == bindparam("b_cid"), _c.status != "stopped", _c.breached == False,  # noqa: E712
           _c.last_seq <= bindparam("b_seq"))
    .values(
        last_seq=bindparam("b_seq"), policy=bindparam("b_policy"), priority=bindparam("b_priority"),
        category=bindparam("b_category"),
        level=sql_case((_c.clock.like("ola_l%"), _c.level), else_=func.coalesce(bindparam("b_level"), _c.level)),
        agent_id=func.coalesce(bindparam("b_agent_id"), _c.agent_id),
        agent_name=func.coalesce(bindparam("b_agent_name"), _c.agent_name),
    )
)
_CURRENT = (select(func.max(_c.start_seq)).where(_c.concern_id == bindparam("b_cid"), _c.clock == bindparam("b_clock"),
                                                 _c.start_seq < bindparam("b_seq")).scalar_subquery())
_OF_EVENT = (_c.concern_id == bindparam("b_cid"), _c.clock == bindparam("b_clock"), _c.start_seq == _CURRENT)
_KEEP_BREACHED = sql_case((_c.breached == True, "breached"), else_=bindparam("b_state"))  # noqa: E712
_MOVE = {
    "pause": update(_T).where(*_OF_EVENT).values(
        status="paused", outcome=_KEEP_BREACHED, elapsed_seconds=bindparam("b_elapsed"),
        target_seconds=bindparam("b_target"), due_at=None, last_at=bindparam("b_at")),
    "resume": update(_T).where(*_OF_EVENT).values(
        status="running", outcome=_KEEP_BREACHED, elapsed_seconds=bindparam("b_elapsed"),
        target_seconds=bindparam("b_target"), due_at=bindparam("b_due_at"), last_at=bindparam("b_at")),
    "warn": update(_T).where(*_OF_EVENT).values(
        warned=True, warned_at=bindparam("b_at"), warn_event_id=bindparam("b_event_id"),
        target_seconds=bindparam("b_target"), last_at=bindparam("b_at")),
    # The breach fires when the business time used reaches the target (the event carries the time used at
    # the last start, resume or re-target, not at this instant).
    "breach": update(_T).where(*_OF_EVENT).values(
        warned=True, breached=True, outcome="breached", breached_at=bindparam("b_at"),
        breach_event_id=bindparam("b_event_id"), target_seconds=bindparam("b_target"),
        elapsed_seconds=bindparam("b_used"),
        last_at=bindparam("b_at")),
    "stop": update(_T).where(*_OF_EVENT).values(
        status="stopped", outcome=sql_case((_c.breached == True, "breached"), else_="met"),  # noqa: E712
        stopped_at=bindparam("b_at"), stop_event_id=bindparam("b_event_id"), end_seq=bindparam("b_seq"),
        elapsed_seconds=bindparam("b_elapsed"), target_seconds=bindparam("b_target"), used_permille=bindparam("b_permille"),
        last_at=bindparam("b_at")),
}
_ADD = insert(_T)
_ORIGIN = None  # built lazily: the models module imports this one's table through registry.tables


def _origin_statement():
    global _ORIGIN
    if _ORIGIN is None:
        from registry.models import Concern, Customer

        _ORIGIN = (select(Concern.channel, Customer.organisation_id, Customer.tier)
                   .join(Customer, Customer.id == Concern.customer_id).where(Concern.id == bindparam("cid")))
    return _ORIGIN


def apply_clock_events(db, *, concern_id: str, workflow_id: str, run_id: str, facts: Facts,
                       events: Iterable) -> None:
    """Move the concern's cycles by fresh clock events (objects with seq, clock, kind, at, event_id, elapsed,
    target, due_at), on the connection `db` of the transaction that writes those events."""
    events = [e for e in events if e.clock in REPORTED_CLOCKS]
    db.execute(_FOLLOW, {"b_cid": concern_id, "b_seq": facts.seq, "b_policy": facts.policy,
                         "b_priority": facts.priority, "b_category": facts.category, "b_level": facts.level,
                         "b_agent_id": facts.assignee_id,
                         "b_agent_name": facts.assignee_name if facts.assignee_id is not None else None})
    if not events:
        return
    origin = None
    for e in sorted(events, key=lambda e: e.seq):
        if e.kind == "start":
            if origin is None:
                origin = db.execute(_origin_statement(), {"cid": concern_id}).first() or (None, None, None)
            db.execute(_ADD, {
                "concern_id": concern_id, "clock": e.clock, "start_seq": e.seq, "end_seq": None,
                "last_seq": max(facts.seq, e.seq), "workflow_id": workflow_id, "run_id": run_id, "status": "running",
                "outcome": "running", "warned": False, "breached": False, "started_at": e.at, "last_at": e.at,
                "due_at": e.due_at, "elapsed_seconds": e.elapsed, "target_seconds": e.target,
                "start_event_id": e.event_id, "policy": facts.policy, "priority": facts.priority,
                "sop_id": facts.sop_id, "sop_version": facts.sop_version, "channel": origin[0],
                "category": facts.category, "organisation_id": origin[1], "tier": origin[2],
                "level": _ola_level(e.clock) or facts.level, "agent_id": facts.assignee_id,
                "agent_name": facts.assignee_name if facts.assignee_id is not None else None,
            })
            continue
        params = {"b_cid": concern_id, "b_clock": e.clock, "b_seq": e.seq, "b_at": e.at, "b_event_id": e.event_id,
                  "b_elapsed": e.elapsed, "b_target": e.target, "b_due_at": e.due_at,
                  "b_state": "paused" if e.kind == "pause" else "running",
                  "b_used": max(e.elapsed, e.target),
                  "b_permille": e.elapsed * 1000 // e.target if e.target else None}
        db.execute(_MOVE[e.kind], params)


def rebuild_cycles(db, *, concern_ids: list[str] | None = None) -> int:
    """Derive the cycles of these concerns (all when None) again from their clock events, on the connection
    `db`; returns how many cycles there are now.

    Facts come from the concern's projection as it is now (the batches' snapshots are not kept), so a
    rebuilt cycle is grouped by the concern's current priority, category, level and holder."""
    from registry.models import ClockEvent, Concern

    ce, co = ClockEvent.__table__.c, Concern.__table__.c
    concerns = select(co.id, co.seq, co.sla_policy, co.priority, co.sop_id, co.sop_version, co.category, co.level,
                      co.assignee_id, co.assignee_name).order_by(co.id)
    cleared = delete(_T)
    if concern_ids is not None:
        concerns = concerns.where(co.id.in_(concern_ids))
        cleared = cleared.where(_c.concern_id.in_(concern_ids))
    db.execute(cleared)
    count = 0
    for row in db.execute(concerns).all():
        facts = Facts(seq=row.seq, policy=row.sla_policy, priority=row.priority, sop_id=row.sop_id,
                      sop_version=row.sop_version, category=row.category, level=row.level,
                      assignee_id=row.assignee_id, assignee_name=row.assignee_name)
        events = db.execute(select(ce.seq, ce.clock, ce.kind, ce.at, ce.event_id, ce.elapsed_seconds.label("elapsed"),
                                   ce.target_seconds.label("target"), ce.due_at, ce.workflow_id, ce.run_id)
                            .where(ce.concern_id == row.id).order_by(ce.seq)).all()
        by_run: dict[tuple[str, str], list] = {}
        for e in events:
            by_run.setdefault((e.workflow_id, e.run_id), []).append(e)
        for (workflow_id, run_id), batch in by_run.items():
            apply_clock_events(db, concern_id=row.id, workflow_id=workflow_id, run_id=run_id, facts=facts,
                               events=batch)
        count += sum(1 for e in events if e.kind == "start" and e.clock in REPORTED_CLOCKS)
    return count
