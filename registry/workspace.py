"""The agent workspace's own records: who is looking at which concern (sign-in throttles are in `registry.access`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Index, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from registry.models import Concern
from registry.types import UTCDateTime, utcnow

# Queue orders the projection's own indexes do not serve: leads sort every open concern by due time, and
# "newest first" sorts one level's concerns by arrival.
_concern = Concern.__table__.c
Index("ix_concern_status_due", _concern.status, _concern.next_due_at)
Index("ix_concern_queue_created", _concern.status, _concern.level, _concern.created_at)


PRESENCE_KEPT = timedelta(hours=1)


class ConcernPresence(SQLModel, table=True):
    """The last moment a member of staff had a concern open, and the last moment they typed on it."""

    __tablename__ = "concern_presence"

    concern_id: str = Field(primary_key=True, max_length=20)
    user_id: int = Field(primary_key=True)
    user_name: str = Field(default="", max_length=200)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    typing_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


def touch_presence(*, session: Session, concern_id: str, user_id: int, user_name: str, typing: bool = False) -> None:
    """Record that the user has the concern open now (and is typing, if so); forget stale presence."""
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values = {"seen_at": now, "user_name": user_name}
    if typing:
        values["typing_at"] = now
    statement = insert(ConcernPresence.__table__).values(concern_id=concern_id, user_id=user_id, **values)
    session.execute(statement.on_conflict_do_update(index_elements=["concern_id", "user_id"], set_=values))
    session.exec(delete(ConcernPresence).where(col(ConcernPresence.seen_at) < now - PRESENCE_KEPT))


def others_present(*, session: Session, concern_id: str, user_id: int, within: timedelta) -> list[ConcernPresence]:
    """Everyone else who had the concern open within `within`, most recent first."""
    since = utcnow() - within
    return list(session.exec(
        select(ConcernPresence)
        .where(ConcernPresence.concern_id == concern_id, ConcernPresence.user_id != user_id,
               col(ConcernPresence.seen_at) >= since)
        .order_by(col(ConcernPresence.seen_at).desc())
    ))


def leave_presence(*, session: Session, user_id: int) -> None:
    """Forget where a user was looking (they signed out)."""
    session.exec(delete(ConcernPresence).where(ConcernPresence.user_id == user_id))


class AgentNotice(SQLModel, table=True):
    """Something a member of staff should know when they next look at their queue, until they dismiss it.

    Kept in the registry, so every web process shows the same notices (a lead's reassignment tells both
    the agent who held the concern and the one who holds it now)."""

    __tablename__ = "agent_notice"
    __table_args__ = (Index("ix_agent_notice_user", "user_id", "dismissed_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int
    concern_id: str | None = Field(default=None, max_length=20)
    text: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    dismissed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


def add_notice(*, session: Session, user_id: int, text: str, concern_id: str | None = None) -> AgentNotice:
    """Leave a notice for a member of staff."""
    notice = AgentNotice(user_id=user_id, concern_id=concern_id, text=text[:500])
    session.add(notice)
    session.flush()
    return notice


def open_notices(*, session: Session, user_id: int, limit: int = 20) -> list[AgentNotice]:
    """A user's notices not yet dismissed, newest first."""
    return list(session.exec(
        select(AgentNotice).where(AgentNotice.user_id == user_id, col(AgentNotice.dismissed_at).is_(None))
        .order_by(col(AgentNotice.id).desc()).limit(limit)
    ))


def dismiss_notice(*, session: Session, user_id: int, notice_id: int) -> bool:
    """Dismiss one of the user's own notices; False when there is no such notice of theirs."""
    notice = session.get(AgentNotice, notice_id)
    if notice is None or notice.user_id != user_id:
        return False
    if notice.dismissed_at is None:
        notice.dismissed_at = utcnow()
        session.add(notice)
    return True


def tell_assignment(*, session: Session, concern_id: str, subject: str, lead: str, lead_id: int, assignee_id: int,
                    assignee_name: str, previous_id: int | None, previous_name: str | None) -> None:
    """Tell the agent a lead assigned a concern to, and the agent who held it before (if someone else did)."""
    short = subject if len(subject) <= 80 else subject[:79] + "…"
    held = previous_id is not None and previous_id != assignee_id
    if assignee_id != lead_id:
        what = f", which {previous_name} held until now" if held else ""
        add_notice(session=session, user_id=assignee_id, concern_id=concern_id,
                   text=f"{lead} assigned {concern_id} “{short}” to you{what}.")
    if held and previous_id != lead_id:
        add_notice(session=session, user_id=previous_id, concern_id=concern_id,
                   text=f"{lead} reassigned {concern_id} “{short}” from you to {assignee_name}.")
