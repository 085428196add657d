"""Reporting routes: SLA compliance with every figure traceable to its clocks, and what the e-level deflects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.deps import CatalogDep, DbSession, Principal, SessionsDep, require
from registry import audit
from registry.reports import DeflectionRow, deflection
from registry.sla_clock import ClockDetail, clock_detail, policy_of
from registry.sla_report import (
    MEASURES,
    ClockRow,
    SlaQuery,
    SlaReport,
    clock_count,
    clock_csv_lines,
    clock_rows,
    parse_query,
    report_csv_lines,
    sla_report,
)

router = APIRouter(prefix="/api/reports", tags=["reports"])

Reader = Annotated[Principal, require("process_owner", "auditor", "lead", "admin")]


@router.get("/deflection", response_model=list[DeflectionRow])
def deflection_report(session: DbSession, _: Reader, since: datetime | None = None,
                      until: datetime | None = None) -> list[DeflectionRow]:
    """Per SOP and category: concerns closed at the e-level with the customer's confirmation, and rejected answers."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=30)
    if since.tzinfo is None or until.tzinfo is None:
        raise HTTPException(422, "give `since` and `until` with a time zone, e.g. 2026-11-01T00:00:00Z")
    if since >= until:
        raise HTTPException(422, "`since` must be before `until`")
    return deflection(session=session, since=since, until=until)


# ---- SLA compliance ------------------------------------------------------------------------------

def sla_query(request: Request) -> SlaQuery:
    """The report's query from the URL: `from`, `to` (dates, both included), `basis` (started or stopped),
    `group` (repeated) and a filter per grouping field."""
    params = {key: request.query_params.getlist(key) for key in request.query_params.keys()}
    try:
        return parse_query(params)
    except ValueError as err:
        raise HTTPException(422, str(err)) from None


Query = Annotated[SlaQuery, Depends(sla_query)]


def _measure(request: Request) -> str | None:
    measure = request.query_params.get("measure") or None
    if measure is not None and measure not in MEASURES:
        raise HTTPException(422, f"`measure` is one of {', '.join(MEASURES)}")
    return measure


Measure = Annotated[str | None, Depends(_measure)]


class ClockPage(BaseModel):
    """A page of the clocks behind a figure, oldest cycle first; pass `next_after` as `after` for the next."""

    total: int
    rows: list[ClockRow]
    next_after: int | None


@router.get("/sla", response_model=SlaReport)
def sla(session: DbSession, _: Reader, query: Query) -> SlaReport:
    """SLA figures for a period per group (`group=policy&group=priority`), each with its definition."""
    return sla_report(session=session, query=query)


def _csv(lines, filename: str) -> StreamingResponse:
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _exported(sessions, reader, report: str, query, **extra) -> None:
    """Record an export of report data in the staff audit log: who took which figures of which period."""
    with sessions.begin() as session:
        audit.record(session=session, actor=reader.email or f"user:{reader.id}", action="report.exported",
                     target=f"report:{report}", detail={"from": query.date_from.isoformat(),
                                                        "to": query.date_to.isoformat(), "basis": query.basis,
                                                        **{k: v for k, v in extra.items() if v}})


@router.get("/sla.csv", response_class=StreamingResponse)
def sla_csv(sessions: SessionsDep, reader: Reader, query: Query) -> StreamingResponse:
    """The same figures as CSV, a line per group and the total."""
    _exported(sessions, reader, "sla", query)

    def lines():
        with sessions.read() as session:
            yield from report_csv_lines(session=session, query=query)

    return _csv(lines(), f"sla-{query.date_from}-{query.date_to}.csv")


@router.get("/sla/clocks", response_model=ClockPage)
def sla_clocks(session: DbSession, _: Reader, query: Query, measure: Measure, after: int = 0,
               limit: int = 100) -> ClockPage:
    """The clocks behind a figure (`measure`: started, met, breached, running, paused, warned, stopped)."""
    limit = max(1, min(limit, 1000))
    rows = clock_rows(session=session, query=query, measure=measure, after=after, limit=limit)
    return ClockPage(total=clock_count(session=session, query=query, measure=measure), rows=rows,
                     next_after=rows[-1].id if len(rows) == limit else None)


@router.get("/sla/clocks.csv", response_class=StreamingResponse)
def sla_clocks_csv(sessions: SessionsDep, reader: Reader, query: Query, measure: Measure) -> StreamingResponse:
    """Every clock of the report (or of one figure) as CSV, with its workflow and event ids, streamed."""
    _exported(sessions, reader, "sla_clocks", query, measure=measure)

    def lines():
        # A transaction, so PostgreSQL can hold a server-side cursor and the rows stream in batches.
        with sessions.begin() as session:
            yield from clock_csv_lines(session=session, query=query, measure=measure)

    return _csv(lines(), f"sla-clocks-{query.date_from}-{query.date_to}.csv")


@router.get("/sla/clocks/{cycle_id}", response_model=ClockDetail)
def sla_clock(cycle_id: int, session: DbSession, catalog: CatalogDep, _: Reader) -> ClockDetail:
    """One clock cycle with its events, the business time used at each and its workflow event ids."""
    detail = clock_detail(session=session, cycle_id=cycle_id, warn_at=warn_share(catalog, session, cycle_id))
    if detail is None:
        raise HTTPException(404, "no such clock")
    return detail


def warn_share(catalog, session, cycle_id: int) -> float | None:
    """The warning share of the clock's policy as defined now, if the desk still has that policy."""
    policy = policy_of(session=session, cycle_id=cycle_id)
    found = catalog.policies.get(policy) if policy else None
    return found.warn_at if found else None
