"""Reads of the concern projection for the agents' queue, shaped to walk the queue indexes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import cast, exists, func, or_
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from registry.models import Concern, Customer, SopVersion, User
from registry.sop_store import list_latest

ACTIVE = ("open", "waiting_customer")
MAX_CLAIMS = 1000
STATUSES = ("new", "open", "waiting_customer", "resolved", "closed")
PRIORITIES = ("urgent", "high", "normal", "low")
CHANNELS = ("web", "email", "api", "phone", "walk_in")
SLA_STATES = ("ok", "warning", "breached", "paused")


# A queue row needs these, not the clocks or the SOP: loading less keeps the page fast at 100,000 concerns.
QUEUE_COLUMNS = (Concern.id, Concern.subject, Concern.customer_id, Concern.channel, Concern.category,
                 Concern.priority, Concern.status, Concern.step, Concern.level, Concern.assignee_id,
                 Concern.assignee_name, Concern.sla_state, Concern.next_due_at, Concern.created_at)


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
    """A condition: every skill the concern's step needs is one of `skills`.

    Written as NOT EXISTS over the array's elements on both databases: PostgreSQL guesses that a JSONB
    containment matches almost nothing and would then sort a whole level instead of walking its index.
    """
    if session.get_bind().dialect.name == "postgresql":
        needed = func.jsonb_array_elements_text(cast(Concern.skills, JSONB)).table_valued("value")
    else:
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


def _walk(session: Session, sources: list, f: QueueFilter, take: int) -> list:
    """The first `take` rows of `sources`, in the queue's order.

    One query per status, due concerns before paused ones (no due time): each is then a plain walk along
    an index in its order, where `status IN (...)` or `NULLS LAST` would make the database sort every
    matching row first.
    """
    statuses = (f.status,) if f.status else ACTIVE
    queries = [source.where(Concern.status == status) for source in sources for status in statuses]
    if f.sort == "newest":
        newest = (col(Concern.created_at).desc(), col(Concern.id).desc())
        return _merge([session.execute(q.order_by(*newest).limit(take)) for q in queries], f, take)
    due = (col(Concern.next_due_at), col(Concern.id))
    rows = _merge([session.execute(q.where(col(Concern.next_due_at).is_not(None)).order_by(*due).limit(take))
                   for q in queries], f, take)
    if len(rows) < take:
        # Ordered by an expression of the id: ordering by the bare primary key tempts SQLite to walk the
        # whole table in id order instead of using the (status, level) or (assignee) index.
        by_id = col(Concern.id) + ""
        rows += _merge([session.execute(q.where(col(Concern.next_due_at).is_(None)).order_by(by_id)
                                        .limit(take - len(rows))) for q in queries], f, take - len(rows))
    return rows


def _merge(results, f: QueueFilter, take: int) -> list:
    unique = {row.id: row for result in results for row in result}
    return sorted(unique.values(), key=_sort_key(f))[:take]


def _claimed(session: Session, base, agent: QueueAgent, f: QueueFilter, take: int) -> list:
    """The agent's own claims: a handful, fetched by plain equality on the assignee index and sorted here.

    Without an ORDER BY the planner has no reason to prefer an index sorted by due time over the
    assignee index (SQLite's statistics misjudge the many NULL assignees and due times).
    """
    statuses = (f.status,) if f.status else ACTIVE
    query = base.where(Concern.assignee_id == agent.id, col(Concern.status).in_(statuses)).limit(MAX_CLAIMS)
    return _merge([session.execute(query)], f, take)


def queue_page(*, session: Session, agent: QueueAgent, f: QueueFilter) -> tuple[list, bool]:
    """One page of queue rows and whether more exist; `mine` is my level and skills plus my own claims."""
    take = f.limit + 1
    base = _filtered(select(*QUEUE_COLUMNS), f)
    if f.scope == "all":
        rows = _walk(session, [base.where(Concern.level == f.level) if f.level is not None else base], f, take)
    else:
        # Two lookups merged here: an OR of (level) and (assignee) would defeat both indexes.
        rows = _claimed(session, base, agent, f, take)
        if agent.level is not None:
            waiting = base.where(Concern.level == agent.level, _skills_within(session, agent.skills))
            rows = _merge([rows, _walk(session, [waiting], f, take)], f, take)
    return rows[: f.limit], len(rows) > f.limit


def customers_of(*, session: Session, concerns: list) -> dict[int, object]:
    """Id, name and e-mail of the customers of these concerns, by id, in one query."""
    ids = {c.customer_id for c in concerns}
    if not ids:
        return {}
    rows = session.execute(select(Customer.id, Customer.name, Customer.email).where(col(Customer.id).in_(ids)))
    return {row.id: row for row in rows}


def assignable_agents(*, session: Session) -> list[User]:
    """Active agents and leads a lead may assign concerns to, by level and name."""
    return list(session.exec(
        select(User).where(col(User.role).in_(("agent", "lead")), User.active == True)  # noqa: E712
        .order_by(col(User.level), col(User.name))
    ))


def concern_count(*, session: Session, customer_id: int) -> int:
    """How many concerns a customer has had."""
    return session.exec(select(func.count()).select_from(Concern).where(Concern.customer_id == customer_id)).one()



_categories: tuple[int | None, list[str]] = (None, [])


def sop_categories(*, session: Session) -> list[str]:
    """Categories the published SOPs apply to; recomputed only when a new version is published."""
    global _categories
    newest = session.exec(select(func.max(SopVersion.id))).one()
    if newest is None or newest != _categories[0]:
        found = {cat for v in list_latest(session=session)
                 for cat in ((v.definition.get("applies_to") or {}).get("categories") or [])}
        # Versions are immutable and numbered upwards, so the newest id stands for the whole set.
        _categories = (newest, sorted(found))
    return _categories[1]
