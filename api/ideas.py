"""Product feedback grouped by product and theme as JSON (`GET /api/ideas`), and the period and CSV its page shares."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from api.deps import DbSession, Principal, require
from api.reports_overview import preset_period
from registry.ideas import IdeaGroup, Period, ideas
from registry.types import utcnow

router = APIRouter(prefix="/api", tags=["ideas"])

READERS = ("lead", "process_owner", "auditor", "admin")
Reader = Annotated[Principal, require(*READERS)]
PRESETS = {"7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days", "month": "This month",
           "last_month": "Last month"}
CSV_COLUMNS = ("product", "theme", "status", "concerns", "customers", "previous", "trend", "csat", "bug",
               "missing_feature", "usability", "praise", "quotes")


class QuotePublic(BaseModel):
    concern_id: str
    interaction_id: int
    kind: str
    quote: str
    customer: str
    at: datetime


class IdeaGroupPublic(BaseModel):
    product: str
    theme: str
    theme_id: int | None
    status: str
    concerns: int
    customers: int
    previous: int
    trend: int
    csat: float | None
    kinds: dict[str, int]
    quotes: list[QuotePublic]


class IdeasPublic(BaseModel):
    start: date
    end: date
    previous_start: date
    previous_end: date
    groups: list[IdeaGroupPublic]


def period_of(params: dict[str, str], today: date | None = None) -> Period:
    """The period in the URL: `period` (a preset, default 30d) or `from` and `to` (whole UTC days, included)."""
    today = today or utcnow().date()
    try:
        if params.get("from") or params.get("to"):
            start = date.fromisoformat(params.get("from") or params["to"])
            end = date.fromisoformat(params.get("to") or today.isoformat())
        else:
            start, end = preset_period(params.get("period") or "30d", today)
    except ValueError as err:
        raise HTTPException(422, "`from` and `to` are days written YYYY-MM-DD") from err
    if start > end:
        raise HTTPException(422, "`from` must not be after `to`")
    if (end - start).days > 366:
        raise HTTPException(422, "a period is at most 367 days; narrow `from` and `to`")
    return Period(start, end)


def public(groups: list[IdeaGroup], period: Period) -> IdeasPublic:
    return IdeasPublic(start=period.start, end=period.end, previous_start=period.previous.start,
                       previous_end=period.previous.end, groups=[IdeaGroupPublic(
                           product=g.product, theme=g.theme, theme_id=g.theme_id, status=g.status,
                           concerns=g.concerns, customers=g.customers, previous=g.previous, trend=g.trend,
                           csat=g.csat, kinds=g.kinds, quotes=g.quotes) for g in groups])


def ideas_csv(groups: list[IdeaGroup]) -> str:
    """One row per product and theme, the figures of the page; quotes joined by ` | `."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for g in groups:
        writer.writerow([g.product, g.theme, g.status, g.concerns, g.customers, g.previous, g.trend,
                         "" if g.csat is None else g.csat, *(g.kinds.get(k, 0) for k in CSV_COLUMNS[8:12]),
                         " | ".join(q["quote"] for q in g.quotes)])
    return out.getvalue()


@router.get("/ideas", response_model=IdeasPublic)
def list_ideas(
    session: DbSession, principal: Reader,
    period: Annotated[str | None, Query(description="7d, 30d, 90d, month or last_month")] = None,
    from_: Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD (UTC)")] = None,
    to: Annotated[str | None, Query(description="last day, included")] = None,
) -> IdeasPublic:
    """Product feedback grouped by product and theme, with the trend against the period before."""
    chosen = period_of({k: v for k, v in {"period": period, "from": from_, "to": to}.items() if v})
    return public(ideas(session=session, period=chosen), chosen)
