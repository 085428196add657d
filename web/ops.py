"""`/ops`: what needs an SRE's attention, refreshed live, with the operator actions that fix it (each with a reason)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from api import ops as api_ops
from web.csrf import verify_csrf
from web.templating import is_htmx, render, templates

router = APIRouter(include_in_schema=False)

# Leads see the concern-level part (what is stuck and why); SREs and admins also see workers and act.
OPERATORS = ("sre", "admin")


def ago(moment: datetime | None, now: datetime) -> str:
    """How long ago, in the largest unit that fits."""
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


templates.env.filters["ops_ago"] = ago


@router.get("/ops")
async def ops_page(request: Request):
    """What needs attention; htmx asks for the fragment every few seconds."""
    view = await api_ops.attention(request.app)
    principal = request.state.principal
    ctx = {"view": view, "operator": principal.role in OPERATORS, "now": view.generated_at,
           "notice": request.session.pop("ops_flash", None) if not is_htmx(request) else None}
    if is_htmx(request):
        return render(request, "ops/_attention.html", ctx)
    return render(request, "ops/ops.html", ctx)


def _back(request: Request, message: str, target: str = "/ops") -> RedirectResponse:
    request.session["ops_flash"] = message
    return RedirectResponse(target, 303)


def _refused(err: HTTPException) -> str:
    return f"Not done: {err.detail}"


@router.post("/ops/mail/{outbox_id}/retry", dependencies=[Depends(verify_csrf)])
async def retry_mail(request: Request, outbox_id: int, reason: str = Form("")):
    """Send a mail again now, with a reason."""
    try:
        done = await api_ops.retry_mail(request, request.state.principal, outbox_id, reason)
    except HTTPException as err:
        return _back(request, _refused(err))
    return _back(request, f"Mail {outbox_id} of {done.concern_id}: {done.result}. Recorded with your reason.")


@router.post("/ops/concerns/{concern_id}/restart", dependencies=[Depends(verify_csrf)])
async def restart(request: Request, concern_id: str, reason: str = Form("")):
    """Hand a concern's pending start to Temporal now, with a reason."""
    try:
        done = await api_ops.restart_concern(request, request.state.principal, concern_id, reason)
    except HTTPException as err:
        return _back(request, _refused(err))
    return _back(request, f"{concern_id}: {done.result}. Recorded with your reason.")


@router.post("/ops/concerns/{concern_id}/reset", dependencies=[Depends(verify_csrf)])
async def reset(request: Request, concern_id: str, event_id: str = Form(""), reason: str = Form(""),
                back: str = Form("/ops")):
    """Reset a concern's workflow to a WorkflowTaskCompleted event, with a reason (the history page posts here)."""
    target = back if back.startswith("/") and not back.startswith("//") else "/ops"
    if not event_id.strip().isdigit() or int(event_id) <= 0:
        return _back(request, "Not done: give the id of a WorkflowTaskCompleted event", target)
    try:
        done = await api_ops.reset_concern(request, request.state.principal, concern_id, int(event_id), reason)
    except HTTPException as err:
        return _back(request, _refused(err), target)
    return _back(request, f"{concern_id}: {done.result}. Recorded with your reason.", target)
