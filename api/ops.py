"""What needs attention (`GET /api/ops`) and the operator actions that fix it, each with a reason and recorded.

One code path for the page (`web.ops`) and the API: `attention()` builds the view, `retry_mail`,
`restart_concern` and `reset_concern` act."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from api import ops_temporal
from api.deps import Principal, require
from api.throttles import client_address
from registry import ops as store
from registry.handover import add_handover, pending_for
from registry.models import Concern, OutboxMail
from registry.telemetry import OPERATOR_ACTIONS
from registry.types import utcnow
from workflows.client import TemporalUnreachable, make_client

router = APIRouter(prefix="/api/ops", tags=["ops"])

Operator = Annotated[Principal, require("sre", "admin")]
# Several SREs watching /ops refresh it every few seconds: Temporal is asked at most this often per process.
TEMPORAL_CACHE_SECONDS = 3.0


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=1000, description="why: recorded with who and when")


class ResetIn(Reason):
    event_id: int = Field(gt=0, description="a WorkflowTaskCompleted event of the concern's current run")


class ActionDone(BaseModel):
    action: str
    concern_id: str | None
    result: str
    by: str
    at: datetime
    reason: str


class OpsView(BaseModel):
    """What needs attention, by kind, each with counts and the concerns concerned."""

    generated_at: datetime
    counts: dict[str, int]
    unstaffed: list[dict]
    stuck_activities: list[dict]
    failing_actions: list[dict]
    task_failures: list[dict]
    mail: list[dict]
    handovers: list[dict]
    late_timers: list[dict]
    workers: dict
    temporal: dict
    operator_actions: list[dict]


def history_link(concern_id: str, event_id: int | None) -> str:
    """Where the concern's decoded history shows the event."""
    return f"/concerns/{concern_id}/history" + (f"#event-{event_id}" if event_id else "")


def _registry_part(sessions) -> dict:
    now = utcnow()
    with sessions.read() as session:
        handovers = store.pending_handovers(session=session)
        return {
            "unstaffed": [asdict(u) for u in store.unstaffed_concerns(session=session)],
            "failing_actions": [asdict(f) for f in store.failing_actions(session=session)],
            "mail": [asdict(m) for m in store.mail_problems(session=session, now=now)],
            "handovers": [{**asdict(h), "age_seconds": round(h.age(now), 1)} for h in handovers],
            "late_timers": [{**asdict(t), "late_seconds": round(t.late_seconds, 1),
                             "link": history_link(t.concern_id, t.event_id)}
                            for t in store.late_timers(session=session)],
            "automated": [c.workflow_id for c in store.concerns_at_automated_steps(session=session)],
            "operator_actions": [{"concern_id": a.concern_id, "by": a.author, "at": a.created_at,
                                  "action": (a.meta or {}).get("action"), "reason": (a.meta or {}).get("reason")}
                                 for a in store.operator_actions(session=session, limit=20)],
        }


async def _client(app):
    if app.state.client is None:
        try:
            app.state.client = await make_client(app.state.settings)
        except TemporalUnreachable:
            return None
    return app.state.client


async def _temporal_part(app, also: list[str]) -> ops_temporal.TemporalView:
    cached = getattr(app.state, "ops_temporal", None)
    if cached is not None and time.monotonic() - cached[0] < TEMPORAL_CACHE_SECONDS:
        return cached[1]
    client = await _client(app)
    if client is None:
        view = ops_temporal.TemporalView(ok=False, error=f"Temporal is unreachable at {app.state.settings.temporal_address}")
    else:
        view = await ops_temporal.look(client, app.state.settings, also=also)
    app.state.ops_temporal = (time.monotonic(), view)
    return view


async def attention(app) -> OpsView:
    """Everything /ops shows, from the registry and from Temporal."""
    part = await run_in_threadpool(_registry_part, app.state.sessions)
    temporal = await _temporal_part(app, part.pop("automated"))
    activities = [{**asdict(a), "link": history_link(a.concern_id, a.scheduled_event_id)} for a in temporal.activities]
    failures = [{**asdict(f), "link": history_link(f.concern_id, f.event_id)} for f in temporal.task_failures]
    pollers = [asdict(p) for p in temporal.pollers]
    starts = [h for h in part["handovers"] if h["kind"] == "start"]
    counts = {
        "unstaffed": len(part["unstaffed"]), "stuck_activities": len(activities),
        "failing_actions": sum(f["failures"] for f in part["failing_actions"]),
        "task_failures": len(failures), "nondeterminism": sum(1 for f in failures if f["nondeterminism"]),
        "mail_failed": sum(1 for m in part["mail"] if m["status"] == "failed"),
        "mail_waiting": sum(1 for m in part["mail"] if m["status"] == "queued"),
        "without_workflow": len(starts), "messages_undelivered": len(part["handovers"]) - len(starts),
        "late_timers": len(part["late_timers"]),
        "pollers": len({p["identity"] for p in pollers}),
    }
    return OpsView(
        generated_at=utcnow(), counts=counts, stuck_activities=activities, task_failures=failures,
        workers={"pollers": pollers, "backlog": temporal.backlog,
                 "task_queue": app.state.settings.temporal_task_queue},
        temporal={"ok": temporal.ok, "error": temporal.error, "described": temporal.described}, **part)


@router.get("", response_model=OpsView)
async def get_ops(request: Request, _: Operator) -> OpsView:
    """What needs attention: unstaffed steps, failing automation or mail, concerns without a workflow, workers, late timers."""
    return await attention(request.app)


# ---- operator actions ---------------------------------------------------------------------------


def _record(sessions, principal: Principal, action: str, concern_id: str | None, reason: str, detail: dict,
            ip: str | None) -> store.OperatorAction:
    OPERATOR_ACTIONS.labels(action).inc()
    with sessions.begin() as session:
        return store.record_operator_action(session=session, actor_id=principal.id,
                                            actor=principal.name or principal.email or f"user {principal.id}",
                                            action=action, concern_id=concern_id, reason=reason, detail=detail, ip=ip)


def _done(entry: store.OperatorAction, result: str) -> ActionDone:
    return ActionDone(action=entry.action, concern_id=entry.concern_id, result=result, by=entry.actor, at=entry.at,
                      reason=entry.reason)


def _reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise HTTPException(422, "say why: a reason is required for every operator action")
    return reason


async def retry_mail(request: Request, principal: Principal, outbox_id: int, reason: str) -> ActionDone:
    """Hand a failed or waiting mail to the relay again now; the outcome is on the outbox row."""
    from activities.mail_out import Mailer, mark_failed, mark_sent, message_from_outbox

    reason = _reason(reason)
    sessions, settings = request.app.state.sessions, request.app.state.settings

    def load():
        with sessions.read() as session:
            row = session.get(OutboxMail, outbox_id)
            if row is None:
                raise HTTPException(404, f"there is no outgoing mail {outbox_id}")
            if row.status in ("sent", "local"):
                raise HTTPException(409, f"mail {outbox_id} was already delivered ({row.status})")
            return row.concern_id, message_from_outbox(row, from_address=settings.support_address)

    concern_id, message = await run_in_threadpool(load)
    try:
        relayed = await Mailer(settings).send(message)
        error = None
    except Exception as err:  # noqa: BLE001 - the relay's refusal is the outcome to show
        relayed, error = False, " ".join(str(err).split()) or type(err).__name__

    def finish() -> ActionDone:
        with sessions.begin() as session:
            if error is None:
                row = mark_sent(session=session, outbox_id=outbox_id, relayed=relayed)
            else:
                row = mark_failed(session=session, outbox_id=outbox_id, error=error)
        result = f"the relay refused it again: {error}" if error else f"delivered ({row.status})"
        entry = _record(sessions, principal, "retry_mail", concern_id, reason,
                        {"outbox_id": outbox_id, "result": result}, client_address(request))
        return _done(entry, result)

    return await run_in_threadpool(finish)


async def restart_concern(request: Request, principal: Principal, concern_id: str, reason: str) -> ActionDone:
    """Hand a concern's pending start (and messages) to Temporal now; a registered concern without one gets one."""
    from api.app import handover_of

    reason = _reason(reason)
    sessions = request.app.state.sessions

    def prepare() -> None:
        with sessions.begin() as session:
            concern = session.get(Concern, concern_id)
            if concern is None:
                raise HTTPException(404, f"there is no concern {concern_id}")
            pending = pending_for(session=session, concern_id=concern_id)
            if not pending and concern.status != "new":
                raise HTTPException(409, f"{concern_id}'s workflow is running and has heard everything; "
                                         "nothing to hand over")
            if concern.status == "new" and not any(p.kind == "start" for p in pending):
                add_handover(session=session, concern_id=concern_id, kind="start")

    await run_in_threadpool(prepare)
    handover = await handover_of(request.app)
    if handover is None:
        raise HTTPException(503, "Temporal is unreachable; the start stays pending and is handed over when it answers")
    delivered = await handover.hand_over(concern_id)
    result = "handed over" if delivered else "Temporal did not take it; it stays pending"
    entry = await run_in_threadpool(_record, sessions, principal, "restart_concern", concern_id, reason,
                                    {"result": result}, client_address(request))
    if not delivered:
        raise HTTPException(503, f"{result} (recorded)")
    return _done(entry, result)


async def reset_concern(request: Request, principal: Principal, concern_id: str, event_id: int,
                        reason: str) -> ActionDone:
    """Reset the concern's workflow to a WorkflowTaskCompleted event of its current run."""
    reason = _reason(reason)
    sessions, settings = request.app.state.sessions, request.app.state.settings

    def workflow_id() -> str:
        with sessions.read() as session:
            concern = session.get(Concern, concern_id)
            if concern is None:
                raise HTTPException(404, f"there is no concern {concern_id}")
            return concern.workflow_id

    wid = await run_in_threadpool(workflow_id)
    client = await _client(request.app)
    if client is None:
        raise HTTPException(503, "Temporal is unreachable; try the reset again when it answers")
    who = principal.name or principal.email or f"user {principal.id}"
    try:
        run_id = await ops_temporal.reset_workflow(client, settings, workflow_id=wid, event_id=event_id,
                                                   reason=f"{who}: {reason}", identity=f"ccr-ops:{who}")
    except ops_temporal.ResetRefused as err:
        raise HTTPException(422, str(err)) from err
    except RPCError as err:
        raise HTTPException(409, f"Temporal refused the reset: {err.message}") from err
    result = f"reset to event {event_id}; new run {run_id}"
    entry = await run_in_threadpool(_record, sessions, principal, "reset_workflow", concern_id, reason,
                                    {"event_id": event_id, "run_id": run_id}, client_address(request))
    request.app.state.ops_temporal = None
    return _done(entry, result)


@router.post("/mail/{outbox_id}/retry", response_model=ActionDone)
async def api_retry_mail(request: Request, outbox_id: int, body: Reason, principal: Operator) -> ActionDone:
    """Send a failed or waiting mail to the relay again now (recorded with the reason)."""
    return await retry_mail(request, principal, outbox_id, body.reason)


@router.post("/concerns/{concern_id}/restart", response_model=ActionDone)
async def api_restart(request: Request, concern_id: str, body: Reason, principal: Operator) -> ActionDone:
    """Hand a concern without a workflow (or with undelivered messages) to Temporal now (recorded)."""
    return await restart_concern(request, principal, concern_id, body.reason)


@router.post("/concerns/{concern_id}/reset", response_model=ActionDone)
async def api_reset(request: Request, concern_id: str, body: ResetIn, principal: Operator) -> ActionDone:
    """Reset a concern's workflow to a WorkflowTaskCompleted event (recorded with the reason)."""
    return await reset_concern(request, principal, concern_id, body.event_id, body.reason)
