"""The agent workspace: the live queue and bulk actions for leads (the concern page is in `web.concern_page`)."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from sqlmodel import col, select

from api.concerns import audit_override, perform
from api.deps import ClientDep, Principal, SessionsDep
from api.metrics import metrics_of
from registry.models import Concern, User
from registry.queue import CHANNELS, PRIORITIES, SLA_STATES, STATUSES, QueueAgent, QueueFilter, assignable_agents, \
    queue_page, sop_categories
from registry.sop_store import active_staffing
from registry.types import row_id, utcnow
from registry.workspace import dismiss_notice, open_notices, tell_assignment
from web import agent_view  # also registers the workspace's template filters
from web import concern_page
from web.csrf import verify_csrf
from web.templating import is_htmx, render
from workflows.payloads import AgentAction

router = APIRouter(include_in_schema=False)
router.include_router(concern_page.router)

LIMITS = (50, 100, 200, 500)
BULK_PARALLEL = 8


def can_act(principal: Principal) -> bool:
    """Whether the caller works concerns (the others read the workspace)."""
    return principal.role in ("agent", "lead", "admin")


def is_lead(principal: Principal) -> bool:
    return principal.role in ("lead", "admin")


def parse_filter(params, principal: Principal) -> QueueFilter:
    """The queue filter from query parameters; unknown values are ignored rather than refused."""

    def pick(name: str, allowed) -> str | None:
        value = params.get(name) or None
        return value if value in allowed else None

    personal = principal.role == "agent" and principal.level is not None
    scope = pick("scope", ("mine", "all")) or ("mine" if personal else "all")
    if principal.level is None:
        scope = "all"  # someone without a level has no level queue of their own
    level = pick("level", ("1", "2", "3"))
    limit = int(params.get("limit")) if params.get("limit") in {str(n) for n in LIMITS} else LIMITS[0]
    return QueueFilter(
        scope=scope, status=pick("status", STATUSES), priority=pick("priority", PRIORITIES),
        category=(params.get("category") or "").strip()[:60] or None, channel=pick("channel", CHANNELS),
        sla_state=pick("sla", SLA_STATES), level=int(level) if level else None,
        q=(params.get("q") or "").strip()[:100] or None, sort=pick("sort", ("due", "newest")) or "due", limit=limit,
    )


def filter_query(f: QueueFilter, **change) -> str:
    """The query string that asks for filter `f` (with `change` applied)."""
    values = {"scope": f.scope, "status": f.status, "priority": f.priority, "category": f.category,
              "channel": f.channel, "sla": f.sla_state, "level": f.level, "q": f.q,
              "sort": None if f.sort == "due" else f.sort, "limit": None if f.limit == LIMITS[0] else f.limit}
    values.update(change)
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _queue_context(request: Request, sessions, principal: Principal, f: QueueFilter, notice: dict | None = None):
    agent = QueueAgent(id=principal.id, level=principal.level, skills=list(principal.skills))
    with sessions.read() as session:
        rows, more = queue_page(session=session, agent=agent, f=f)
        categories = sop_categories(session=session)
        agents = assignable_agents(session=session) if is_lead(principal) else []
        staffing = active_staffing(session=session) if is_lead(principal) else None
        notices = open_notices(session=session, user_id=principal.id)
    next_limit = next((n for n in LIMITS if n > f.limit), None)
    now = utcnow()
    return {
        "rows": agent_view.queue_rows(rows, principal.id, now, staffing), "more": more, "f": f,
        "query": filter_query(f),
        "more_query": filter_query(f, limit=next_limit) if more and next_limit else None,
        "categories": categories, "agents": agents, "statuses": STATUSES, "priorities": PRIORITIES,
        "channels": CHANNELS, "sla_states": SLA_STATES, "lead": is_lead(principal), "can_act": can_act(principal),
        "now": now, "notice": notice, "notices": notices, "confirm": None, "picked": set(),
    }


@router.get("/queue")
def queue(request: Request, sessions: SessionsDep):
    """My queue, or (for htmx polling and filters) just its table."""
    principal = request.state.principal
    f = parse_filter(request.query_params, principal)
    flash = request.session.pop("flash", None) if not is_htmx(request) else None
    notice = flash if isinstance(flash, dict) else None
    ctx = _queue_context(request, sessions, principal, f, notice)
    if is_htmx(request) and request.headers.get("HX-History-Restore-Request") != "true":
        return render(request, "agent/_queue_poll.html", ctx)
    return render(request, "agent/queue.html", ctx)


async def _bulk_one(client, sessions, principal: Principal, concern: Concern, action: AgentAction,
                    gate: asyncio.Semaphore, metrics) -> str | None:
    async with gate:
        try:
            await perform(client, concern.workflow_id, action, metrics=metrics)
            await run_in_threadpool(audit_override, sessions, principal, concern, action)
            return None
        except HTTPException as err:
            return f"{concern.id}: {err.detail}"


def _bulk_targets(sessions, ids: list[str], assignee_id) -> tuple[list[Concern], object]:
    with sessions.begin() as session:
        concerns = list(session.exec(select(Concern).where(col(Concern.id).in_(ids)))) if ids else []
        assignee = None
        if (user_id := row_id(str(assignee_id or ""))) is not None:
            user = session.get(User, user_id)
            if user is not None and user.role in ("agent", "lead", "admin") and user.active:
                assignee = Principal.of_user(user).agent_ref()
    return concerns, assignee


def _held_elsewhere(concerns: list[Concern], assignee) -> list[Concern]:
    """The concerns someone other than `assignee` holds: assigning them takes them from that agent."""
    return [c for c in concerns if c.assignee_id is not None and c.assignee_id != assignee.id]


def _tell(sessions, lead: Principal, assignee, reassigned: list[Concern]) -> None:
    with sessions.begin() as session:
        for c in reassigned:
            tell_assignment(session=session, concern_id=c.id, subject=c.subject, lead=lead.name or lead.email,
                            lead_id=lead.id, assignee_id=assignee.id, assignee_name=assignee.name, previous_id=c.assignee_id,
                            previous_name=c.assignee_name)


@router.post("/queue/bulk", dependencies=[Depends(verify_csrf)])
async def bulk(request: Request, sessions: SessionsDep, client: ClientDep):
    """Assign the chosen concerns to an agent, or change their priority, one workflow update each.

    Taking concerns from the agents who hold them asks first; once done, both agents are told."""
    principal = request.state.principal
    form = await request.form()
    ids = [i for i in form.getlist("ids") if isinstance(i, str)][:500]
    kind = form.get("bulk_action")
    concerns, assignee = await run_in_threadpool(_bulk_targets, sessions, ids, form.get("assignee_id"))
    priority = form.get("priority") if form.get("priority") in PRIORITIES else None
    confirm = None
    if not concerns:
        notice = "Choose at least one concern."
    elif kind == "assign" and assignee is None:
        notice = "Choose an agent to assign the concerns to."
    elif kind == "priority" and priority is None:
        notice = "Choose a priority."
    elif kind not in ("assign", "priority"):
        notice = "Choose what to do with the concerns."
    elif kind == "assign" and form.get("confirm") != "1" and (held := _held_elsewhere(concerns, assignee)):
        notice = None
        confirm = {"held": [(c.id, c.assignee_name or "a colleague") for c in held], "assignee": assignee,
                   "ids": [c.id for c in concerns]}
    else:
        lead = principal.agent_ref()
        action = AgentAction(type="assign", agent=lead, assignee=assignee) if kind == "assign" else \
            AgentAction(type="set_priority", agent=lead, priority=priority)
        gate = asyncio.Semaphore(BULK_PARALLEL)
        tries = (_bulk_one(client, sessions, principal, c, action, gate, metrics_of(request)) for c in concerns)
        results = await asyncio.gather(*tries)
        failures = [r for r in results if r]
        if kind == "assign":
            done = [c for c, r in zip(concerns, results) if r is None and c.assignee_id != assignee.id]
            await run_in_threadpool(_tell, sessions, principal, assignee, done)
        count = len(concerns) - len(failures)
        what = f"Assigned {count} to {assignee.name}." if kind == "assign" else f"Set {count} to {priority} priority."
        notice = {"text": what, "failures": failures}
    if isinstance(notice, str):
        notice = {"text": notice, "failures": []}
    if not is_htmx(request):
        if confirm is None:
            request.session["flash"] = notice
            return RedirectResponse("/queue", 303)
        f = parse_filter(request.query_params, principal)
        ctx = await run_in_threadpool(_queue_context, request, sessions, principal, f, None)
        return render(request, "agent/queue.html", {**ctx, "confirm": confirm, "picked": set(ids)})
    current = urlsplit(request.headers.get("HX-Current-URL", "")).query
    f = parse_filter(dict(parse_qsl(current)), principal)
    ctx = await run_in_threadpool(_queue_context, request, sessions, principal, f, notice)
    if confirm is not None:
        # Only the question changes: the rows stay ticked (and the refresh paused) until the lead answers.
        return render(request, "agent/_bulk_result.html", {**ctx, "confirm": confirm, "oob": False},
                      headers={"HX-Retarget": "#bulk-result", "HX-Reswap": "outerHTML"})
    return render(request, "agent/_bulk_done.html", ctx)


@router.post("/queue/notices/{notice_id}/dismiss", dependencies=[Depends(verify_csrf)])
def dismiss(request: Request, notice_id: int, sessions: SessionsDep):
    """Dismiss one of my notices (the queue's list of them, or the queue without JavaScript)."""
    principal = request.state.principal
    with sessions.begin() as session:
        if not dismiss_notice(session=session, user_id=principal.id, notice_id=notice_id):
            raise HTTPException(404, f"no notice {notice_id} of yours")
        notices = open_notices(session=session, user_id=principal.id)
    if not is_htmx(request):
        return RedirectResponse("/queue", 303)
    return render(request, "agent/_notices.html", {"notices": notices, "oob": False})
