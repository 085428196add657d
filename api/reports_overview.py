"""The desk's overview as JSON (`GET /api/reports/overview`), and the filter parsing its page and CSV share."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import ValidationError

from api.deps import DbSession, Principal, require
from registry.overview import FILTER_NAMES, Overview, OverviewFilters, overview
from registry.types import utcnow

router = APIRouter(prefix="/api/reports", tags=["reports"])

READERS = ("agent", "lead", "process_owner", "auditor", "admin")
Reader = Annotated[Principal, require(*READERS)]
PRESETS = {"7d": "Last 7 days", "30d": "Last 30 days", "month": "This month", "last_month": "Last month",
           "90d": "Last 90 days"}


def preset_period(preset: str, today: date) -> tuple[date, date]:
    """The first and last day of a named period ending today (or last month)."""
    if preset == "month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    days = {"7d": 7, "30d": 30, "90d": 90}.get(preset)
    if days is None:
        raise HTTPException(422, f"unknown period {preset!r}; choose one of {', '.join(PRESETS)}")
    return today - timedelta(days=days - 1), today


def parse_filters(params: dict[str, str], principal: Principal, today: date | None = None) -> OverviewFilters:
    """Filters from the URL's query (`from`, `to` or `period`, and the attribute filters); an agent's are
    narrowed to the concerns assigned to them, whatever the URL says."""
    today = today or utcnow().date()
    values = {name: params[name] for name in FILTER_NAMES if params.get(name, "").strip()}
    if params.get("from") or params.get("to"):
        values["start"], values["end"] = params.get("from") or params.get("to"), params.get("to") or today.isoformat()
    else:
        values["start"], values["end"] = preset_period(params.get("period") or "30d", today)
    try:
        filters = OverviewFilters.model_validate(values)
    except ValidationError as err:
        problem = err.errors()[0]
        field = {"start": "from", "end": "to"}.get(str(problem["loc"][0]), problem["loc"][0])
        raise HTTPException(422, f"`{field}`: {problem['msg']}") from err
    if filters.start > filters.end:
        raise HTTPException(422, "`from` must not be after `to`")
    if (filters.end - filters.start).days > 366:
        raise HTTPException(422, "a period is at most 367 days; narrow `from` and `to`")
    if principal.role == "agent":
        filters = filters.model_copy(update={"agent": principal.id})
    return filters


def table_csv(rows: list[dict]) -> str:
    """A table of the overview as CSV, columns in the order of its first row."""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue()


@router.get("/overview", response_model=Overview)
def overview_report(
    session: DbSession, principal: Reader,
    period: Annotated[str | None, Query(description="7d, 30d, month, last_month or 90d")] = None,
    from_: Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD (UTC)")] = None,
    to: Annotated[str | None, Query(description="last day, included")] = None,
    channel: str | None = None, category: str | None = None, sop: str | None = None,
    sop_version: int | None = None, priority: str | None = None, organisation: int | None = None,
    tier: str | None = None, level: int | None = None, agent: int | None = None,
) -> Overview:
    """The desk's figures for a period and filters, with the previous period of the same length."""
    params = {k: str(v) for k, v in {
        "period": period, "from": from_, "to": to, "channel": channel, "category": category, "sop": sop,
        "sop_version": sop_version, "priority": priority, "organisation": organisation, "tier": tier,
        "level": level, "agent": agent}.items() if v is not None}
    workload_hidden = principal.role == "agent"
    result = overview(session=session, filters=parse_filters(params, principal))
    if workload_hidden:
        result.tables["workload"] = [r for r in result.tables["workload"] if r["agent_id"] == principal.id]
    return result
