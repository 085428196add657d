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
