"""Reads of the concern projection for the agents' queue, shaped to walk the queue indexes."""

from __future__ import annotations

import time
from collections import namedtuple
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

from sqlalchemy import Integer, bindparam, case, cast, exists, func, literal_column, null, or_, type_coerce, union_all
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from registry.concern_search import query_terms, search_condition, term_params
from registry.models import Concern, Customer, SopVersion, User
from registry.sop_store import list_latest
from registry.types import JSONType

ACTIVE = ("open", "waiting_customer")
STATUSES = ("new", "open", "waiting_customer", "resolved", "closed")
PRIORITIES = ("urgent", "high", "normal", "low")
CHANNELS = ("web", "email", "api", "phone", "walk_in")
SLA_STATES = ("ok", "warning", "breached", "paused")
STOPPED_OR_PAUSED = ("waiting_customer", "resolved", "closed")  # literals, not parameters: status_N are taken


# A queue row needs these, not the clocks or the SOP: loading less keeps the page fast at 100,000 concerns.
QUEUE_COLUMNS = (Concern.id, Concern.subject, Concern.customer_id, Concern.channel, Concern.category,
                 Concern.priority, Concern.status, Concern.step, Concern.level, Concern.assignee_id,
                 Concern.assignee_name, Concern.sla_state, Concern.next_due_at, Concern.created_at, Concern.skills,
                 # Who wrote in, looked up by primary key for each row the index walk picked (a join lets
                 # PostgreSQL hash the whole customer table for the sorted claims).
                 select(func.coalesce(func.nullif(Customer.name, ""), Customer.email))
                 .where(Customer.id == Concern.customer_id).scalar_subquery().label("customer"),
                 # The clocks only of rows whose SLA cell needs them (paused: business time left; stopped: met
                 # or breached); running rows show their due time, which is a column.
                 type_coerce(case((col(Concern.status).in_([literal_column(f"'{s}'") for s in STOPPED_OR_PAUSED]),
                                   Concern.clocks), else_=null()), JSONType).label("stopped_clocks"))


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


def _skills_within(dialect: str):
    """A condition: every skill the concern's step needs is one of the `skills` parameter.

    Written as NOT EXISTS over the array's elements on both databases: PostgreSQL guesses that a JSONB
    containment matches almost nothing and would then sort a whole level instead of walking its index.
    """
    if dialect == "postgresql":
        needed = func.jsonb_array_elements_text(cast(Concern.skills, JSONB)).table_valued("value")
    else:
        needed = func.json_each(Concern.skills).table_valued("value")
    return ~exists(select(1).select_from(needed).where(needed.c.value.not_in(bindparam("skills", expanding=True))))


FILTERS = ("priority", "category", "channel", "sla_state")


@dataclass(frozen=True)
class _Shape:
    """What decides a queue statement's SQL; the values travel as parameters."""

    dialect: str
    part: Literal["due", "paused", "newest"]
    filters: tuple[str, ...] = ()
    search: bool = False
    terms: int = 0  # words searched for, parameters term_0, term_1, ...
    level: bool = False
    skills: bool = False
    statuses: int = 0  # one walk along the queue index per status, parameters status_0, status_1, ...
    claimed: bool = False  # also the caller's own claims (parameters agent and statuses)


@lru_cache(maxsize=1024)
def _statement(shape: _Shape):
    """The statement for `shape`, built once: a statement used again is also compiled and mapped only once.

    Each part is a plain walk along one index in its own order with its own LIMIT; the parts travel to the
    database as one UNION ALL (one round trip), which the database merges into one page.
    """
    base = select(*QUEUE_COLUMNS)
    for name in shape.filters:
        base = base.where(getattr(Concern, name) == bindparam(name))
    if shape.search:
        # A whole id is found by its key even without a search document (rows seeded in bulk).
        found = Concern.id == bindparam("q_id")
        base = base.where(or_(found, search_condition(shape.dialect, shape.terms)) if shape.terms else found)
    take = bindparam("take", type_=Integer)
    parts = []
    if shape.claimed:
        # The ORDER BY leads with an expression no index provides, so the planner picks its index by the
        # WHERE clause (the assignee) and sorts those few rows, instead of walking a whole index in due
        # order (SQLite's statistics misjudge the many NULL assignees and due times).
        if shape.part == "newest":
            order = (case((col(Concern.created_at).is_(None), 1), else_=0), col(Concern.created_at).desc(),
                     col(Concern.id).desc())
        else:
            order = (case((col(Concern.next_due_at).is_(None), 1), else_=0), col(Concern.next_due_at),
                     col(Concern.id))
        parts.append(base.where(Concern.assignee_id == bindparam("agent"),
                                col(Concern.status).in_(bindparam("statuses", expanding=True)))
                     .order_by(*order).limit(take))
    walk = base
    if shape.claimed:
        # The caller's own claims come from their part; a walk leaves them out so no row comes twice.
        walk = walk.where(or_(col(Concern.assignee_id).is_(None), Concern.assignee_id != bindparam("agent")))
    if shape.level:
        walk = walk.where(Concern.level == bindparam("level"))
    if shape.skills:
        walk = walk.where(_skills_within(shape.dialect))
    for i in range(shape.statuses):
        query = walk.where(Concern.status == bindparam(f"status_{i}"))
        if shape.part == "newest":
            query = query.order_by(col(Concern.created_at).desc(), col(Concern.id).desc())
        elif shape.part == "due":
            query = query.where(col(Concern.next_due_at).is_not(None)).order_by(col(Concern.next_due_at),
                                                                               col(Concern.id))
        else:
            # Ordered by an expression of the id: ordering by the bare primary key tempts SQLite to walk the
            # whole table in id order instead of using the (status, level) or (assignee) index.
            query = query.where(col(Concern.next_due_at).is_(None)).order_by(col(Concern.id) + "")
        parts.append(query.limit(take))
    if len(parts) == 1:
        return parts[0]
    # The database merges the parts (a few pages of rows at most) and returns only the page.
    merged = union_all(*(part.subquery().select() for part in parts)).subquery()
    if shape.part == "newest":
        order = (merged.c.created_at.desc(), merged.c.id.desc())
    else:
        order = (case((merged.c.next_due_at.is_(None), 1), else_=0), merged.c.next_due_at, merged.c.id)
    return select(merged).order_by(*order).limit(take)


def _params(f: QueueFilter, agent: QueueAgent, take: int, dialect: str) -> dict:
    params = {name: getattr(f, name) for name in FILTERS if getattr(f, name)}
    if f.q:
        params["q_id"] = f.q.strip().upper()
        params.update(term_params(query_terms(f.q), dialect))
    return {**params, "take": take, "agent": agent.id, "skills": list(agent.skills), "level": agent.level}


def _sort_key(f: QueueFilter):
    if f.sort == "newest":
        return lambda c: (-c.created_at.timestamp(), c.id)
    return lambda c: (c.next_due_at is None, c.next_due_at.timestamp() if c.next_due_at else 0, c.id)


@lru_cache(maxsize=64)
def _row_type(fields: tuple[str, ...]):
    return namedtuple("QueueEntry", fields)


def _rows(session: Session, statement, params: dict) -> list:
    """Plain rows of a column query, read through the session's connection (no ORM loading per row).

    Named tuples rather than SQLAlchemy rows: a page reads each row's fields a dozen times, ten times faster.
    """
    result = session.connection().execute(statement, params)
    make = _row_type(tuple(result.keys()))._make
    return [make(row) for row in result]


def _merge(results, f: QueueFilter, take: int) -> list:
    unique = {row.id: row for result in results for row in result}
    return sorted(unique.values(), key=_sort_key(f))[:take]


def queue_page(*, session: Session, agent: QueueAgent, f: QueueFilter) -> tuple[list, bool]:
    """One page of queue rows and whether more exist; `mine` is my level and skills plus my own claims.

    Due concerns come before paused ones (no due time); the paused ones are only looked up when the due
    ones do not fill the page. `status IN (...)`, `NULLS LAST` or an OR of (level) and (assignee) would
    make the database sort every matching row first, so each is a part of its own.
    """
    take = f.limit + 1
    statuses = (f.status,) if f.status else ACTIVE
    dialect = session.get_bind().dialect.name
    params = {**_params(f, agent, take, dialect), **{f"status_{i}": s for i, s in enumerate(statuses)},
              "statuses": list(statuses)}
    shape = _Shape(dialect=dialect, part="newest" if f.sort == "newest" else "due",
                   filters=tuple(n for n in FILTERS if getattr(f, n)), search=bool(f.q),
                   terms=len(query_terms(f.q)) if f.q else 0, statuses=len(statuses))
    if f.scope == "all":
        shape, params["level"] = replace(shape, level=f.level is not None), f.level
    elif agent.level is not None:
        shape = replace(shape, level=True, skills=True, claimed=True)
    else:
        shape = replace(shape, statuses=0, claimed=True)  # no level of their own: their claims only
    rows = _rows(session, _statement(shape), params)  # sorted, at most `take`
    if shape.part == "due" and shape.statuses and (len(rows) < take or rows[-1].next_due_at is None):
        # Paused concerns (no due time) come last, so they are only looked up when they can be on the page.
        paused = _rows(session, _statement(replace(shape, part="paused", claimed=False)), params)
        rows = _merge([rows, paused], f, take)
    return rows[: f.limit], len(rows) > f.limit


def assignable_agents(*, session: Session) -> list[User]:
    """Active agents and leads a lead may assign concerns to, by level and name."""
    return list(session.exec(
        select(User).where(col(User.role).in_(("agent", "lead")), User.active == True)  # noqa: E712
        .order_by(col(User.level), col(User.name))
    ))


def concern_count(*, session: Session, customer_id: int) -> int:
    """How many concerns a customer has had."""
    return session.exec(select(func.count()).select_from(Concern).where(Concern.customer_id == customer_id)).one()



CATEGORIES_CHECKED_EVERY = 5.0  # seconds
_categories: dict[str, tuple[float, int | None, list[str]]] = {}


def sop_categories(*, session: Session) -> list[str]:
    """Categories the published SOPs apply to, for the queue's filter.

    Versions are immutable and numbered upwards, so the newest id stands for the whole set: it is looked
    up at most every few seconds per database, and the set recomputed only when a version was published.
    """
    database = str(session.get_bind().url)
    checked, known, found = _categories.get(database, (0.0, None, []))
    now = time.monotonic()
    if now - checked < CATEGORIES_CHECKED_EVERY:
        return found
    newest = session.exec(select(func.max(SopVersion.id))).one()
    if newest is None or newest != known:
        found = sorted({cat for v in list_latest(session=session)
                        for cat in ((v.definition.get("applies_to") or {}).get("categories") or [])})
    _categories[database] = (now, newest, found)
    return found
