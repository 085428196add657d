"""Who is let in: throttles for credential forms and tokens, and server-side sign-in sessions.

Both live in the registry rather than in a web process's memory, so every web process behind a load
balancer counts the same attempts and honours the same sign-out.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Index, case, delete, literal, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from registry.db import Sessions
from registry.types import UTCDateTime, utcnow


class Throttle(SQLModel, table=True):
    """Attempts counted under one key (a form and an account, an address, or both) since `started_at`."""

    __tablename__ = "throttle"

    key: str = Field(primary_key=True, max_length=500)
    count: int = 0
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


@dataclass(frozen=True)
class Limit:
    """At most `attempts` per `window` for one kind of key; `what` names it in the refusal."""

    name: str
    attempts: int
    window: timedelta
    what: str


@dataclass(frozen=True)
class Refused:
    """A throttle said no: which limit, and in how many seconds it lets the caller try again."""

    limit: Limit
    retry_after: int

    @property
    def minutes(self) -> int:
        return max(1, -(-self.retry_after // 60))

    def message(self, **names: str) -> str:
        """What the caller reads: what was counted and when to try again (`names` fill the limit's `what`)."""
        what = self.limit.what.format(**names)
        return f"Too many {what}. Try again in {self.minutes} minute{'s' if self.minutes != 1 else ''}."


@dataclass(frozen=True)
class Admitted:
    """The attempt was counted; `left` more fit under the tightest of its limits."""

    left: int


# Every limit's window is shorter; older counts are spent and only take room.
STALE = timedelta(days=1)


def _key(limit: Limit, value: str) -> str:
    return f"{limit.name}:{value}"[:500]


def _upsert(session: Session):
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def take(*, sessions: Sessions, limits: list[tuple[Limit, str]]) -> Admitted | Refused:
    """Count one attempt under every (limit, value) at once, or under none of them if any limit is spent.

    All counts are one transaction, taken in key order, so an attempt refused by one limit is not counted
    by the others and two attempts cannot deadlock.
    """
    left = None
    try:
        with sessions.begin() as session:
            for limit, value in sorted(limits, key=lambda lv: _key(*lv)):
                verdict = count(session=session, limit=limit, value=value)
                if isinstance(verdict, Refused):
                    raise _Spent(verdict)
                left = verdict.left if left is None else min(left, verdict.left)
    except _Spent as spent:  # the transaction is rolled back, so no other limit counted this attempt
        return spent.refused
    return Admitted(left=left or 0)


def count(*, session: Session, limit: Limit, value: str) -> Admitted | Refused:
    """Count one attempt under `limit` for `value` if it has room, in the caller's transaction.

    The check and the count are one statement (an upsert that adds one only while the count is under the
    limit, or starts a new window once the old one has passed), so parallel attempts can never pass a limit
    together: the database orders them (PostgreSQL's row lock, SQLite's single writer).
    """
    now = utcnow()
    counted = session.execute(_count_one(session, limit, value, now)).first()
    if counted is not None:
        return Admitted(left=limit.attempts - counted[0])
    started = session.execute(select(Throttle.started_at).where(Throttle.key == _key(limit, value))).scalar_one()
    # From the moment of the answer: a parallel attempt may have started the window after `now` was taken.
    wait = min(started + limit.window - utcnow(), limit.window)
    return Refused(limit=limit, retry_after=_seconds(wait))


def uncount(*, session: Session, limit: Limit, value: str) -> None:
    """Take back one attempt counted under `limit` for `value` (it succeeded, so it does not count)."""
    session.execute(update(Throttle).where(Throttle.key == _key(limit, value), col(Throttle.count) > 0)
                    .values(count=Throttle.count - 1))


class _Spent(Exception):
    def __init__(self, refused: Refused) -> None:
        self.refused = refused


def _seconds(delta: timedelta) -> int:
    return max(1, int(-(-delta.total_seconds() // 1)))


def _count_one(session: Session, limit: Limit, value: str, now: datetime):
    table = Throttle.__table__
    expired = table.c.started_at <= now - limit.window
    statement = _upsert(session)(table).values(key=_key(limit, value), count=1, started_at=now)
    return statement.on_conflict_do_update(
        index_elements=["key"],
        set_={"count": case((expired, 1), else_=table.c.count + 1),
              "started_at": case((expired, literal(now, table.c.started_at.type)), else_=table.c.started_at)},
        where=expired | (table.c.count < limit.attempts),
    ).returning(table.c.count)


def give_back(*, sessions: Sessions, limits: list[tuple[Limit, str]], forget: list[tuple[Limit, str]] = ()) -> None:
    """An attempt that succeeded does not count: take one off each of `limits` and clear `forget` entirely."""
    with sessions.begin() as session:
        for limit, value in sorted(limits, key=lambda lv: _key(*lv)):
            uncount(session=session, limit=limit, value=value)
        keys = [_key(limit, value) for limit, value in forget]
        if keys:
            session.execute(delete(Throttle).where(col(Throttle.key).in_(keys)))
    with sessions.begin() as session:  # apart, so it never holds locks in an order another attempt could cross
        forget_stale(session=session, older_than=STALE)


def forget_stale(*, session: Session, older_than: timedelta) -> None:
    """Drop counts whose window passed long ago, so the table stays small."""
    session.execute(delete(Throttle).where(col(Throttle.started_at) < utcnow() - older_than))


# ---- sign-in sessions -----------------------------------------------------------------------------


class WebSession(SQLModel, table=True):
    """One signed-in browser: the cookie holds only a random id, the registry knows whose it is and since when.

    Signing out deletes the row, so a copied cookie is worth nothing afterwards; `created_at` bounds the
    session's whole life and `seen_at` its idle time.
    """

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_user", "user_id"), Index("ix_web_session_customer", "customer_id"))

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: int | None = Field(default=None)
    customer_id: int | None = Field(default=None)
    epoch: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def _digest(session_id: str) -> str:
    # Only a hash is stored, so whoever reads the registry cannot take over a live session.
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(*, session: Session, user_id: int | None = None, customer_id: int | None = None, epoch: int = 0,
                 lifetime: timedelta) -> str:
    """A new sign-in session for a member of staff or a customer; returns the id for the cookie."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(WebSession).where(col(WebSession.created_at) < now - lifetime))
    session.add(WebSession(id_hash=_digest(session_id), user_id=user_id, customer_id=customer_id, epoch=epoch,
                           created_at=now, seen_at=now))
    session.flush()
    return session_id


def live_session(*, session: Session, session_id: str, lifetime: timedelta, idle: timedelta) -> WebSession | None:
    """The session behind a cookie's id, unless it was signed out, outlived `lifetime` or sat idle past `idle`."""
    row = session.get(WebSession, _digest(session_id))
    now = utcnow()
    if row is None or row.created_at <= now - lifetime or row.seen_at <= now - idle:
        return None
    return row


def touch_session(*, session: Session, session_id: str) -> None:
    """Note that the session was used now (its idle time starts again)."""
    session.execute(update(WebSession).where(WebSession.id_hash == _digest(session_id)).values(seen_at=utcnow()))


def end_session(*, session: Session, session_id: str) -> None:
    """Sign out: the session's id is refused from now on, wherever it was copied to."""
    session.execute(delete(WebSession).where(WebSession.id_hash == _digest(session_id)))
