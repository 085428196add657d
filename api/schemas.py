"""Request and response bodies of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from workflows.payloads import ActionType

Priority = Literal["low", "normal", "high", "urgent"]
ChannelName = Literal["web", "email", "api", "phone", "walk_in"]


class CustomerIn(BaseModel):
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    name: str = Field(default="", max_length=200)


class ConcernCreate(BaseModel):
    """A new concern from any channel."""

    model_config = ConfigDict(extra="forbid")

    customer: CustomerIn
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=100_000)
    channel: ChannelName = "api"
    priority: Priority | None = None
    category: str | None = Field(default=None, max_length=60)


class SopRef(BaseModel):
    id: str
    version: int


class ConcernCreated(BaseModel):
    id: str
    workflow_id: str
    sop: SopRef
    status: str
    workflow: Literal["running", "pending"] = Field(
        "running", description="`pending` while Temporal is unreachable: the concern is stored and its workflow "
                               "starts by itself as soon as Temporal answers")


class ClockPublic(BaseModel):
    name: str
    state: str
    target: int
    elapsed: int
    due_at: datetime | None = None
    warned: bool = False
    breached: bool = False


class TimelineItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    channel: str
    direction: str
    author: str
    body: str
    meta: dict
    created_at: datetime


class ClockEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    clock: str
    kind: str
    at: datetime
    workflow_id: str
    run_id: str
    event_id: int
    elapsed_seconds: int
    target_seconds: int
    due_at: datetime | None


class ConcernSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    workflow_id: str
    customer_id: int
    subject: str
    channel: str
    category: str | None
    priority: str
    status: str
    step: str | None
    level: int | None
    assignee_id: int | None
    assignee_name: str | None
    sla_state: str
    next_due_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ConcernPublic(ConcernSummary):
    sop: SopRef | None
    step_type: str | None
    skills: list[str]
    sla_policy: str | None
    clocks: list[ClockPublic]
    resolved_at: datetime | None
    closed_at: datetime | None
    csat: int | None
    nps: int | None
    timeline: list[TimelineItem]
    clock_events: list[ClockEventPublic]


class ConcernPage(BaseModel):
    items: list[ConcernSummary]
    next_cursor: str | None


class ActionIn(BaseModel):
    """An agent's action; `text` for reply, note, request_info and resolve, `reason` for escalate and move."""

    model_config = ConfigDict(extra="forbid")

    type: ActionType
    text: str = Field(default="", max_length=100_000)
    reason: str = Field(default="", max_length=2000)
    priority: Priority | None = None
    category: str | None = Field(default=None, max_length=60)
    assignee_id: int | None = None
    worth_article: bool = False
    step: str | None = Field(default=None, max_length=100, description="for `move` (leads): the step to move to")


class MessageIn(BaseModel):
    """A customer's message on an existing concern."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=100_000)
    channel: ChannelName = "api"
    intent: Literal["message", "solved", "not_solved", "human"] = "message"


class MessageAccepted(BaseModel):
    interaction_id: int
    concern_id: str
    reopened: bool
    delivered: bool = Field(True, description="false while Temporal is unreachable: the message is stored and "
                                             "reaches the concern's workflow by itself as soon as Temporal answers")


class HistoryEventPublic(BaseModel):
    """One workflow history event with its payloads decoded."""

    id: int
    type: str
    time: str | None = None
    summary: object | None = None
    attributes: dict


class HistoryGroupPublic(BaseModel):
    """Related events as one row, told in SOP terms (`kind`: steps, updates, signals, timers, activities, workflow)."""

    run: int
    run_id: str
    id: int
    kind: str
    title: str
    status: str
    failed: bool
    at: str | None
    lines: list[str]
    label: str = ""
    events: list[HistoryEventPublic]


class HistoryRunPublic(BaseModel):
    """One run of the concern's workflow (continue-as-new starts another)."""

    run_id: str
    ordinal: int
    status: str
    events: int
    temporal_ui: str


class HistoryPublic(BaseModel):
    """A concern's workflow history, every run stitched, decoded and grouped."""

    concern_id: str
    workflow_id: str
    runs: list[HistoryRunPublic]
    groups: list[HistoryGroupPublic]


class RawRunPublic(BaseModel):
    """One run's events as Temporal stores them (`temporal workflow show --output json` for that run)."""

    run_id: str
    ordinal: int
    events: list[dict]


class RawHistoryPublic(BaseModel):
    """A concern's workflow history as Temporal stores it, every run."""

    concern_id: str
    workflow_id: str
    runs: list[RawRunPublic]
