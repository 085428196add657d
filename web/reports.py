"""The SLA report for auditors, leads and admins: figures with their definitions, the clocks behind each
figure, a clock's events, and the workflow events they came from."""

from __future__ import annotations

import base64
import json
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from google.protobuf.json_format import MessageToDict
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from api.deps import ClientDep, SessionsDep
from api.reports import warn_share
from registry.models import Concern, Organisation, SopVersion, User
from registry.queue import PRIORITIES, sop_categories
from registry.sla_clock import clock_detail
from registry.sla_report import (
    CLOCK_TITLES,
    DEFINITIONS,
    FIELDS,
    MEASURES,
    NONE,
    FigureRow,
    SlaQuery,
    clock_count,
    parse_query,
    clock_rows,
    sla_report,
)
from web.templating import render, templates

router = APIRouter(include_in_schema=False)

CycleId = Annotated[int, Path(ge=1, le=2**63 - 1)]
EventId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE = 100
MEASURE_TITLES = {"started": "started", "met": "met", "breached": "breached", "running": "still running",
                  "paused": "paused", "settled": "met or breached (attainment's clocks)", "warned": "that raised a warning", "stopped": "stopped (the percentiles' clocks)"}
CHANNELS = ("web", "email", "api", "phone", "walk_in")
# History events that move a clock: a timer firing, a customer's message, an agent's update, the start.
CAUSES = {"TIMER_FIRED", "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
          "WORKFLOW_EXECUTION_STARTED"}
TIERS = ("standard", "premium")


# One line beside each total; the full definition is in the list under the table.
SHORT = {
    "attainment": "met / (met + breached)",
    "started": "clock cycles whose {basis} is in the period",
    "met": "stopped before their target",
    "breached": "reached their target, stopped or not",
    "running": "neither stopped nor breached, running",
    "paused": "neither stopped nor breached, waiting on the customer",
    "median_used": "business time used ÷ target, stopped cycles",
    "p90_used": "9 in 10 stopped cycles used at most this",
    "warnings": "reached the policy's warning share",
}


def hours(seconds: int | None) -> str:
    """Business time in hours and minutes (a business day is not 24 hours, so never in days)."""
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    if h:
        return f"{h}h {m:02d}m"
    if not m:
        return f"{secs}s"
    return f"{m}m {secs:02d}s" if secs and m < 10 else f"{m}m"


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f} %"


templates.env.filters.update(business=hours, percent=percent)
templates.env.globals.update(percent=percent)


def drill_href(query: SlaQuery, row: FigureRow | None, measure: str) -> str:
    """The clocks behind one figure: the report's period and filters, narrowed to the row's group."""
    filters = {k: list(v) for k, v in query.filters.items()}
    for name, value in (row.filter_params() if row else {}).items():
        filters[name] = [value]
    narrowed = query.model_copy(update={"filters": filters})
    return "/reports/sla/clocks?" + urlencode(narrowed.params(measure=measure))


def _choices(sessions, catalog) -> dict[str, list[tuple[str, str]]]:
    """The values each filter offers, from small tables (never a scan of the clocks)."""
    with sessions.read() as session:
        orgs = session.execute(select(Organisation.id, Organisation.name).order_by(Organisation.name)).all()
        agents = session.execute(select(User.id, User.name, User.email).where(
            User.role.in_(["agent", "lead", "admin"])).order_by(User.name)).all()
        categories = sop_categories(session=session)
        sops = sorted(set(session.execute(select(SopVersion.sop_id).distinct()).scalars()))
    return {
        "policy": [(p, p) for p in sorted(catalog.policies)],
        "priority": [(p, p) for p in PRIORITIES],
        "clock": list(CLOCK_TITLES.items()),
        "sop": [(s, s) for s in sops],
        "channel": [(c, c.replace("_", " ")) for c in CHANNELS],
        "category": [(c, c) for c in categories],
        "organisation": [(str(i), n) for i, n in orgs],
        "tier": [(t, t) for t in TIERS],
        "level": [(str(n), f"L{n}") for n in (1, 2, 3)],
        "agent": [(str(i), n or e) for i, n, e in agents],
    }


def _filter_text(query: SlaQuery, choices) -> list[str]:
    """The filters in words, for the drill-down's heading."""
    shown = []
    for name, values in query.filters.items():
        labels = dict(choices.get(name, []))
        words = ["none" if v == NONE else labels.get(v, v) for v in values]
        shown.append(f"{FIELDS[name][1].lower()} {' or '.join(words)}")
    return shown


def _query(request: Request) -> tuple[SlaQuery, str | None]:
    """The report's query from the URL, or this month's with the reason the URL's was refused."""
    params = {key: request.query_params.getlist(key) for key in request.query_params.keys()}
    try:
        return parse_query(params), None
    except ValueError as err:
        return parse_query({}), str(err)


@router.get("/reports/sla")
async def sla_page(request: Request, sessions: SessionsDep):
    """The report: a period, a grouping, filters, and the figures with their definitions."""
    query, error = _query(request)
    catalog = request.app.state.catalog

    def read():
        with sessions.read() as session:
            return sla_report(session=session, query=query)

    report = await run_in_threadpool(read)
    choices = await run_in_threadpool(_choices, sessions, catalog)
    other = "stopped" if query.basis == "started" else "started"
    return render(request, "reports/sla.html", {
        "report": report, "q": query, "fields": FIELDS, "choices": choices, "definitions": report.definitions,
        "short": {k: v.format(basis="start" if query.basis == "started" else "stop") for k, v in SHORT.items()},
        "drill": lambda row, measure: drill_href(query, row, measure),
        "switch_basis": "/reports/sla?" + urlencode(query.model_copy(update={"basis": other}).params()),
        "csv": "/api/reports/sla.csv?" + urlencode(query.params()),
        "clocks_csv": "/api/reports/sla/clocks.csv?" + urlencode(query.params()),
        "json": "/api/reports/sla?" + urlencode(query.params()),
        "none": NONE, "error": error,
        "group_title": ("By " + " and ".join(FIELDS[g][1].lower() for g in query.group_by)) if query.group_by
        else "The total, ungrouped",
    }, status_code=422 if error else 200)


@router.get("/reports/sla/clocks")
async def clocks_page(request: Request, sessions: SessionsDep):
    """The clocks behind one figure, a hundred at a time."""
    query, error = _query(request)
    measure = request.query_params.get("measure") or "started"
    if measure not in MEASURES:
        error = f"`measure` is one of {', '.join(MEASURES)}"
    after = request.query_params.get("after") or "0"
    if not after.isdigit() or int(after) > 2**63 - 1:
        error = "`after` is a clock id"
    if error:
        return render(request, "reports/missing.html", {"what": "these clocks", "error": error}, status_code=422)
    after = int(after)

    def read():
        with sessions.read() as session:
            return (clock_rows(session=session, query=query, measure=measure, after=after, limit=PAGE),
                    clock_count(session=session, query=query, measure=measure))

    rows, total = await run_in_threadpool(read)
    choices = await run_in_threadpool(_choices, sessions, request.app.state.catalog)
    base = query.params(measure=measure)
    return render(request, "reports/clocks.html", {
        "rows": rows, "total": total, "q": query, "measure": measure, "measure_title": MEASURE_TITLES[measure],
        "definition": DEFINITIONS.get({"warned": "warnings", "stopped": "median_used", "settled": "attainment"}.get(measure, measure), "")
        .format(basis="start" if query.basis == "started" else "stop"),
        "filters": _filter_text(query, choices), "clock_titles": CLOCK_TITLES,
        "next": "/reports/sla/clocks?" + urlencode([*base, ("after", str(rows[-1].id))]) if len(rows) == PAGE else None,
        "back": "/reports/sla?" + urlencode(query.params()),
        "csv": "/api/reports/sla/clocks.csv?" + urlencode(base), "after": after,
        "first": "/reports/sla/clocks?" + urlencode(base),
    })


@router.get("/reports/sla/clocks/{cycle_id}")
async def clock_page(request: Request, cycle_id: CycleId, sessions: SessionsDep):
    """One clock: its facts, its events with the business time used at each, and where a breach happened."""
    catalog = request.app.state.catalog

    def read():
        with sessions.read() as session:
            return clock_detail(session=session, cycle_id=cycle_id,
                                warn_at=warn_share(catalog, session, cycle_id))

    detail = await run_in_threadpool(read)
    if detail is None:
        return render(request, "reports/missing.html", {"what": f"clock {cycle_id}"}, status_code=404)
    policy = catalog.policies.get(detail.cycle.policy or "")
    return render(request, "reports/clock.html", {
        "d": detail, "c": detail.cycle, "policy": policy, "clock_title": CLOCK_TITLES.get(detail.cycle.clock),
        "back": request.headers.get("referer") if (request.headers.get("referer") or "").find("/reports/sla") >= 0
        else None,
    })


# ---- one workflow event, decoded ---------------------------------------------------------------


def _decode(value):
    """Payloads (base64 JSON) turned back into what the workflow saw."""
    if isinstance(value, dict):
        if "data" in value and "metadata" in value:
            try:
                return json.loads(base64.b64decode(value["data"]))
            except (ValueError, TypeError):
                return value
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _summary(event: dict) -> tuple[str, dict]:
    kind = event.get("eventType", "")
    attributes = next((v for k, v in event.items() if k.endswith("Attributes")), {})
    return kind.removeprefix("EVENT_TYPE_"), _decode(attributes)


@router.get("/reports/sla/events/{concern_id}/{event_id}")
async def event_page(request: Request, concern_id: str, event_id: EventId, sessions: SessionsDep,
                     client: ClientDep):
    """The workflow task that recorded a clock event, with the events that caused it, decoded."""
    run_id = request.query_params.get("run") or None

    def read():
        with sessions.read() as session:
            return session.get(Concern, concern_id)

    concern = await run_in_threadpool(read)
    if concern is None:
        return render(request, "reports/missing.html", {"what": f"concern {concern_id}"}, status_code=404)
    handle = client.get_workflow_handle(concern.workflow_id, run_id=run_id)
    events = []
    try:
        async for event in handle.fetch_history_events():
            events.append(MessageToDict(event))
            if int(events[-1].get("eventId", 0)) > event_id + 2:
                break
    except Exception as err:  # Temporal away, or the run is gone (retention): say so, keep the page
        return render(request, "reports/event.html", {"concern": concern, "event_id": event_id, "run_id": run_id,
                                                      "window": [], "error": str(err).splitlines()[0]}, status_code=503)
    # The event that caused a clock event lies after the workflow task completed before it, up to the task
    # that decided it (whose started event the clock event names).
    previous = max((int(e["eventId"]) for e in events if int(e["eventId"]) < event_id
                    and e.get("eventType") == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"), default=0)
    window = []
    for e in events:
        number = int(e["eventId"])
        if previous < number <= event_id or (event_id == 1 and number == 1):
            kind, attributes = _summary(e)
            window.append({"id": number, "kind": kind, "time": e.get("eventTime", "").replace("T", " ")[:23] + " UTC",
                           "attributes": attributes, "cause": kind in CAUSES,
                           "json": json.dumps(attributes, indent=2, ensure_ascii=False, default=str)[:20000]})
    pinned = None
    started = next((w for w in window if w["kind"] == "WORKFLOW_EXECUTION_STARTED"), None)
    if started:
        payload = (started["attributes"].get("input") or {}).get("payloads") or [{}]
        first = payload[0] if isinstance(payload[0], dict) else {}
        pinned = {"policy": first.get("policy"), "calendar": first.get("calendar")}
    return render(request, "reports/event.html", {
        "concern": concern, "event_id": event_id, "run_id": run_id, "window": window, "error": None,
        "pinned": pinned, "history": f"/api/concerns/{concern.id}/history#event-{event_id}",
    })
