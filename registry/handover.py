"""The intake outbox: what the registry stored that Temporal must still hear of, handed over in order.

Intake writes a hand-over in the same transaction as the concern or message it belongs to, so a
workflow to start or a message to signal is never lost between the registry and Temporal: if the
hand-over fails (Temporal down, the process killed), a later try in any process finishes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Index, update
from sqlmodel import Field, Session, SQLModel, col, func, select

from registry.types import UTCDateTime, utcnow

KINDS = ("start", "message", "rating")  # a rating is the concern's one `Rating` row


class Handover(SQLModel, table=True):
    """A workflow start, a customer message or a rating that Temporal has not acknowledged yet (or did, at `delivered_at`)."""

    __table_args__ = (Index("ix_handover_pending", "delivered_at", "concern_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    concern_id: str = Field(foreign_key="concern.id", max_length=20)
    kind: str = Field(max_length=10)
    interaction_id: int | None = Field(default=None, foreign_key="interaction.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    last_tried_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=200)


def add_handover(*, session: Session, concern_id: str, kind: str, interaction_id: int | None = None) -> Handover:
    """Record that Temporal must hear of this; call it in the transaction that stores the concern or message."""
    if kind not in KINDS:
        raise ValueError(f"unknown hand-over kind {kind!r}")
    row = Handover(concern_id=concern_id, kind=kind, interaction_id=interaction_id)
    session.add(row)
    session.flush()
    return row


def pending_for(*, session: Session, concern_id: str) -> list[Handover]:
    """The concern's hand-overs Temporal has not acknowledged, oldest first (the order they must arrive in)."""
    return list(session.exec(select(Handover).where(Handover.concern_id == concern_id,
                                                    col(Handover.delivered_at).is_(None)).order_by(Handover.id)))


def concerns_pending(*, session: Session, settled_before: datetime | None = None, limit: int = 200) -> list[str]:
    """Concerns with pending hand-overs, oldest first; `settled_before` skips ones a request may be handing over now."""
    query = select(Handover.concern_id, func.min(Handover.id)).where(col(Handover.delivered_at).is_(None))
    if settled_before is not None:
        query = query.where(func.coalesce(Handover.last_tried_at, Handover.created_at) < settled_before)
    rows = session.exec(query.group_by(Handover.concern_id).order_by(func.min(Handover.id)).limit(limit)).all()
    return [concern_id for concern_id, _ in rows]


def mark_delivered(*, session: Session, handover_id: int, outcome: str) -> None:
    """Temporal took it (or already had it); a concurrent delivery of the same row changes nothing."""
    now = utcnow()
    session.exec(update(Handover).where(col(Handover.id) == handover_id, col(Handover.delivered_at).is_(None))
                 .values(delivered_at=now, last_tried_at=now, outcome=outcome[:200],
                         attempts=Handover.attempts + 1))


def mark_failed(*, session: Session, handover_id: int, error: str) -> None:
    """A try that Temporal did not take; the row stays pending for the next one."""
    session.exec(update(Handover).where(col(Handover.id) == handover_id, col(Handover.delivered_at).is_(None))
                 .values(last_error=error[:1000], last_tried_at=utcnow(), attempts=Handover.attempts + 1))


def pending_summary(*, session: Session) -> tuple[int, datetime | None, str | None]:
    """How many hand-overs wait, since when, and the last error a try met."""
    count, oldest = session.exec(select(func.count(), func.min(Handover.created_at))
                                 .where(col(Handover.delivered_at).is_(None))).one()
    error = session.exec(select(Handover.last_error).where(col(Handover.delivered_at).is_(None),
                                                          col(Handover.last_error).is_not(None))
                         .order_by(col(Handover.last_tried_at).desc()).limit(1)).first()
    return count, oldest, error


def is_pending(*, session: Session, concern_id: str) -> bool:
    """Whether Temporal has yet to hear of something this concern's customer sent (or of the concern itself)."""
    return session.exec(select(Handover.id).where(Handover.concern_id == concern_id,
                                                  col(Handover.delivered_at).is_(None)).limit(1)).first() is not None


def settled_since(seconds: float) -> datetime:
    """The instant `seconds` ago, for `concerns_pending(settled_before=...)`."""
    return utcnow() - timedelta(seconds=seconds)
