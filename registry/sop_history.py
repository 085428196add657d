"""What happened to each SOP, and by whom: publishes, retirements, reinstatements and drafts shared for review."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, Session, SQLModel, col, select

from registry import audit
from registry.types import UTCDateTime, utcnow

ACTIONS = ("published", "retired", "reinstated", "draft_shared")


class SopEvent(SQLModel, table=True):
    """One recorded act on a SOP, with who did it, when and why."""

    __tablename__ = "sop_event"
    __table_args__ = (Index("ix_sop_event_sop", "sop_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    sop_id: str = Field(max_length=100)
    action: str = Field(max_length=20)
    version: int | None = None
    draft_id: int | None = None
    actor_email: str = Field(default="", max_length=320)
    note: str = Field(default="", max_length=2000)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SopRetirement(SQLModel, table=True):
    """A SOP that takes no new concerns; the concerns already running on it are not touched."""

    __tablename__ = "sop_retirement"

    sop_id: str = Field(primary_key=True, max_length=100)
    retired_by: str = Field(default="", max_length=320)
    note: str = Field(default="", max_length=2000)
    retired_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def record_event(*, session: Session, sop_id: str, action: str, by: str, note: str = "",
                 version: int | None = None, draft_id: int | None = None) -> SopEvent:
    """Append one act to a SOP's history."""
    if action not in ACTIONS:
        raise ValueError(f"unknown SOP history action {action!r}")
    event = SopEvent(sop_id=sop_id, action=action, actor_email=by, note=note, version=version, draft_id=draft_id)
    session.add(event)
    # The same act in the staff audit log, in the same transaction.
    target = f"sop:{sop_id}" + (f"@{version}" if version is not None else "")
    detail = {"note": note, **({"draft": draft_id} if draft_id is not None else {})}
    audit.record(session=session, actor=by, action=f"sop.{action}", target=target, detail=detail)
    return event


def list_events(*, session: Session, sop_id: str) -> list[SopEvent]:
    """A SOP's history, newest first."""
    return list(session.exec(select(SopEvent).where(SopEvent.sop_id == sop_id)
                             .order_by(col(SopEvent.at).desc(), col(SopEvent.id).desc())))


def retired_ids(*, session: Session) -> set[str]:
    """The SOPs that take no new concerns."""
    return set(session.exec(select(SopRetirement.sop_id)))


def retirement(*, session: Session, sop_id: str) -> SopRetirement | None:
    return session.get(SopRetirement, sop_id)
