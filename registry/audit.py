"""The staff audit log (who did what, when, from where) and the hash chains that make tampering show.

One function, `record`, writes every entry, in the caller's transaction so an entry exists exactly when the change
does. Entries form one hash chain (registry/chain.py); its writers take turns on the one-row `auditchain` head (a
row lock on PostgreSQL, the writer's turn on SQLite), so each entry links to the one committed before it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Index, bindparam, insert, select, update
from sqlmodel import Field, Session, SQLModel

from registry import chain
from registry.types import JSONType, UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    """One staff action: sign-ins, role and token changes, publishes, overrides, exports, verifications."""

    __table_args__ = (Index("ix_auditentry_at", "at"), Index("ix_auditentry_actor", "actor", "at"),
                      Index("ix_auditentry_action", "action", "at"))

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=320)
    action: str = Field(max_length=60)
    target: str = Field(default="", max_length=300)
    detail: dict = Field(default_factory=dict, sa_type=JSONType)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)
    prev_hash: str = Field(max_length=64)
    row_hash: str = Field(max_length=64)


class AuditChain(SQLModel, table=True):
    """The head of the audit log's chain: its last seq and hash. Writers lock this one row to take turns."""

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    last_hash: str = Field(default=chain.GENESIS, max_length=64)


class Verification(SQLModel, table=True):
    """A recorded evaluation of the figures against Temporal's history: kept beside the data, never replacing it."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=320)
    reason: str = Field(default="", max_length=1000)
    range_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    range_to: datetime | None = Field(default=None, sa_type=UTCDateTime)
    concern_id: str | None = Field(default=None, max_length=20)
    ok: bool
    concerns: int = 0
    events: int = 0
    mismatches: list[dict] = Field(default_factory=list, sa_type=JSONType)
    anchors: dict = Field(default_factory=dict, sa_type=JSONType)


@dataclass(frozen=True)
class Origin:
    """Where a request came from, as the audit log records it."""

    ip: str = ""
    user_agent: str = ""


# Set once per web request (web/access.py), so stores deep below a route record where the caller was.
current_origin: ContextVar[Origin] = ContextVar("ccr_audit_origin", default=Origin())

_ENTRIES = AuditEntry.__table__
_HEAD = AuditChain.__table__
_ADVANCE = update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + 1).returning(_HEAD.c.seq, _HEAD.c.last_hash)
_SET_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=bindparam("h"))


def _json_safe(value: Any) -> Any:
    return chain.stamp(value) if isinstance(value, datetime) else value


def record(*, session: Session, actor: str, action: str, target: str = "", detail: dict | None = None,
           ip: str | None = None, user_agent: str | None = None) -> AuditEntry:
    """Append one entry to the staff audit log, in `session`'s transaction (it commits or rolls back with the change).

    `actor` is who acted (an e-mail, or `cli:<user>@<host>`); `action` a dotted name such as `user.updated`;
    `target` what it acted on (`user:ada@desk.test`, `concern:CCR-…`); `detail` JSON-able facts (before and after);
    `ip` and `user_agent` default to the current web request's origin."""
    origin = current_origin.get()
    db = session.connection()
    # The head's row lock (PostgreSQL) or the writer's turn (SQLite) is held until commit: one writer at a time.
    head = db.execute(_ADVANCE).first()
    if head is None:
        _create_head(db)
        head = db.execute(_ADVANCE).first()
    seq, prev = head
    content = {
        "seq": seq, "at": utcnow(), "actor": (actor or "system")[:320], "action": action[:60], "target": target[:300],
        "detail": {k: _json_safe(v) for k, v in (detail or {}).items()},
        "ip": (origin.ip if ip is None else ip)[:64],
        "user_agent": (origin.user_agent if user_agent is None else user_agent)[:300],
    }
    digest = chain.row_hash(chain.audit_content(content), prev)
    db.execute(insert(_ENTRIES).values(**content, prev_hash=prev, row_hash=digest))
    db.execute(_SET_HEAD, {"h": digest})
    return AuditEntry(**content, prev_hash=prev, row_hash=digest)


def _create_head(db) -> None:
    if db.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    db.execute(upsert(_HEAD).values(id=1, seq=0, last_hash=chain.GENESIS).on_conflict_do_nothing())


# ---- reading the log -----------------------------------------------------------------------------------------


def entries(*, session: Session, actor: str | None = None, action: str | None = None, since: datetime | None = None,
            until: datetime | None = None, before_seq: int | None = None, limit: int = 50) -> list[AuditEntry]:
    """A page of the log, newest first: `actor` and `action` match a prefix (`kb.` finds every KB action)."""
    query = sa.select(AuditEntry)
    if actor:
        query = query.where(AuditEntry.actor.startswith(actor.strip().lower(), autoescape=True))
    if action:
        query = query.where(AuditEntry.action.startswith(action.strip(), autoescape=True))
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    return list(session.exec(query.order_by(AuditEntry.seq.desc()).limit(limit)).scalars())


def actions(*, session: Session) -> list[str]:
    """The actions the log holds, for the page's filter."""
    return list(session.exec(sa.select(AuditEntry.action).distinct().order_by(AuditEntry.action)).scalars())


def audit_rows(*, session: Session, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """The log's rows in chain order (all, or those of a period), as plain mappings."""
    query = select(_ENTRIES)
    if since is not None:
        query = query.where(_ENTRIES.c.at >= since)
    if until is not None:
        query = query.where(_ENTRIES.c.at < until)
    return [dict(r._mapping) for r in session.connection().execute(query.order_by(_ENTRIES.c.seq))]


def row_before(*, session: Session, seq: int) -> dict | None:
    """The audit row just before `seq` in the chain, if it is there."""
    row = session.connection().execute(select(_ENTRIES).where(_ENTRIES.c.seq == seq - 1)).first()
    return dict(row._mapping) if row else None


def check_audit_chain(*, session: Session, since: datetime | None = None,
                      until: datetime | None = None) -> list[dict]:
    """Every edited, deleted or inserted row of the audit log (in a period), each named."""
    rows = audit_rows(session=session, since=since, until=until)
    if not rows:
        return []
    problems = []
    first = rows[0]
    before = row_before(session=session, seq=first["seq"]) if first["seq"] > 1 else None
    first_prev = before["row_hash"] if before else chain.GENESIS
    if first["seq"] > 1 and before is None and since is None:
        problems.append({"row": f"audit log row #{first['seq'] - 1}", "problem": "missing: the row was deleted"})
    name = lambda r: f"audit log row #{r['seq']} ({r['action']} by {r['actor']} at {chain.stamp(r['at'])})"  # noqa: E731
    problems += chain.check_chain(rows, chain.audit_content, first_prev=first_prev, name=name)
    for a, b in zip(rows, rows[1:]):
        if b["seq"] != a["seq"] + 1:
            problems.append({"row": f"audit log rows #{a['seq'] + 1}..#{b['seq'] - 1}",
                             "problem": "missing: deleted from the log"})
    head = session.connection().execute(select(_HEAD).where(_HEAD.c.id == 1)).first()
    if until is None and head is not None and (head.seq != rows[-1]["seq"] or head.last_hash != rows[-1]["row_hash"]):
        problems.append({"row": f"audit log row #{rows[-1]['seq']}",
                         "problem": f"the chain's head names row #{head.seq}: the log's last rows were removed or "
                                    "added behind its back"})
    return problems


# ---- clock event chains ---------------------------------------------------------------------------------------

# The columns the chain needs, typed, and no others: the migration that seals old rows uses it too.
_CLOCK = sa.table("clockevent", *(sa.column(n, UTCDateTime() if n in ("at", "due_at") else None)
                                  for n in ("id", *chain.CLOCK_FIELDS, "prev_hash", "row_hash")))
_TIP = select(_CLOCK.c.row_hash).where(_CLOCK.c.concern_id == bindparam("cid")).order_by(_CLOCK.c.seq.desc()).limit(1)


def clock_rows(db, concern_id: str) -> list[dict]:
    """A concern's clock events in chain order, as plain mappings (datetimes as the database returns them)."""
    rows = db.execute(select(_CLOCK).where(_CLOCK.c.concern_id == concern_id).order_by(_CLOCK.c.seq))
    return [dict(r._mapping) for r in rows]


def chain_tip(db, concern_id: str) -> str:
    """The hash the concern's next clock event links to; an unsealed chain (rows from before hashing) is sealed first."""
    tip = db.execute(_TIP, {"cid": concern_id}).first()
    if tip is None:
        return chain.GENESIS
    if tip.row_hash is None:
        seal_concern(db, concern_id)
        tip = db.execute(_TIP, {"cid": concern_id}).first()
    return tip.row_hash


def seal_concern(db, concern_id: str) -> int:
    """Give every unsealed clock event of a concern its hashes, continuing the chain; the number sealed."""
    prev, sealed = chain.GENESIS, 0
    for row in clock_rows(db, concern_id):
        if row["row_hash"] is None:
            digest = chain.row_hash(chain.clock_content(row), prev)
            db.execute(update(_CLOCK).where(_CLOCK.c.id == row["id"]).values(prev_hash=prev, row_hash=digest))
            row["row_hash"], sealed = digest, sealed + 1
        prev = row["row_hash"]
    return sealed


def seal_all(db) -> int:
    """Seal the clock events written before hashing (by the migration, or `ccr audit seal`); how many were sealed."""
    ids = db.execute(select(_CLOCK.c.concern_id).where(_CLOCK.c.row_hash.is_(None)).distinct()).scalars().all()
    return sum(seal_concern(db, cid) for cid in ids)


def clock_name(row: dict) -> str:
    return f"clock event {row['concern_id']} #{row['seq']} ({row['clock']} {row['kind']}, event {row['event_id']})"


def check_clock_chain(db, concern_id: str) -> list[dict]:
    """Every edited, deleted or inserted clock event of one concern's chain, each named."""
    return chain.check_chain(clock_rows(db, concern_id), chain.clock_content, name=clock_name)


def clock_anchors_for(db, since: datetime, until: datetime) -> dict[str, str]:
    """The daily anchors of the clock events' chains for the days from `since` up to `until`."""
    rows = db.execute(select(_CLOCK.c.concern_id, _CLOCK.c.seq, _CLOCK.c.at, _CLOCK.c.row_hash)
                      .where(_CLOCK.c.at >= since, _CLOCK.c.at < until))
    return chain.clock_anchors([dict(r._mapping) for r in rows])


def audit_anchors_for(session: Session, since: datetime, until: datetime) -> dict[str, str]:
    """The daily anchors of the audit log for the days from `since` up to `until`."""
    return chain.audit_anchors(audit_rows(session=session, since=since, until=until))


def store_verification(*, session: Session, actor: str, ok: bool, range_from, range_to, concern_id: str | None,
                       concerns: int, events: int, mismatches: list[dict], anchors: dict, reason: str = "") -> Verification:
    """Keep an evaluation beside the data it checked (the data itself is never changed by a verification)."""
    row = Verification(actor=actor, ok=ok, range_from=range_from, range_to=range_to, concern_id=concern_id,
                       concerns=concerns, events=events, mismatches=mismatches[:1000], anchors=anchors,
                       reason=reason[:1000])
    session.add(row)
    session.flush()
    return row


def last_verification(*, session: Session) -> Verification | None:
    """The newest recorded evaluation, for pages that show when figures were last checked."""
    return session.exec(sa.select(Verification).order_by(Verification.id.desc()).limit(1)).scalars().first()
