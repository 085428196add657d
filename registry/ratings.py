"""Customers' ratings of the service: one per concern, kept before the workflow hears of it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from registry.types import UTCDateTime, utcnow


class Rating(SQLModel, table=True):
    """A concern's rating: CSAT 1-5, NPS 0-10 and a comment; the primary key makes it one per concern."""

    concern_id: str = Field(primary_key=True, foreign_key="concern.id", max_length=20)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    csat: int
    nps: int | None = None
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AlreadyRated(ValueError):
    """The concern has its rating already."""


def record_rating(*, session: Session, concern_id: str, customer_id: int, csat: int, nps: int | None,
                  comment: str) -> Rating:
    """Keep the rating, or raise `AlreadyRated` when the concern has one (even one written a moment ago)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # RETURNING rather than rowcount: PostgreSQL drivers report -1 rows for ON CONFLICT statements run this way.
    inserted = session.execute(insert(Rating.__table__).values(
        concern_id=concern_id, customer_id=customer_id, csat=csat, nps=nps, comment=comment, created_at=utcnow(),
    ).on_conflict_do_nothing().returning(Rating.__table__.c.concern_id)).first()
    if inserted is None:
        raise AlreadyRated(f"concern {concern_id} has been rated already; thank you")
    return session.get(Rating, concern_id)


def rating_of(*, session: Session, concern_id: str) -> Rating | None:
    """The concern's rating, if given."""
    return session.get(Rating, concern_id)
