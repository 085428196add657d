"""Reads of the concern projection for the agents' queue, shaped to walk the queue indexes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import JSON, cast, exists, func, literal, or_
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from registry.models import Concern, Customer, User

ACTIVE = ("open", "waiting_customer")
STATUSES = ("new", "open", "waiting_customer", "resolved", "closed")
PRIORITIES = ("urgent", "high", "normal", "low")
CHANNELS = ("web", "email", "api", "phone", "walk_in")
SLA_STATES = ("ok", "warning", "breached", "paused")


@dataclass(frozen=True)
class QueueFilter:
    """What an agent asked the queue for; empty fields do not filter."""

    scope: Literal["mine", "all"] = "mine"
    status: str | None = None
    priority: str | None = None
    category: str | None = None
    channel: str | None = None
    sla_state: str | None = None
    level: int | None = None
    q: str | None = None
    sort: Literal["due", "newest"] = "due"
    limit: int = 50


@dataclass
class QueueAgent:
    """Whose queue it is: their id, level and skills."""

    id: int
    level: int | None
    skills: list[str] = field(default_factory=list)


def _skills_within(session: Session, skills: list[str]):
    """A condition: every skill the concern's step needs is one of `skills`."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(cast(Concern.skills, JSON), JSONB).op("<@")(cast(literal(json.dumps(skills)), JSONB))
    needed = func.json_each(Concern.skills).table_valued("value")
    return ~exists(select(1).select_from(needed).where(needed.c.value.not_in(skills)))


def _filtered(query, f: QueueFilter):
    for column, value in ((Concern.priority, f.priority), (Concern.category, f.category),
                          (Concern.channel, f.channel), (Concern.sla_state, f.sla_state)):
        if value:
            query = query.where(column == value)
    if f.q:
        text = f.q.strip()
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Concern.id == text.upper(), col(Concern.subject).ilike(like, escape="\\")))
    return query


def _sort_key(f: QueueFilter):
    if f.sort == "newest":
        return lambda c: (-c.created_at.timestamp(), c.id)
    return lambda c: (c.next_due_at is None, c.next_due_at.timestamp() if c.next_due_at else 0, c.id)


def _top(session: Session, query, f: QueueFilter, take: int) -> list[Concern]:
    """The first `take` rows of `query` in the queue's order.

    One query per status, and due concerns before paused ones (no due time): each is then a plain walk
    along an index in its order, where `status IN (...)` or `NULLS LAST` would make the database sort
    every matching row first.
    """
    rows: list[Concern] = []
    for status in (f.status,) if f.status else ACTIVE:
        by_status = query.where(Concern.status == status)
        if f.sort == "newest":
            rows += session.exec(by_status.order_by(col(Concern.created_at).desc(), col(Concern.id).desc())
                                 .limit(take))
            continue
        due = list(session.exec(by_status.where(col(Concern.next_due_at).is_not(None))
                                .order_by(col(Concern.next_due_at), col(Concern.id)).limit(take)))
        if len(due) < take:
            due += session.exec(by_status.where(col(Concern.next_due_at).is_(None))
                                .order_by(col(Concern.id)).limit(take - len(due)))
        rows += due
    return rows


def queue_page(*, session: Session, agent: QueueAgent, f: QueueFilter) -> tuple[list[Concern], bool]:
    """One page of the queue and whether more rows exist; `mine` is my level and skills plus my own claims."""
    take = f.limit + 1
    rows: list[Concern] = []
    if f.scope == "all":
        query = _filtered(select(Concern), f)
        if f.level is not None:
            query = query.where(Concern.level == f.level)
        rows += _top(session, query, f, take)
    else:
        if agent.level is not None:
            waiting = _filtered(select(Concern), f).where(Concern.level == agent.level,
                                                          _skills_within(session, agent.skills))
            rows += _top(session, waiting, f, take)
        # A separate walk of the assignee index: an OR of (level) and (assignee) would defeat both indexes.
        rows += _top(session, _filtered(select(Concern), f).where(Concern.assignee_id == agent.id), f, take)
    rows = sorted({c.id: c for c in rows}.values(), key=_sort_key(f))[:take]
    return rows[: f.limit], len(rows) > f.limit


def customers_of(*, session: Session, concerns: list[Concern]) -> dict[int, Customer]:
    """The customers of these concerns, by id, in one query."""
    ids = {c.customer_id for c in concerns}
    if not ids:
        return {}
    return {c.id: c for c in session.exec(select(Customer).where(col(Customer.id).in_(ids)))}


def assignable_agents(*, session: Session) -> list[User]:
    """Active agents and leads a lead may assign concerns to, by level and name."""
    return list(session.exec(
        select(User).where(col(User.role).in_(("agent", "lead")), User.active == True)  # noqa: E712
        .order_by(col(User.level), col(User.name))
    ))


def concern_count(*, session: Session, customer_id: int) -> int:
    """How many concerns a customer has had."""
    return session.exec(select(func.count()).select_from(Concern).where(Concern.customer_id == customer_id)).one()

