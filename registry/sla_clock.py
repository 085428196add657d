"""One SLA clock cycle for auditors: its events with the business time used at each, where the concern was
and who held it when it breached, and every clock of one concern for the concern page."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select

from registry.clock_cycles import REPORTED_CLOCKS, ClockCycle
from registry.models import ClockEvent, Concern, Interaction
from registry.sla_report import ROW_COLUMNS, ClockRow, clock_row

_c = ClockCycle.__table__.c


class EventRow(BaseModel):
    """A clock event with the business time used at that moment."""

    seq: int
    kind: str
    at: datetime
    elapsed_seconds: int
    elapsed_note: str = ""
    target_seconds: int
    due_at: datetime | None
    workflow_id: str
    run_id: str
    event_id: int


class BreachContext(BaseModel):
    """Where the concern was and who held it when a clock breached, from the timeline rows before the breach."""

    step: str | None
    step_entry_seq: int | None
    holder: str | None
    holder_entry_seq: int | None
    holder_entry_kind: str | None


class ClockDetail(BaseModel):
    cycle: ClockRow
    subject: str
    events: list[EventRow]
    breach: BreachContext | None
    warn_at: float | None


def _event_row(e, warn_at: float | None) -> EventRow:
    """A clock event with the business time used at its instant: a warning and a breach fire when the time
    used reaches the warning share and the target; the event itself carries the time used at the last start,
    resume or re-target."""
    used, note = e.elapsed_seconds, ""
    if e.kind == "breach":
        used, note = max(e.elapsed_seconds, e.target_seconds), "reached the target"
    elif e.kind == "warn":
        if warn_at is not None:
            used = max(e.elapsed_seconds, int(e.target_seconds * warn_at))
            note = f"reached {warn_at:.0%} of the target"
        else:
            note = "at least this much: the warning share is in the policy pinned in the workflow's input"
    return EventRow(seq=e.seq, kind=e.kind, at=e.at, elapsed_seconds=used, elapsed_note=note,
                    target_seconds=e.target_seconds, due_at=e.due_at, workflow_id=e.workflow_id, run_id=e.run_id,
                    event_id=e.event_id)


def _events_of(events, clock: str, start_seq: int, end_seq: int | None, warn_at: float | None) -> list[EventRow]:
    """The events of one cycle: its clock's from its start to its stop (a later start begins the next cycle)."""
    rows = []
    for e in events:
        if e.clock != clock or e.seq < start_seq or (end_seq is not None and e.seq > end_seq):
            continue
        if e.kind == "start" and e.seq != start_seq:
            break
        rows.append(_event_row(e, warn_at))
    return rows


def clock_detail(*, session, cycle_id: int, warn_at: float | None = None) -> ClockDetail | None:
    """One clock cycle with its events; `warn_at` (the policy's warning share) gives the time used at a warning."""
    r = session.execute(select(*ROW_COLUMNS).where(_c.id == cycle_id)).first()
    if r is None:
        return None
    cycle = clock_row(r)
    start_seq, end_seq = session.execute(select(_c.start_seq, _c.end_seq).where(_c.id == cycle_id)).one()
    events = session.execute(select(ClockEvent).where(
        ClockEvent.concern_id == cycle.concern_id, ClockEvent.clock == cycle.clock, ClockEvent.seq >= start_seq,
        *([ClockEvent.seq <= end_seq] if end_seq is not None else [])).order_by(ClockEvent.seq)).scalars().all()
    rows = _events_of(events, cycle.clock, start_seq, end_seq, warn_at)
    breach_event = next((e for e in rows if e.kind == "breach"), None)
    breach = None if breach_event is None else breach_context(session=session, concern_id=cycle.concern_id,
                                                              before_seq=breach_event.seq)
    subject = session.execute(select(Concern.subject).where(Concern.id == cycle.concern_id)).scalar() or ""
    return ClockDetail(cycle=cycle, subject=subject, events=rows, breach=breach, warn_at=warn_at)


class ConcernClock(BaseModel):
    """One cycle of a clock of a concern, for its page."""

    cycle: ClockRow
    events: list[EventRow]


def concern_clocks(*, session, concern_id: str, warn_at: float | None = None) -> list[ConcernClock]:
    """Every SLA clock cycle of a concern with its events, in the order they started."""
    cycles = session.execute(select(*ROW_COLUMNS, _c.start_seq, _c.end_seq).where(
        _c.concern_id == concern_id, _c.clock.in_(REPORTED_CLOCKS)).order_by(_c.start_seq)).all()
    if not cycles:
        return []
    events = session.execute(select(ClockEvent).where(ClockEvent.concern_id == concern_id,
                                                      ClockEvent.clock.in_(REPORTED_CLOCKS))
                             .order_by(ClockEvent.seq)).scalars().all()
    return [ConcernClock(cycle=clock_row(r), events=_events_of(events, r.clock, r.start_seq, r.end_seq, warn_at))
            for r in cycles]


def policy_of(*, session, cycle_id: int) -> str | None:
    """The name of the policy a clock cycle ran under."""
    return session.execute(select(_c.policy).where(_c.id == cycle_id)).scalar()


def breach_context(*, session, concern_id: str, before_seq: int) -> BreachContext:
    """The step the concern was at, and who held it, just before timeline position `before_seq` (the timeline
    and the clock events share one sequence per concern)."""
    entries = session.execute(select(Interaction.seq, Interaction.kind, Interaction.author, Interaction.body,
                                     Interaction.meta).where(
        Interaction.concern_id == concern_id, Interaction.seq.is_not(None), Interaction.seq < before_seq,
        Interaction.kind.in_(["step", "claimed", "released", "assigned", "moved"])).order_by(Interaction.seq)).all()
    step = step_seq = holder = holder_seq = holder_kind = None
    for seq, kind, author, body, meta in entries:
        if kind == "step":
            step, step_seq = (meta or {}).get("step"), seq
            if (meta or {}).get("type") == "human":  # a human step starts unclaimed
                holder, holder_seq, holder_kind = None, seq, kind
        elif kind == "claimed":
            holder, holder_seq, holder_kind = author, seq, kind
        elif kind == "released":
            holder, holder_seq, holder_kind = None, seq, kind
        elif kind == "assigned":
            holder = body.removeprefix("Assigned to ").rsplit(" by ", 1)[0]
            holder_seq, holder_kind = seq, kind
    return BreachContext(step=step, step_entry_seq=step_seq, holder=holder, holder_entry_seq=holder_seq,
                         holder_entry_kind=holder_kind)
