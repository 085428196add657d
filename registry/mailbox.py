"""Every inbound mail kept whole, with what intake did with it, so nothing a customer sent is lost."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from registry.attachments import store_file
from registry.types import JSONType, UTCDateTime, utcnow

# received: kept, not yet filed; the rest say where it went.
STATUSES = ("received", "opened", "continued", "ignored", "stored", "duplicate")


class RawMail(SQLModel, table=True):
    """One inbound message exactly as it arrived; the bytes live in `stored_file` under `sha256`."""

    __tablename__ = "raw_mail"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(unique=True, foreign_key="stored_file.sha256", max_length=64)
    message_id: str = Field(index=True, max_length=400)
    from_email: str = Field(default="", max_length=320)
    subject: str = Field(default="", max_length=300)
    size: int = 0
    status: str = Field(default="received", max_length=12, index=True)
    detail: str = Field(default="", max_length=1000)
    problems: list[str] = Field(default_factory=list, sa_type=JSONType)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    concern_id: str | None = Field(default=None, foreign_key="concern.id", index=True, max_length=20)
    interaction_id: int | None = Field(default=None, foreign_key="interaction.id")
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def keep_raw_mail(*, session: Session, raw: bytes, message_id: str, from_email: str, subject: str,
                  problems: list[str]) -> tuple[RawMail, bool]:
    """Keep the message's bytes (once per exact copy) and return its row and whether it is new."""
    digest = hashlib.sha256(raw).hexdigest()
    existing = session.exec(select(RawMail).where(RawMail.sha256 == digest)).first()
    if existing is not None:
        return existing, False
    store_file(session=session, data=raw)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # ON CONFLICT DO NOTHING: the same bytes arriving twice at once (a relay retrying) stay one row.
    inserted = session.execute(insert(RawMail.__table__).values(
        sha256=digest, message_id=message_id[:400], from_email=from_email[:320], subject=subject[:300],
        size=len(raw), status="received", detail="", problems=[p[:500] for p in problems], received_at=utcnow(),
    ).on_conflict_do_nothing().returning(RawMail.__table__.c.id)).first()
    return session.exec(select(RawMail).where(RawMail.sha256 == digest)).one(), inserted is not None


def file_raw_mail(*, session: Session, raw_mail_id: int, status: str, detail: str = "",
                  customer_id: int | None = None, concern_id: str | None = None,
                  interaction_id: int | None = None) -> RawMail:
    """Record what intake did with a kept mail."""
    if status not in STATUSES:
        raise ValueError(f"unknown raw mail status {status!r}")
    row = session.get(RawMail, raw_mail_id)
    row.status, row.detail = status, " ".join(detail.split())[:1000]
    row.customer_id = customer_id if customer_id is not None else row.customer_id
    row.concern_id = concern_id if concern_id is not None else row.concern_id
    row.interaction_id = interaction_id if interaction_id is not None else row.interaction_id
    session.add(row)
    session.flush()
    return row


def settled_elsewhere(*, session: Session, message_id: str) -> RawMail | None:
    """An earlier copy of this Message-ID that intake already ignored or set aside (so a re-delivery is a duplicate)."""
    return session.exec(select(RawMail).where(RawMail.message_id == message_id,
                                              col(RawMail.status).in_(("ignored", "stored")))).first()


def list_raw_mail(*, session: Session, statuses: tuple[str, ...] = (), customer_ids: list[int] | None = None,
                  with_problems: bool = False, limit: int = 100) -> list[RawMail]:
    """Kept mails, newest first, optionally only some statuses, customers, or those with problems."""
    query = select(RawMail)
    if statuses:
        query = query.where(col(RawMail.status).in_(statuses))
    if customer_ids is not None:
        query = query.where(col(RawMail.customer_id).in_(customer_ids))
    rows = list(session.exec(query.order_by(col(RawMail.id).desc()).limit(limit * (4 if with_problems else 1))))
    if with_problems:
        # JSON arrays compare differently on SQLite and PostgreSQL; filtering a bounded page in Python is simpler.
        rows = [r for r in rows if r.problems or r.status in ("stored", "received")]
    return rows[:limit]
