"""The concern workflow's inputs, messages and state: one pydantic model per call."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from sops.schema import BusinessCalendar, SlaPolicy, SopDefinition

Status = Literal["new", "open", "waiting_customer", "resolved", "closed"]

# Workflow inputs and signals carry ids and at most this much of a customer's text; the registry holds it whole.
EXCERPT_CHARS = 8000


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first `limit` characters of a customer's text, marked when cut, for workflow payloads."""
    return text if len(text) <= limit else text[:limit] + "\n[…]"
ClockName = str  # first_response, next_response, resolution, ola_l1, ola_l2, ola_l3


class CustomerRef(BaseModel):
    """The customer a concern belongs to, as the SOP's decisions need them."""

    id: int
    email: str | None = None
    name: str = ""
    tier: str = "standard"


class OpenConcernInput(BaseModel):
    """Everything a concern needs, including the pinned SOP, policy and calendar, so history alone replays it."""

    concern_id: str
    customer: CustomerRef
    subject: str
    body: str  # an `excerpt` of the first message
    channel: str
    priority: str = "normal"
    category: str | None = None
    category_from_customer: bool = False
    wants_person: bool = False  # the customer's first message asks for a person rather than automation
    opened_at: datetime
    sop: SopDefinition
    policy: SlaPolicy
    calendar: BusinessCalendar
    reopen_window: int = 7 * 24 * 3600
    continue_after_events: int = 8000
    deliver_mail: bool = False
    carried: ConcernCarry | None = None


class Clock(BaseModel):
    """One SLA clock, measured in business seconds of the pinned calendar."""

    name: ClockName
    target: int
    state: Literal["idle", "running", "paused", "stopped"] = "idle"
    elapsed: int = 0
    run_started: datetime | None = None
    due_at: datetime | None = None
    warn_due_at: datetime | None = None
    warned: bool = False
    breached: bool = False


class ClockEventRecord(BaseModel):
    """A clock transition with the workflow event it came from."""

    seq: int
    clock: ClockName
    kind: Literal["start", "pause", "resume", "warn", "breach", "stop"]
    at: datetime
    event_id: int
    elapsed: int
    target: int
    due_at: datetime | None = None


class TimelineEntry(BaseModel):
    """An entry of the concern's timeline, written once per (concern, seq)."""

    seq: int
    kind: str
    direction: Literal["in", "out", "internal"] = "internal"
    channel: str = "system"
    author: str = ""
    author_user_id: int | None = None
    body: str = ""
    meta: dict = Field(default_factory=dict)
    at: datetime
    source_key: str | None = None


class MailRequest(BaseModel):
    """A message the workflow sends to the customer by mail, keyed by its timeline seq."""

    seq: int
    template: str
    context: dict = Field(default_factory=dict)


class ConcernSnapshot(BaseModel):
    """The projection row's fields, as of event `seq`."""

    concern_id: str
    seq: int
    status: Status
    step: str | None
    step_type: str | None
    level: int | None
    skills: list[str]
    assignee_id: int | None
    assignee_name: str | None
    priority: str
    category: str | None
    sop_id: str
    sop_version: int
    sla_policy: str
    sla_state: Literal["ok", "warning", "breached", "paused"]
    next_due_at: datetime | None
    clocks: list[Clock]
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    csat: int | None = None
    nps: int | None = None


class RecordInput(BaseModel):
    """One batch of projection writes: timeline, clock events, outgoing mail and the new snapshot."""

    workflow_id: str
    run_id: str
    customer_id: int
    snapshot: ConcernSnapshot
    timeline: list[TimelineEntry] = Field(default_factory=list)
    clock_events: list[ClockEventRecord] = Field(default_factory=list)
    mails: list[MailRequest] = Field(default_factory=list)


class RecordedEntry(BaseModel):
    """One timeline entry of a `record` batch, as its receipt names it."""

    seq: int
    kind: str
    step: str | None = None
    author: str = ""
    text: str = ""  # the first words of the entry; none of what the customer wrote


class RecordedClockEvent(BaseModel):
    """One clock transition of a `record` batch, as its receipt names it."""

    clock: ClockName
    kind: str


class RecordReceipt(BaseModel):
    """What a `record` batch wrote; it is the local activity's result, so the workflow history tells the story."""

    status: Status
    step: str | None = None
    level: int | None = None
    assignee: str | None = None
    sla_state: str = "ok"
    timeline: list[RecordedEntry] = Field(default_factory=list)
    clock_events: list[RecordedClockEvent] = Field(default_factory=list)
    mails: int = 0


RECEIPT_TEXT_CHARS = 160


def receipt_of(batch: RecordInput) -> RecordReceipt:
    """The receipt of a batch: its entries' kinds, steps, authors and first words, its clock transitions."""
    snap = batch.snapshot
    entries = [RecordedEntry(seq=e.seq, kind=e.kind, step=(e.meta or {}).get("step"), author=e.author,
                             text="" if e.direction == "in" else excerpt(e.body, RECEIPT_TEXT_CHARS))
               for e in batch.timeline]
    return RecordReceipt(status=snap.status, step=snap.step, level=snap.level, assignee=snap.assignee_name,
                         sla_state=snap.sla_state, timeline=entries,
                         clock_events=[RecordedClockEvent(clock=c.clock, kind=c.kind) for c in batch.clock_events],
                         mails=len(batch.mails))


class AgentRef(BaseModel):
    """The agent who acts, as the validator needs them."""

    id: int
    name: str
    level: int = 1
    skills: list[str] = Field(default_factory=list)
    lead: bool = False


ActionType = Literal[
    "claim", "release", "reply", "note", "request_info", "resolve", "escalate", "set_priority", "set_category", "assign",
    "move",
]


class AgentAction(BaseModel):
    """An agent's decision on a concern, sent as the workflow update `act`."""

    type: ActionType
    agent: AgentRef
    text: str = ""
    reason: str = ""
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    category: str | None = None
    assignee: AgentRef | None = None
    worth_article: bool = False
    step: str | None = None  # for `move`: the step of the concern's SOP to move it to


class CustomerMessage(BaseModel):
    """A customer's message on any channel, sent as the signal `customer_message`."""

    interaction_id: int  # the workflow ignores an id it has seen, so a repeated hand-over changes nothing
    text: str = ""  # an `excerpt`
    channel: str = "web"
    intent: Literal["message", "solved", "not_solved", "human"] = "message"
    at: datetime


class UnheardQuery(BaseModel):
    """Which customer messages of a concern, stored since `since`, the workflow has not heard (local activity)."""

    concern_id: str
    since: datetime
    heard: list[int] = Field(default_factory=list)


class SurveyAnswer(BaseModel):
    """A customer's rating, sent as the signal `survey_answer`."""

    csat: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    comment: str = ""


class ConcernState(BaseModel):
    """What the query `state` and every update return: where the concern is and its clocks."""

    concern_id: str
    status: Status
    step: str | None
    step_type: str | None
    level: int | None
    skills: list[str] = Field(default_factory=list)
    assignee_id: int | None = None
    assignee_name: str | None = None
    priority: str
    category: str | None
    sop_id: str
    sop_version: int
    clocks: list[Clock]
    waiting_on_customer: bool = False
    history_length: int = 0


class ConcernCarry(BaseModel):
    """The state a concern carries across continue-as-new."""

    step: str
    step_entered_at: datetime
    step_elapsed: int = 0
    status: Status
    seq: int
    priority: str
    category: str | None
    assignee: AgentRef | None = None
    clocks: list[Clock]
    awaiting_reply: bool = False
    last_human_step: str | None = None
    resolved_at: datetime | None = None
    csat: int | None = None
    nps: int | None = None
    visits: dict[str, int] = Field(default_factory=dict)
    set_by_staff: list[str] = Field(default_factory=list)
    heard: list[int] = Field(default_factory=list)
    migration: MigrationDone | None = None  # set on the run a migration started: what it was, who moved it, why


class MigrateConcern(BaseModel):
    """A process owner's move of a concern to another version of its SOP, sent as the workflow update `migrate`."""

    migration_id: int
    from_version: int
    sop: SopDefinition  # the target version, whole, so the history says exactly what the concern became
    policy: SlaPolicy
    calendar: BusinessCalendar
    mapping: dict[str, str]  # a step of the current version -> a step of the target version
    clocks: Literal["keep", "restart"] = "keep"
    when_unsafe: Literal["wait", "refuse"] = "wait"  # not at a safe point: move at the next one, or refuse now
    by: str
    by_id: int | None = None
    reason: str
    undo_of: int | None = None  # this move reverses migration `undo_of`


class MigrationAnswer(BaseModel):
    """What `migrate` answers: the concern moves now, or waits for its next safe point (and why)."""

    concern_id: str
    outcome: Literal["moving", "waiting"]
    step: str
    target_step: str | None = None
    reason: str = ""


class MigrationDone(BaseModel):
    """A finished move, carried into the run it started."""

    migration_id: int
    from_sop: str
    from_version: int
    to_version: int
    from_step: str
    to_step: str
    clocks: Literal["keep", "restart"]
    afresh: bool  # the target step is entered anew (another type or level) rather than taken over in place
    by: str
    by_id: int | None = None
    reason: str
    undo_of: int | None = None


ConcernCarry.model_rebuild()
OpenConcernInput.model_rebuild()


class DeliverMail(BaseModel):
    """Which queued mail to hand to the relay."""

    concern_id: str
    seq: int
