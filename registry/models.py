"""The registry's tables: customers, users, SOP versions, the concern projection and the timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.types import JSONType, UTCDateTime, utcnow


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kw)


def _opt_ts(**kw: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, **kw)


class Organisation(SQLModel, table=True):
    """A company whose people are customers."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    tier: str = Field(default="standard", max_length=20)
    created_at: datetime = _ts()


class Customer(SQLModel, table=True):
    """A person who writes in, matched across channels by normalised e-mail and phone."""

    id: int | None = Field(default=None, primary_key=True)
    email: str | None = Field(default=None, unique=True, max_length=320)
    phone: str | None = Field(default=None, unique=True, max_length=32)
    name: str = Field(default="", max_length=200)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    tier: str = Field(default="standard", max_length=20)
    preferences: dict = Field(default_factory=dict, sa_type=JSONType)
    password_hash: str | None = Field(default=None, max_length=300)
    merged_into_id: int | None = Field(default=None, foreign_key="customer.id")
    # Stored in the portal session at sign-in; a new password moves it on, which ends older sessions.
    session_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = _ts()


class User(SQLModel, table=True):
    """A member of staff: agent, process owner, SRE, auditor or admin."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=320)
    name: str = Field(default="", max_length=200)
    password_hash: str = Field(max_length=300)
    role: str = Field(max_length=20)
    level: int | None = Field(default=None)
    skills: list[str] = Field(default_factory=list, sa_type=JSONType)
    active: bool = True
    # Stored in the session at sign-in; moving it on (new password, deactivation) ends older sessions.
    session_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = _ts()


class ApiToken(SQLModel, table=True):
    """A bearer token for integrations, stored only as its SHA-256."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    name: str = Field(default="", max_length=100)
    created_at: datetime = _ts()
    last_used_at: datetime | None = _opt_ts()


class SopVersion(SQLModel, table=True):
    """One published, immutable version of a SOP definition."""

    __table_args__ = (UniqueConstraint("sop_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    sop_id: str = Field(max_length=100, index=True)
    version: int
    title: str = Field(max_length=200)
    content_hash: str = Field(max_length=64)
    definition: dict = Field(sa_type=JSONType)
    published_at: datetime = _ts()
    published_by: str = Field(default="", max_length=320)
    # Why it was published, and the YAML exactly as its author wrote it (comments and order kept).
    note: str = Field(default="", max_length=2000, sa_column_kwargs={"server_default": ""})
    source_yaml: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Concern(SQLModel, table=True):
    """The projection of one concern's workflow, written only by the workflow's activities (and intake)."""

    __table_args__ = (
        Index("ix_concern_queue", "status", "level", "next_due_at"),
        Index("ix_concern_assignee", "assignee_id", "status"),
        Index("ix_concern_customer", "customer_id", "created_at"),
        Index("ix_concern_created", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=20)
    workflow_id: str = Field(unique=True, max_length=100)
    customer_id: int = Field(foreign_key="customer.id")
    subject: str = Field(max_length=300)
    channel: str = Field(max_length=20)
    category: str | None = Field(default=None, max_length=60)
    priority: str = Field(default="normal", max_length=10)
    status: str = Field(default="new", max_length=20)
    step: str | None = Field(default=None, max_length=60)
    step_type: str | None = Field(default=None, max_length=20)
    level: int | None = None
    skills: list[str] = Field(default_factory=list, sa_type=JSONType)
    assignee_id: int | None = Field(default=None)
    assignee_name: str | None = Field(default=None, max_length=200)
    sop_id: str | None = Field(default=None, max_length=100)
    sop_version: int | None = None
    sla_policy: str | None = Field(default=None, max_length=60)
    sla_state: str = Field(default="ok", max_length=12)
    next_due_at: datetime | None = _opt_ts()
    clocks: list[dict] = Field(default_factory=list, sa_type=JSONType)
    csat: int | None = None
    nps: int | None = None
    seq: int = 0
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    resolved_at: datetime | None = _opt_ts()
    closed_at: datetime | None = _opt_ts()


class Interaction(SQLModel, table=True):
    """One entry of the unified customer timeline, on any channel, with or without a concern."""

    __table_args__ = (
        UniqueConstraint("concern_id", "seq"),
        Index("ix_interaction_customer", "customer_id", "created_at"),
        Index("ix_interaction_concern", "concern_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    concern_id: str | None = Field(default=None, foreign_key="concern.id")
    seq: int | None = None
    source_key: str | None = Field(default=None, unique=True, max_length=400)
    kind: str = Field(max_length=30)
    channel: str = Field(max_length=20)
    direction: str = Field(max_length=10)
    author: str = Field(default="", max_length=200)
    author_user_id: int | None = Field(default=None)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    meta: dict = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = _ts()


class ClockEvent(SQLModel, table=True):
    """A start, pause, resume, warning, breach or stop of an SLA clock, traceable to its workflow event."""

    __table_args__ = (UniqueConstraint("concern_id", "seq"), Index("ix_clock_event_at", "at"))

    id: int | None = Field(default=None, primary_key=True)
    concern_id: str = Field(foreign_key="concern.id", index=True)
    seq: int
    clock: str = Field(max_length=40)
    kind: str = Field(max_length=10)
    at: datetime = _ts()
    workflow_id: str = Field(max_length=100)
    run_id: str = Field(max_length=64)
    event_id: int
    elapsed_seconds: int = 0
    target_seconds: int = 0
    due_at: datetime | None = _opt_ts()
    # The concern's chain of clock events (registry/chain.py): this row's hash and its predecessor's.
    prev_hash: str | None = Field(default=None, max_length=64)
    row_hash: str | None = Field(default=None, max_length=64)


class IdempotencyKey(SQLModel, table=True):
    """Maps a client's `Idempotency-Key` (per caller) to the concern it created."""

    key: str = Field(primary_key=True, max_length=400)
    concern_id: str = Field(foreign_key="concern.id")
    created_at: datetime = _ts()


class OutboxMail(SQLModel, table=True):
    """A message to a customer: queued, sent to the relay (or kept locally when embedded), or failed."""

    __table_args__ = (UniqueConstraint("concern_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    concern_id: str | None = Field(default=None, foreign_key="concern.id", index=True)
    seq: int | None = None
    to_address: str = Field(max_length=320)
    subject: str = Field(max_length=400)
    message_id: str = Field(unique=True, max_length=400)
    in_reply_to: str | None = Field(default=None, max_length=400)
    references: list[str] = Field(default_factory=list, sa_type=JSONType)
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    html: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default="queued", max_length=10)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _ts()
    sent_at: datetime | None = _opt_ts()
