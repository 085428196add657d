"""The concern page: conversation, customer, SLA clocks, SOP flow, presence and the actions allowed now."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.concerns import audit_override, ensure_started, perform
from api.deps import Principal, SessionsDep, get_client
from api.metrics import metrics_of
from registry import concerns as store
from registry.models import Concern, Customer, Organisation, SopVersion, User
from registry.queue import PRIORITIES, assignable_agents, concern_count, sop_categories
from registry.sla_clock import concern_clocks
from registry.sop_store import active_staffing, can_take, get_version
from registry.types import row_id, utcnow
from registry.workspace import others_present, tell_assignment, touch_presence
from sops.graph import chart_graph, steps_passed
from sops.schema import SopDefinition
from web.agent_view import clock_rows
from web.canned import canned_for, fill, load_canned
from web.csrf import verify_csrf
from web.templating import is_htmx, render
from workflows.payloads import AgentAction

router = APIRouter(include_in_schema=False)

ACTIONS = ("claim", "release", "reply", "note", "request_info", "resolve", "escalate", "set_priority",
           "set_category", "assign", "move")
FIELDS = ("text", "reason", "priority", "category", "assignee_id", "step")
SEEN_WITHIN = timedelta(seconds=20)
TYPING_WITHIN = timedelta(seconds=8)


def version_of(concern: Concern) -> str:
    """Changes whenever the workflow records anything, so polling can answer 204 when nothing moved."""
    return f"{concern.seq}-{int(concern.updated_at.timestamp() * 1000)}"


def action_key(concern: Concern) -> str:
    """What decides which actions are shown: the forms are rebuilt only when this changes."""
    return f"{concern.status}|{concern.step}|{concern.level}|{concern.assignee_id}"


def allowed_actions(concern: Concern, principal: Principal, step: dict | None) -> list[str]:
    """The actions to offer now; the workflow's validator still has the last word on each."""
    if principal.role not in ("agent", "lead", "admin") or concern.status == "closed":
        return []
    if concern.status == "resolved":
        return ["note"]
    lead = principal.role in ("lead", "admin")
    shown = []
    if concern.step_type == "human":
        if concern.assignee_id is None:
            shown.append("claim")
        elif concern.assignee_id == principal.id:
            shown += ["reply", "resolve"]
            if concern.status != "waiting_customer":
                shown.append("request_info")
            if step and "escalated" in (step.get("outcomes") or {}):
                shown.append("escalate")
            shown.append("release")
        if lead:
            shown.append("assign")
    shown += ["note", "set_priority", "set_category"]
    return shown + ["move"] if lead else shown


def _view(sessions, concern_id: str, principal: Principal, *, touch: bool) -> dict | None:
    """Everything the page shows, read from the registry in one transaction (when it notes the viewer's presence)."""
    with sessions.begin() if touch else sessions.read() as session:
        concern = session.get(Concern, concern_id)
        if concern is None:
            return None
        customer = session.get(Customer, concern.customer_id)
        org = session.get(Organisation, customer.organisation_id) if customer and customer.organisation_id else None
        timeline = store.timeline(session=session, concern_id=concern.id)
        version = get_version(session=session, sop_id=concern.sop_id, version=concern.sop_version) \
            if concern.sop_id else None
        if touch:
            touch_presence(session=session, concern_id=concern.id, user_id=principal.id, user_name=principal.name)
        others = others_present(session=session, concern_id=concern.id, user_id=principal.id, within=SEEN_WITHIN)
        lead = principal.role in ("lead", "admin")
        agents = assignable_agents(session=session) if lead else []
        categories = sop_categories(session=session)
        count = concern_count(session=session, customer_id=concern.customer_id)
        staffing = active_staffing(session=session) if concern.step_type == "human" else []
        sla_clocks = concern_clocks(session=session, concern_id=concern.id)
    definition = version.definition if version else None
    step = (definition or {}).get("steps", {}).get(concern.step) if concern.step else None
    steps = [(sid, (s or {}).get("title") or sid) for sid, s in ((definition or {}).get("steps") or {}).items()]
    now = utcnow()
    return {
        "c": concern, "customer": customer, "org": org, "customer_concerns": count, "timeline": timeline,
        "step": step, "step_title": (step or {}).get("title") or concern.step,
        "chart": _chart(version, timeline, current=concern.step if step else None) if version else None,
        "clocks": clock_rows(concern.clocks or [], now), "now": now, "version": version_of(concern),
        "sla_clocks": sla_clocks, "live_dues": {k.get("name"): k.get("due_at") for k in concern.clocks or []
                                                if k.get("state") == "running"},
        "key": action_key(concern), "allowed": allowed_actions(concern, principal, step), "agents": agents,
        "categories": categories, "priorities": PRIORITIES, "presence": _presence(others, now),
        "can_act": principal.role in ("agent", "lead", "admin"), "forms": {},
        "canned": {a: canned_for(a) for a in ("reply", "request_info", "resolve")},
        "steps": steps, "unstaffed": _unstaffed(concern, staffing),
    }


_sops: dict[tuple[str, int], SopDefinition] = {}


def _chart(version: SopVersion, timeline, *, current: str | None) -> dict:
    """The SOP version's flow chart graph, marking the steps the concern went through and the path it took."""
    key = (version.content_hash, version.version)
    sop = _sops.get(key)
    if sop is None:  # a published version never changes: parse it once per process
        sop = _sops[key] = SopDefinition.model_validate(version.definition)
    return chart_graph(sop, current=current, passed=steps_passed(sop, timeline))


def _unstaffed(concern: Concern, staffing) -> str | None:
    """What the step needs when no active agent can take it (and nobody holds the concern), else None."""
    if concern.step_type != "human" or concern.level is None or concern.assignee_id is not None or \
            concern.status in ("resolved", "closed"):
        return None
    if any(can_take(level=level, skills=skills, step_level=concern.level, step_skills=concern.skills or [])
           for level, skills in staffing):
        return None
    skills = f" with the skills {', '.join(concern.skills)}" if concern.skills else ""
    return f"No active agent can take this step: it needs level {concern.level}{skills}."


def _presence(others, now) -> list[dict]:
    return [{"name": p.user_name, "typing": p.typing_at is not None and now - p.typing_at <= TYPING_WITHIN}
            for p in others]


def _missing(request: Request, concern_id: str):
    return render(request, "agent/missing.html", {"concern_id": concern_id}, status_code=404)


@router.get("/concerns/{concern_id}")
def concern_page(request: Request, concern_id: str, sessions: SessionsDep, canned: str = "", action: str = "",
                 v: str = "", k: str = "", typed: str = ""):
    """The concern page; polled by htmx it answers 204 when nothing changed, or the parts that did."""
    principal = request.state.principal
    fragment = is_htmx(request) and request.headers.get("HX-History-Restore-Request") != "true"
    if fragment:
        # Most polls find nothing new: answer those from the projection row alone.
        concern = _concern(sessions, concern_id)
        if concern is not None and v == version_of(concern) and k == action_key(concern):
            return Response(status_code=204, headers={"Vary": "HX-Request"})
    ctx = _view(sessions, concern_id, principal, touch=not fragment)
    if ctx is None:
        return _missing(request, concern_id)
    if fragment:
        stale = k != ctx["key"]
        return render(request, "agent/_live.html", {**ctx, "refresh_actions": stale and typed != "1",
                                                    "stale": stale and typed == "1"})
    entry = load_canned().get(canned)
    if entry and action in entry.actions:
        ctx["forms"][action] = {"values": {"text": fill(entry.text, _placeholders(ctx, principal))}}
    return render(request, "agent/concern.html", ctx)


@router.get("/concerns/{concern_id}/actions")
def actions_panel(request: Request, concern_id: str, sessions: SessionsDep):
    """The actions allowed now, for refreshing the panel after the concern changed."""
    ctx = _view(sessions, concern_id, request.state.principal, touch=False)
    if ctx is None:
        return _missing(request, concern_id)
    if not is_htmx(request):
        return RedirectResponse(f"/concerns/{quote(concern_id)}#actions", 303)
    return render(request, "agent/_actions.html", ctx)


def _agent_ref(sessions, assignee_id: str):
    if (user_id := row_id(assignee_id)) is None:
        return None
    with sessions.begin() as session:
        user = session.get(User, user_id)
        if user is None or not user.active or user.role not in ("agent", "lead", "admin"):
            return None
        return Principal.of_user(user).agent_ref()


def build_action(name: str, principal: Principal, values: dict, assignee) -> AgentAction:
    """The workflow update for a submitted form; a ValueError says what is missing."""
    if name == "assign" and assignee is None:
        raise ValueError("choose an agent to assign")
    if name == "set_priority" and values["priority"] not in PRIORITIES:
        raise ValueError("choose a priority")
    return AgentAction(type=name, agent=principal.agent_ref(), text=values["text"], reason=values["reason"],
                       priority=values["priority"] or None, category=values["category"].strip() or None,
                       assignee=assignee, worth_article=values["worth_article"], step=values["step"][:100] or None)


@router.post("/concerns/{concern_id}/actions/{name}", dependencies=[Depends(verify_csrf)])
async def act(request: Request, concern_id: str, name: str, sessions: SessionsDep):
    """Send one action to the concern's workflow; a refusal comes back inline, with what was typed kept."""
    if name not in ACTIONS:
        raise HTTPException(404, f"there is no action {name!r}")
    principal = request.state.principal
    form = await request.form()
    values = {f: str(form.get(f, ""))[:100_000] for f in FIELDS}
    values["worth_article"] = form.get("worth_article") in ("on", "true", "1")
    concern = await run_in_threadpool(_concern, sessions, concern_id)
    if concern is None:
        return _missing(request, concern_id)
    error, status = None, 409
    try:
        ensure_started(concern)
        assignee = await run_in_threadpool(_agent_ref, sessions, values["assignee_id"]) if name == "assign" else None
        held = name == "assign" and assignee is not None and concern.assignee_id not in (None, assignee.id)
        if held and form.get("confirm") != "1":
            return await _confirm_reassign(request, sessions, concern, principal, values, assignee)
        action = build_action(name, principal, values, assignee)
        await perform(await get_client(request), concern.workflow_id, action, metrics=metrics_of(request))
        await run_in_threadpool(audit_override, sessions, principal, concern, action)
    except HTTPException as err:
        error, status = str(err.detail), err.status_code
    except ValidationError:
        error = "the form has a value the desk does not know; check the fields"
    except ValueError as err:
        error = str(err)
    if error is None and name == "assign":
        await run_in_threadpool(_tell_assigned, sessions, concern, principal, assignee)
    ctx = await run_in_threadpool(_view, sessions, concern_id, principal, touch=False)
    if error is None:
        if not is_htmx(request):
            return RedirectResponse(f"/concerns/{quote(concern_id)}", 303)
        # The form succeeded: replace the whole panel (other actions are possible now) and the live parts.
        return render(request, "agent/_after_action.html", ctx,
                      headers={"HX-Retarget": "#actions", "HX-Reswap": "outerHTML"})
    ctx["forms"][name] = {"values": values, "error": error}
    if name not in ctx["allowed"]:
        ctx["allowed"].append(name)  # the refused form stays on screen with the reason and the agent's text
    if is_htmx(request):
        return render(request, "agent/_action_form.html", {**ctx, "name": name}, status_code=status)
    return render(request, "agent/concern.html", ctx, status_code=status)


async def _confirm_reassign(request: Request, sessions, concern: Concern, principal: Principal, values: dict, assignee):
    """The assign form again, asking the lead to confirm taking the concern from the agent who holds it."""
    ctx = await run_in_threadpool(_view, sessions, concern.id, principal, touch=False)
    question = f"Held by {concern.assignee_name or 'a colleague'}; reassign to {assignee.name}?"
    ctx["forms"]["assign"] = {"values": values, "confirm": question}
    if is_htmx(request):
        return render(request, "agent/_action_form.html", {**ctx, "name": "assign"})
    return render(request, "agent/concern.html", ctx)


def _tell_assigned(sessions, concern: Concern, lead: Principal, assignee) -> None:
    """Notices for the agent now holding the concern and for the one who held it before."""
    with sessions.begin() as session:
        tell_assignment(session=session, concern_id=concern.id, subject=concern.subject,
                        lead=lead.name or lead.email or "A lead", lead_id=lead.id, assignee_id=assignee.id,
                        assignee_name=assignee.name, previous_id=concern.assignee_id,
                        previous_name=concern.assignee_name)


def _concern(sessions, concern_id: str) -> Concern | None:
    with sessions.read() as session:
        return session.get(Concern, concern_id)


def _presence_fragment(request: Request, sessions, concern_id: str, typing: bool):
    principal = request.state.principal
    with sessions.begin() as session:
        if session.get(Concern, concern_id) is None:
            return _missing(request, concern_id)
        touch_presence(session=session, concern_id=concern_id, user_id=principal.id, user_name=principal.name,
                       typing=typing)
        others = others_present(session=session, concern_id=concern_id, user_id=principal.id, within=SEEN_WITHIN)
    return render(request, "agent/_presence.html", {"concern_id": concern_id, "presence": _presence(others, utcnow())})


@router.get("/concerns/{concern_id}/presence")
def presence(request: Request, concern_id: str, sessions: SessionsDep):
    """Who else has this concern open (polled), noting that I still do."""
    return _presence_fragment(request, sessions, concern_id, typing=False)


@router.post("/concerns/{concern_id}/presence", dependencies=[Depends(verify_csrf)])
def typing(request: Request, concern_id: str, sessions: SessionsDep):
    """Note that I am typing on this concern, so colleagues see a collision coming."""
    return _presence_fragment(request, sessions, concern_id, typing=True)


def _placeholders(ctx: dict, principal: Principal) -> dict[str, str]:
    customer = ctx["customer"]
    return {"customer_name": (customer.name if customer else "") or "there", "concern_id": ctx["c"].id,
            "subject": ctx["c"].subject, "agent_name": principal.name}


@router.get("/concerns/{concern_id}/canned")
def canned_text(request: Request, concern_id: str, sessions: SessionsDep, key: str = "", action: str = "reply"):
    """A canned response filled in for this concern, as the text box of the action's form."""
    if action not in ("reply", "request_info", "resolve"):
        action = "reply"
    if not is_htmx(request):
        query = urlencode({"canned": key, "action": action})
        return RedirectResponse(f"/concerns/{quote(concern_id)}?{query}#form-{action}", 303)
    principal = request.state.principal
    ctx = _view(sessions, concern_id, principal, touch=False)
    if ctx is None:
        return _missing(request, concern_id)
    entry = load_canned().get(key)
    text = fill(entry.text, _placeholders(ctx, principal)) if entry and action in entry.actions else ""
    return render(request, "agent/_text.html", {**ctx, "name": action, "value": text})
