"""JSON routes for concerns: open, read, act as an agent, write as a customer (the history: api.concern_history)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from sqlmodel import Session
from temporalio.client import WorkflowUpdateFailedError
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError, RPCStatusCode

from api.deps import ClientDep, DbSession, IntakeDep, Principal, require
from api.intake import IntakeError
from api.metrics import Metrics, metrics_of
from api.schemas import (
    ActionIn,
    ConcernCreate,
    ConcernCreated,
    ConcernPage,
    ConcernPublic,
    ConcernSummary,
    MessageAccepted,
    MessageIn,
    SopRef,
    TimelineItem,
)
from registry import audit
from registry import concerns as store
from registry.db import Sessions
from registry.models import Concern, Customer, User
from workflows.concern import ConcernWorkflow
from workflows.payloads import AgentAction

router = APIRouter(prefix="/api/concerns", tags=["concerns"])

STAFF = ("agent", "lead", "admin", "process_owner", "sre", "auditor", "integration")
# Who may write as a customer: the customer, and staff who work with customers (or an integration that
# relays them); process owners, SREs and auditors read only.
ON_BEHALF = ("agent", "lead", "admin", "integration")
Staff = Annotated[Principal, require(*STAFF)]
StaffOrCustomer = Annotated[Principal, require(*STAFF, "customer")]
CustomerOrOnBehalf = Annotated[Principal, require(*ON_BEHALF, "customer")]
Agent = Annotated[Principal, require("agent", "lead", "admin")]
Sre = Annotated[Principal, require("sre", "admin", "auditor")]


def posted_by(principal: Principal) -> dict | None:
    """What a customer's words written by staff or an integration record about who wrote them."""
    if principal.kind == "customer":
        return None
    return {"posted_by": principal.name, "posted_by_id": principal.id, "posted_by_role": principal.role}


def _intake_error(err: IntakeError) -> HTTPException:
    return HTTPException(err.status, err.detail)


def visible_concern(session: Session, concern_id: str, principal: Principal) -> Concern:
    """The concern, if the caller may see it; 404 otherwise (so ids of others' concerns are not confirmed)."""
    concern = session.get(Concern, concern_id)
    if concern is None or (principal.kind == "customer" and concern.customer_id != principal.id):
        raise HTTPException(404, f"no concern {concern_id}")
    return concern


def concern_public(session: Session, concern: Concern, *, internal: bool = True) -> ConcernPublic:
    """The concern with its clocks, timeline (internal notes only for staff) and clock events."""
    items = [i for i in store.timeline(session=session, concern_id=concern.id) if internal or i.direction != "internal"]
    if not internal:
        # A customer reads what the desk sent them, not the staff's note that it was sent.
        items = [TimelineItem.model_validate(i).model_copy(update={"body": i.meta["portal_text"]})
                 if i.direction == "out" and "portal_text" in (i.meta or {}) else i for i in items]
    return ConcernPublic.model_validate({
        **concern.model_dump(),
        "sop": SopRef(id=concern.sop_id, version=concern.sop_version) if concern.sop_id else None,
        "timeline": items, "clock_events": store.clock_events(session=session, concern_id=concern.id),
    })


@router.post("", status_code=201, response_model=ConcernCreated, responses={
    202: {"model": ConcernCreated, "description": "stored; its workflow starts as soon as Temporal answers"},
    503: {"description": "nothing was stored (the registry is unreachable, or no SOP is published)"}})
async def open_concern(
    request: Request, body: ConcernCreate, intake: IntakeDep, principal: CustomerOrOnBehalf, response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ConcernCreated:
    """Open a concern; the same `Idempotency-Key` always answers with the same concern (202 while Temporal is down)."""
    email, phone, name = body.customer.email, body.customer.phone, body.customer.name
    if principal.kind == "customer":
        email, phone, name = principal.email, None, principal.name
    key = f"{principal.kind}:{principal.id}:{idempotency_key}" if idempotency_key else None
    try:
        concern = await intake.open(email=email, phone=phone, name=name, subject=body.subject, body=body.body,
                                    channel=body.channel, priority=body.priority, category=body.category,
                                    idempotency_key=key, meta=posted_by(principal))
    except IntakeError as err:
        raise _intake_error(err) from err
    except SQLAlchemyError as err:
        raise HTTPException(503, "the registry is unreachable, so nothing was stored; " + (
            "send the same request again with the same Idempotency-Key" if idempotency_key else
            "send it again in a moment, with an Idempotency-Key header so that a retry never opens a second concern"
        )) from err
    pending = await run_in_threadpool(intake.is_pending, concern.id)
    if pending:
        response.status_code = 202
    response.headers["Location"] = f"/api/concerns/{concern.id}"
    return ConcernCreated(id=concern.id, workflow_id=concern.workflow_id,
                          sop=SopRef(id=concern.sop_id, version=concern.sop_version), status=concern.status,
                          workflow="pending" if pending else "running")


def _cursor(concern: Concern) -> str:
    return base64.urlsafe_b64encode(f"{concern.created_at.isoformat()}|{concern.id}".encode()).decode()


@router.get("", response_model=ConcernPage)
def list_concerns(
    session: DbSession, principal: StaffOrCustomer, status: str | None = None, level: int | None = None,
    assignee: int | None = None, customer: int | None = None, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ConcernPage:
    """A page of concerns, newest first; customers see only their own."""
    if principal.kind == "customer":
        customer = principal.id
    after = None
    if cursor:
        try:
            created, cid = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
            after = (datetime.fromisoformat(created), cid)
        except Exception as err:
            raise HTTPException(422, "the cursor is not one this API gave out") from err
    rows = store.list_concerns(session=session, status=status, level=level, assignee_id=assignee,
                               customer_id=customer, after=after, limit=limit + 1)
    page = rows[:limit]
    return ConcernPage(items=[ConcernSummary.model_validate(r) for r in page],
                       next_cursor=_cursor(page[-1]) if len(rows) > limit else None)


@router.get("/{concern_id}", response_model=ConcernPublic)
def get_concern(concern_id: str, session: DbSession, principal: StaffOrCustomer) -> ConcernPublic:
    """A concern's state, step, level, assignee, SLA clocks and timeline."""
    concern = visible_concern(session, concern_id, principal)
    return concern_public(session, concern, internal=principal.kind == "user")


@router.post("/{concern_id}/actions", response_model=ConcernPublic,
             responses={409: {"description": "not allowed now; `detail` says why"}})
async def act(
    request: Request, concern_id: str, body: ActionIn, session: DbSession, client: ClientDep, agent: Agent,
) -> ConcernPublic:
    """Perform an agent action as a workflow update (409 with the reason when the workflow rejects it)."""
    concern = visible_concern(session, concern_id, agent)
    assignee = None
    if body.assignee_id is not None:
        user = session.get(User, body.assignee_id)
        if user is None or user.role not in ("agent", "lead", "admin"):
            raise HTTPException(422, f"no agent with id {body.assignee_id}")
        assignee = Principal.of_user(user).agent_ref()
    action = AgentAction(type=body.type, agent=agent.agent_ref(), text=body.text, reason=body.reason,
                         priority=body.priority, category=body.category, assignee=assignee,
                         worth_article=body.worth_article, step=body.step)
    ensure_started(concern)
    await perform(client, concern.workflow_id, action, metrics=metrics_of(request))
    await run_in_threadpool(audit_override, request.app.state.sessions, agent, concern, action)
    session.expire_all()
    return concern_public(session, session.get(Concern, concern_id))


UNREACHABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


def ensure_started(concern: Concern) -> None:
    """Refuse an action on a concern whose workflow Temporal has not started yet (it was down at intake)."""
    if concern.status == "new":
        raise HTTPException(503, f"the workflow of {concern.id} has not started yet: Temporal was unreachable when it "
                                 "came in, and it starts by itself once Temporal answers; try again in a moment",
                            headers={"Retry-After": "5"})


async def perform(client, workflow_id: str, action: AgentAction, *, metrics: Metrics | None = None):
    """Send an action to the workflow; a rejection becomes a 409 with the validator's reason.

    Every page and the API act through here, so `metrics` counts each action once, wherever it was taken."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        result = await handle.execute_update(ConcernWorkflow.act, action)
    except WorkflowUpdateFailedError as err:
        if metrics is not None:
            metrics.count_action(action.type, accepted=False)
        cause = err.cause
        raise HTTPException(409, getattr(cause, "message", None) or str(cause or err)) from err
    except RPCError as err:
        if err.status in UNREACHABLE:
            raise HTTPException(503, "Temporal is unreachable, so the action was not taken; try again in a moment",
                                headers={"Retry-After": "5"}) from err
        raise HTTPException(409, f"the concern's workflow is not running: {err.message}") from err
    if metrics is not None:
        metrics.count_action(action.type, accepted=True)
    return result


# A lead's reassignment and step override go to the staff audit log, besides the concern's timeline.
OVERRIDES = {"assign": "concern.assigned", "move": "concern.moved"}


def audit_override(sessions: Sessions, principal: Principal, concern: Concern, action: AgentAction) -> None:
    """Record an accepted reassignment or move (the workflow's own records are written by its activities)."""
    if action.type not in OVERRIDES:
        return
    if action.type == "assign":
        detail = {"from": concern.assignee_name, "to": action.assignee.name if action.assignee else None,
                  "to_id": action.assignee.id if action.assignee else None}
    else:
        detail = {"from": concern.step, "to": action.step, "reason": action.reason}
    with sessions.begin() as session:
        audit.record(session=session, actor=principal.email or f"user:{principal.id}", action=OVERRIDES[action.type],
                     target=f"concern:{concern.id}", detail=detail)


@router.post("/{concern_id}/messages", status_code=202, response_model=MessageAccepted)
async def post_message(
    concern_id: str, body: MessageIn, session: DbSession, intake: IntakeDep, principal: CustomerOrOnBehalf,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> MessageAccepted:
    """Add a customer's message (portal, e-mail and integrations use this path); it may reopen the concern."""
    concern = visible_concern(session, concern_id, principal)
    customer = session.get(Customer, concern.customer_id)
    session.commit()
    key = f"api:{principal.kind}:{principal.id}:{idempotency_key}" if idempotency_key else None
    try:
        row, reopened = await intake.message(concern_id=concern.id, text=body.text, channel=body.channel,
                                             author=customer.name or customer.email or "customer",
                                             intent=body.intent, source_key=key, meta=posted_by(principal))
    except IntakeError as err:
        raise _intake_error(err) from err
    delivered = not await run_in_threadpool(intake.is_pending, concern.id)
    return MessageAccepted(interaction_id=row.id, concern_id=concern.id, reopened=reopened, delivered=delivered)
