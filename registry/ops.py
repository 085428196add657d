"""What needs an SRE's attention, as the registry knows it: unstaffed steps, mail, hand-overs, late timers, e-level
outcomes; and the record of what operators did about it.

The Temporal side (activities retrying, workflow task failures, pollers) is read by `api.ops`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from registry import audit
from registry.handover import Handover
from registry.models import ClockEvent, Concern, Interaction, OutboxMail
from registry.sop_store import active_staffing, can_take
from registry.types import utcnow

OPEN_STATUSES = ("open", "waiting", "new")
# A timer whose warning or breach was written this much after its instant fired late: workers were short.
LATE_AFTER = timedelta(seconds=5)
# Queued mail older than this has waited too long for the relay.
MAIL_WAITING_AFTER = timedelta(minutes=2)
# What the operator-action timeline entries are called; the concern page shows them as events.
OPERATOR_ACTION = "operator_action"
# E-level outcomes that mean the action could not do its work (a connector down, an error).
FAILED_OUTCOMES = ("unavailable", "error")


@dataclass
class UnstaffedConcern:
    concern_id: str
    subject: str
    step: str | None
    level: int | None
    skills: list[str]
    since: datetime


def unstaffed_concerns(*, session: Session, limit: int = 100) -> list[UnstaffedConcern]:
    """Unclaimed concerns whose current human step no active agent or lead can take (level or skills)."""
    staffing = active_staffing(session=session)
    rows = session.exec(select(Concern).where(
        col(Concern.status).in_(("open", "waiting")), Concern.step_type == "human",
        col(Concern.assignee_id).is_(None), col(Concern.level).is_not(None)).order_by(Concern.updated_at))
    found = []
    for c in rows:
        if any(can_take(level=level, skills=skills, step_level=c.level, step_skills=c.skills or [])
               for level, skills in staffing):
            continue
        found.append(UnstaffedConcern(c.id, c.subject, c.step, c.level, list(c.skills or []), c.updated_at))
        if len(found) >= limit:
            break
    return found


@dataclass
class MailProblem:
    outbox_id: int
    concern_id: str | None
    to: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    queued_at: datetime


def mail_problems(*, session: Session, now: datetime | None = None, limit: int = 100) -> list[MailProblem]:
    """Mail the relay refused or has not taken yet (queued longer than `MAIL_WAITING_AFTER`), oldest first."""
    now = now or utcnow()
    rows = session.exec(select(OutboxMail).where(
        (OutboxMail.status == "failed")
        | ((OutboxMail.status == "queued") & (OutboxMail.created_at < now - MAIL_WAITING_AFTER))
    ).order_by(OutboxMail.id).limit(limit))
    return [MailProblem(r.id, r.concern_id, r.to_address, r.subject, r.status, r.attempts, r.last_error, r.created_at)
            for r in rows]


@dataclass
class PendingHandover:
    handover_id: int
    concern_id: str
    kind: str
    subject: str
    created_at: datetime
    attempts: int
    last_error: str | None
    last_tried_at: datetime | None

    def age(self, now: datetime) -> float:
        return (now - self.created_at).total_seconds()


def pending_handovers(*, session: Session, limit: int = 100) -> list[PendingHandover]:
    """What intake stored and Temporal has not taken: workflows to start (a concern without a workflow), customer
    messages and ratings not yet delivered; oldest first."""
    rows = session.exec(select(Handover, Concern.subject).join(Concern, Concern.id == Handover.concern_id)
                        .where(col(Handover.delivered_at).is_(None)).order_by(Handover.id).limit(limit))
    return [PendingHandover(h.id, h.concern_id, h.kind, subject, h.created_at, h.attempts, h.last_error,
                            h.last_tried_at) for h, subject in rows]


@dataclass
class LateTimer:
    concern_id: str
    clock: str
    kind: str
    due_at: datetime
    fired_at: datetime
    workflow_id: str
    event_id: int

    @property
    def late_seconds(self) -> float:
        return (self.fired_at - self.due_at).total_seconds()


def late_timers(*, session: Session, since: datetime | None = None, late_after: timedelta = LATE_AFTER,
                limit: int = 100) -> list[LateTimer]:
    """SLA breaches recorded later than their instant by more than `late_after` (newest first, since `since`).

    A clock event's `due_at` is the breach instant; the workflow writes `at` when its timer's task ran, so the
    difference is how long the timer waited for a worker."""
    since = since or utcnow() - timedelta(days=1)
    rows = session.exec(select(ClockEvent).where(
        ClockEvent.kind == "breach", col(ClockEvent.due_at).is_not(None), ClockEvent.at >= since,
    ).order_by(col(ClockEvent.at).desc()).limit(2000))
    late = [LateTimer(r.concern_id, r.clock, r.kind, r.due_at, r.at, r.workflow_id, r.event_id)
            for r in rows if r.at - r.due_at > late_after]
    return late[:limit]


@dataclass
class FailingAction:
    action: str
    failures: int
    last_concern_id: str
    last_detail: str
    last_at: datetime
    concern_ids: list[str] = field(default_factory=list)


def failing_actions(*, session: Session, since: datetime | None = None) -> list[FailingAction]:
    """E-level actions whose recent outcome was `unavailable` or `error` (a connector down), by action."""
    since = since or utcnow() - timedelta(hours=1)
    rows = session.exec(select(Interaction).where(
        Interaction.kind == "automated", Interaction.created_at >= since).order_by(col(Interaction.id).desc())
        .limit(2000))
    found: dict[str, FailingAction] = {}
    for row in rows:
        meta = row.meta or {}
        if meta.get("outcome") not in FAILED_OUTCOMES:
            continue
        action = str(meta.get("action") or "?")
        entry = found.get(action)
        if entry is None:
            entry = found[action] = FailingAction(action, 0, row.concern_id, str(meta.get("detail") or ""),
                                                  row.created_at)
        entry.failures += 1
        if row.concern_id not in entry.concern_ids and len(entry.concern_ids) < 20:
            entry.concern_ids.append(row.concern_id)
    return sorted(found.values(), key=lambda f: f.last_at, reverse=True)


def concerns_at_automated_steps(*, session: Session, limit: int = 50) -> list[Concern]:
    """Open concerns whose current step is automated, longest there first (for Temporal to describe)."""
    return list(session.exec(select(Concern).where(col(Concern.status).in_(("open", "new")),
                                                   Concern.step_type == "automate")
                             .order_by(Concern.updated_at).limit(limit)))


def concern_counts(*, session: Session) -> list[tuple[str, int | None, int]]:
    """(status, level, count) of every concern in the projection."""
    return list(session.exec(select(Concern.status, Concern.level, func.count()).group_by(Concern.status,
                                                                                          Concern.level)))


# ---- operator actions, attributed ---------------------------------------------------------------


@dataclass
class OperatorAction:
    """Who did what to which concern, when and why."""

    actor_id: int
    actor: str
    action: str
    concern_id: str | None
    reason: str
    detail: dict
    ip: str | None
    at: datetime


def record_operator_action(*, session: Session, actor_id: int, actor: str, action: str, concern_id: str | None,
                           reason: str, detail: dict | None = None, ip: str | None = None) -> OperatorAction:
    """Record an operator's action as an internal entry of the concern's timeline and in the staff audit record.

    `audit_operator_action` is the one place that hands it to the staff audit log."""
    reason = " ".join(reason.split())
    if not reason:
        raise ValueError("say why: a reason is required for every operator action")
    entry = OperatorAction(actor_id=actor_id, actor=actor, action=action, concern_id=concern_id, reason=reason[:1000],
                           detail=dict(detail or {}), ip=ip, at=utcnow())
    if concern_id is not None:
        concern = session.get(Concern, concern_id)
        if concern is not None:
            session.add(Interaction(
                customer_id=concern.customer_id, concern_id=concern_id, kind=OPERATOR_ACTION, channel="ops",
                direction="internal", author=actor, author_user_id=actor_id,
                body=f"{ACTION_TITLES.get(action, action)}: {entry.reason}",
                meta={"action": action, "reason": entry.reason, **entry.detail}, created_at=entry.at))
    audit_operator_action(session=session, entry=entry)
    session.flush()
    return entry


ACTION_TITLES = {
    "retry_mail": "Mail sent again by an operator",
    "restart_concern": "Workflow start handed over again by an operator",
    "reset_workflow": "Workflow reset by an operator",
}


def audit_operator_action(*, session: Session, entry: OperatorAction) -> None:
    """The staff audit log's record of an operator action, in the transaction of its timeline entry."""
    audit.record(session=session, actor=entry.actor, action=f"ops.{entry.action}",
                 target=f"concern:{entry.concern_id}" if entry.concern_id else "",
                 detail={"reason": entry.reason, **entry.detail}, ip=entry.ip)


def operator_actions(*, session: Session, limit: int = 50) -> list[Interaction]:
    """The latest operator actions on any concern, newest first."""
    return list(session.exec(select(Interaction).where(Interaction.kind == OPERATOR_ACTION)
                             .order_by(col(Interaction.id).desc()).limit(limit)))
