"""Intake records and reads of the concern projection and timeline."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from registry.concern_search import index_concern
from registry.models import ClockEvent, Concern, Customer, IdempotencyKey, Interaction

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U to misread


def new_concern_id() -> str:
    """A short, unguessable concern id such as `CCR-7K3M9Q2X`."""
    return "CCR-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))


def find_by_idempotency_key(*, session: Session, key: str) -> Concern | None:
    """The concern an earlier request with this key created."""
    row = session.get(IdempotencyKey, key)
    return session.get(Concern, row.concern_id) if row else None


def register_concern(
    *,
    session: Session,
    customer: Customer,
    subject: str,
    body: str,
    channel: str,
    priority: str,
    category: str | None,
    workflow_id_prefix: str,
    idempotency_key: str | None = None,
    source_key: str | None = None,
    author: str = "",
    meta: dict | None = None,
) -> Concern:
    """Record a new concern and the customer's first message before its workflow starts, so nothing is lost."""
    concern_id = new_concern_id()
    concern = Concern(
        id=concern_id, workflow_id=f"{workflow_id_prefix}{concern_id}", customer_id=customer.id,
        subject=subject, channel=channel, priority=priority, category=category, status="new",
    )
    session.add(concern)
    session.flush()
    session.add(Interaction(
        customer_id=customer.id, concern_id=concern_id, kind="customer_message", channel=channel, direction="in",
        author=author or customer.name or customer.email or "customer", body=body, source_key=source_key,
        meta={"subject": subject, **(meta or {})},
    ))
    if idempotency_key:
        session.add(IdempotencyKey(key=idempotency_key, concern_id=concern_id))
    index_concern(session=session, concern=concern, body=body)
    session.flush()
    return concern


def add_customer_message(
    *, session: Session, concern: Concern, body: str, channel: str, author: str, source_key: str | None = None,
    meta: dict | None = None, kind: str = "customer_message",
) -> Interaction:
    """Store a customer's message on a concern's timeline before the workflow hears of it."""
    row = Interaction(
        customer_id=concern.customer_id, concern_id=concern.id, kind=kind, channel=channel, direction="in",
        author=author, body=body, source_key=source_key, meta=meta or {},
    )
    session.add(row)
    session.flush()
    return row


def timeline(*, session: Session, concern_id: str) -> list[Interaction]:
    """The concern's timeline, oldest first."""
    return list(session.exec(
        select(Interaction).where(Interaction.concern_id == concern_id).order_by(Interaction.created_at, Interaction.id)
    ))


def clock_events(*, session: Session, concern_id: str) -> list[ClockEvent]:
    """Every SLA clock transition of the concern, in order."""
    return list(session.exec(select(ClockEvent).where(ClockEvent.concern_id == concern_id).order_by(ClockEvent.seq)))


def list_concerns(
    *,
    session: Session,
    status: str | None = None,
    level: int | None = None,
    assignee_id: int | None = None,
    customer_id: int | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[Concern]:
    """A page of the projection, newest first, continuing after the (created_at, id) cursor."""
    query = select(Concern)
    if status:
        query = query.where(Concern.status == status)
    if level is not None:
        query = query.where(Concern.level == level)
    if assignee_id is not None:
        query = query.where(Concern.assignee_id == assignee_id)
    if customer_id is not None:
        query = query.where(Concern.customer_id == customer_id)
    if after is not None:
        created, cid = after
        query = query.where(or_(col(Concern.created_at) < created,
                                and_(col(Concern.created_at) == created, col(Concern.id) < cid)))
    query = query.order_by(col(Concern.created_at).desc(), col(Concern.id).desc()).limit(limit)
    return list(session.exec(query))
