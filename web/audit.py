"""The auditor's page: the staff audit log filtered by person, action and period, its CSV, and the evidence bundle."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.audit import actor_of, export_csv, page_of
from api.deps import SessionsDep, get_client
from api.evidence import build_bundle
from registry import audit
from web.csrf import verify_csrf
from web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

PAGE = 50


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _period(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """From the start of `start` up to the end of `end` (both days included), in UTC."""
    since = datetime(start.year, start.month, start.day, tzinfo=UTC) if start else None
    until = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1) if end else None
    return since, until


def _filters(request: Request) -> dict:
    q = request.query_params
    return {"actor": (q.get("actor") or "").strip()[:320], "action": (q.get("action") or "").strip()[:60],
            "from": _day(q.get("from")), "to": _day(q.get("to")), "cursor": (q.get("cursor") or "")[:20]}


def _context(sessions, f: dict) -> dict:
    since, until = _period(f["from"], f["to"])
    rows, next_cursor = page_of(sessions, actor=f["actor"] or None, action=f["action"] or None, since=since,
                                until=until, cursor=f["cursor"] or None, limit=PAGE)
    with sessions.read() as session:
        known = audit.actions(session=session)
        last = audit.last_verification(session=session)
    query = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in f.items() if v and k != "cursor"}
    api_query = {"actor": f["actor"], "action": f["action"], "since": since.isoformat() if since else "",
                 "until": until.isoformat() if until else ""}
    return {"rows": rows, "filters": f, "actions": known, "last_verification": last,
            "older": "/audit?" + urlencode({**query, "cursor": next_cursor}) if next_cursor else None,
            "newest": "/audit?" + urlencode(query) if f["cursor"] else None,
            "csv_url": "/api/audit.csv?" + urlencode({k: v for k, v in api_query.items() if v}),
            "bundle_from": (f["from"] or (datetime.now(UTC).date() - timedelta(days=30))).isoformat(),
            "bundle_to": (f["to"] or datetime.now(UTC).date()).isoformat()}


@router.get("/audit")
def audit_page(request: Request, sessions: SessionsDep):
    """The staff audit log: who did what, when and from where; htmx gets the results alone."""
    ctx = _context(sessions, _filters(request))
    if is_htmx(request):
        return render(request, "audit/_results.html", ctx)
    return render(request, "audit/index.html", ctx)


@router.post("/audit/bundle", dependencies=[Depends(verify_csrf)])
async def audit_bundle(request: Request, sessions: SessionsDep):
    """Download the evidence bundle of a period (both days included)."""
    form = await request.form()
    start, end = _day(str(form.get("from", ""))), _day(str(form.get("to", "")))
    error = None
    if start is None or end is None or end < start:
        error = "Choose the first and the last day of the period (the last on or after the first)."
    else:
        since, until = _period(start, end)
        out = io.BytesIO()
        try:
            await build_bundle(sessions=sessions, client=await get_client(request), since=since, until=until,
                               actor=actor_of(request.state.principal), out=out)
        except HTTPException as err:
            error = f"The bundle needs Temporal for the policies and calendars: {err.detail}"
        else:
            name = f"evidence-{start.isoformat()}-{end.isoformat()}.zip"
            return Response(out.getvalue(), media_type="application/zip",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
    ctx = await run_in_threadpool(_context, sessions, _filters(request))
    return render(request, "audit/index.html", {**ctx, "bundle_error": error}, status_code=422)
