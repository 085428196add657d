"""The history of a concern for SREs and auditors: every run of its workflow, decoded and told in SOP terms."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.concern_history import no_workflow
from api.deps import SessionsDep, get_client
from api.history import HistoryUnavailable, NoWorkflow, Run, fetch_runs
from api.history_story import KINDS, Group, load_history, select
from registry.models import Concern
from web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)


def _concern(sessions, concern_id: str) -> Concern | None:
    with sessions.read() as session:
        return session.get(Concern, concern_id)


def _focus(runs: list[Run], run: str) -> Run:
    """The run a link points into (`run` is a run id or its ordinal), else the latest."""
    for r in runs:
        if run and run in (r.run_id, str(r.ordinal)):
            return r
    return runs[-1]


def _anchor(group_run: int, focus: Run, event_id: int) -> str:
    """`event-12` for events of the run in focus (the latest unless a link names one), `run1-event-12` for others."""
    return f"event-{event_id}" if group_run == focus.ordinal else f"run{group_run}-event-{event_id}"


def _when(value: str | None) -> str:
    """An event's time (UTC) to the millisecond."""
    return (value or "").replace("T", " ")[:23]


def _unavailable(request: Request, concern: Concern | None, concern_id: str, message: str, status: int):
    return render(request, "history/unavailable.html", {"c": concern, "concern_id": concern_id, "message": message},
                  status_code=status)


async def _runs_and_groups(request: Request, concern: Concern, *, grouped: bool):
    """(runs, groups) or an error page: 503 while Temporal is unreachable, 404 without a workflow."""
    try:
        client = await get_client(request)
        if grouped:
            return await load_history(client, concern.workflow_id), None
        return (await fetch_runs(client, concern.workflow_id), []), None
    except HistoryUnavailable as err:
        return None, _unavailable(request, concern, concern.id, str(err), 503)
    except NoWorkflow as err:
        return None, _unavailable(request, concern, concern.id, no_workflow(concern, err).detail, 404)
    except HTTPException as err:  # get_client's 503 when Temporal has been down since the app started
        return None, _unavailable(request, concern, concern.id, err.detail, err.status_code)


@router.get("/concerns/{concern_id}/history")
async def history_page(request: Request, concern_id: str, sessions: SessionsDep,
                       kind: Annotated[list[str], Query()] = [], q: Annotated[str, Query(max_length=200)] = "",
                       run: str = ""):
    """The concern's workflow history, grouped and filtered; htmx asks for just the list of events."""
    concern = await run_in_threadpool(_concern, sessions, concern_id)
    if concern is None:
        return render(request, "agent/missing.html", {"concern_id": concern_id}, status_code=404)
    found, error = await _runs_and_groups(request, concern, grouped=True)
    if error is not None:
        return error
    runs, groups = found
    focus = _focus(runs, run)
    chosen = {k for k in kind if k in KINDS}
    shown = select(groups, chosen, q)
    settings = request.app.state.settings
    ctx = {
        "c": concern, "runs": runs, "focus": focus, "groups": shown, "total": len(groups), "kinds": KINDS,
        "chosen": chosen, "q": q, "run": run, "anchor": lambda g, event_id: _anchor(g.run, focus, event_id),
        "when": _when, "pretty": lambda value: json.dumps(value, indent=2, ensure_ascii=False),
        "ui_link": lambda r: settings.temporal_ui_link(concern.workflow_id, r.run_id),
        "counts": _counts(groups), "query": _query(chosen, q, run),
    }
    if is_htmx(request) and request.headers.get("HX-History-Restore-Request") != "true":
        return render(request, "history/_events.html", ctx)
    return render(request, "history/page.html", ctx)


def _counts(groups: list[Group]) -> dict[str, int]:
    counts = {k: 0 for k in KINDS}
    for g in groups:
        counts[g.kind] = counts.get(g.kind, 0) + 1
        counts["failures"] += g.failed
    return counts


def _query(kinds: set[str], q: str, run: str) -> str:
    return urlencode([("kind", k) for k in sorted(kinds)] + ([("q", q)] if q else []) + ([("run", run)] if run else []))


@router.get("/concerns/{concern_id}/history.json")
async def history_download(request: Request, concern_id: str, sessions: SessionsDep, run: str = ""):
    """One run's raw history as `temporal workflow show --output json` writes it, for `ccr replay FILE`."""
    concern = await run_in_threadpool(_concern, sessions, concern_id)
    if concern is None:
        return render(request, "agent/missing.html", {"concern_id": concern_id}, status_code=404)
    found, error = await _runs_and_groups(request, concern, grouped=False)
    if error is not None:
        return error
    runs, _ = found
    chosen = _focus(runs, run)
    name = concern.workflow_id if chosen is runs[-1] else f"{concern.workflow_id}.run{chosen.ordinal}"
    return Response(json.dumps(chosen.raw(), indent=2), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}.json"'})
