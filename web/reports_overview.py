"""The reporting overview for desk managers (and an agent's own figures): cards with definitions, charts with
their tables, CSV of every table, and the concerns behind every figure."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlmodel import select

from api.deps import SessionsDep
from api.reports_overview import PRESETS, parse_filters, table_csv
from registry.models import Concern, Customer, Organisation, User
from registry.overview import OverviewFilters, concern_rows, figure_sets, overview
from web.overview_charts import day_chart, swatch
from web.templating import render

router = APIRouter(include_in_schema=False)

# Every figure's definition, shown beside it (and in the README's reporting section).
DEFINITIONS = {
    "created": "Concerns registered in the period, on any channel (the day is the UTC day they were registered).",
    "resolved": "Concerns whose latest resolution falls in the period (a reopened concern counts again when "
                "resolved again; one still reopened does not count).",
    "backlog": "Concerns open now (not resolved or closed) that were registered before the period ended; age is "
               "calendar time since registration, at the period's end or now, whichever is earlier.",
    "first_reply": "Of concerns registered in the period with a public message from an agent (reply, question or "
                   "resolution): business time on the first-response SLA clock until it stopped, in the calendar of "
                   "the concern's policy, paused while waiting on the customer. Automated answers are not replies.",
    "resolution_time": "Of concerns resolved in the period: business time on the resolution SLA clock, summed over "
                       "every cycle (a reopened concern adds its new cycle), paused while waiting on the customer.",
    "first_contact_resolution": "Of concerns resolved in the period that a person handled: those resolved without "
                                "the customer having to write again after their first message, and never reopened.",
    "first_level_resolution": "Of concerns resolved in the period that a person handled: those that never went "
                              "beyond level 1. E-level resolutions count as deflection, not here.",
    "one_touch": "Of concerns resolved in the period that a person handled: those with exactly one public message "
                 "from an agent.",
    "reopened": "Of concerns resolved in the period: those the customer reopened at least once.",
    "deflected": "Of concerns registered in the period: those the e-level answered, the customer confirmed as solved, "
                 "no person took over, and that are resolved (KCS: issues resolved, per channel).",
    "rejected_answers": "Of concerns registered in the period that got an automated answer: those whose customer "
                        "said it did not help, or that a person had to take over.",
    "csat": "Ratings given in the period: the share of 4 and 5 on the 1-5 satisfaction question.",
    "nps": "Ratings given in the period with a 0-10 recommendation score: promoters (9-10) minus detractors (0-6), "
           "as a percentage of those answers (from -100 to 100).",
    "escalations": "Escalations in the period, by the level the concern left and the reason: an agent's "
                   "(their words) or a timer running out ('time up').",
    "workload": "Per agent (the concern's current or last assignee): open concerns now, concerns resolved in the "
                "period, their median business resolution time, reopened ones, and public messages sent in the period.",
}
TABLES = ("per_day", "by_channel", "by_category", "backlog_age", "csat", "nps", "escalations", "workload")
FIGURES = ("created", "resolved", "backlog", "first_reply", "resolution_time", "handled_by_people",
           "first_contact_resolution", "first_level_resolution", "one_touch", "reopened", "answered", "deflected",
           "rejected_answers", "rated", "satisfied", "promoters", "detractors", "escalations")


def _filters(request: Request) -> OverviewFilters:
    return parse_filters(dict(request.query_params), request.state.principal)


def _options(session) -> dict:
    def distinct(column) -> list:
        return sorted(v for v in session.exec(select(column).distinct()) if v is not None)
    return {
        "channel": distinct(Concern.channel), "category": distinct(Concern.category), "sop": distinct(Concern.sop_id),
        "sop_version": distinct(Concern.sop_version), "priority": ["low", "normal", "high", "urgent"],
        "organisation": [(o.id, o.name) for o in session.exec(select(Organisation).order_by(Organisation.name))],
        "tier": distinct(Customer.tier), "level": [1, 2, 3],
        "agent": [(u.id, u.name or u.email) for u in session.exec(
            select(User).where(User.role.in_(["agent", "lead", "admin"])).order_by(User.name))],
    }


def _link(path: str, filters: OverviewFilters, **extra) -> str:
    return f"{path}?{urlencode(filters.params(**extra))}"


@router.get("/reports")
def overview_page(request: Request, sessions: SessionsDep):
    principal = request.state.principal
    filters = _filters(request)
    with sessions.begin() as session:
        report = overview(session=session, filters=filters)
        options = _options(session)
    channels = [k.removeprefix("created_") for k in (report.tables["per_day"][0] if report.tables["per_day"] else {})
                if k.startswith("created_")]
    return render(request, "reports/overview.html", {
        "r": report, "f": filters, "options": options, "presets": PRESETS, "period": "" if request.query_params.get("from") or request.query_params.get("to")
        else request.query_params.get("period") or "30d",
        "definitions": DEFINITIONS, "channels": channels, "swatch": swatch,
        "day_chart": day_chart(report.tables["per_day"], channels, "Concerns created per day by channel, and resolved"),
        "own": principal.role == "agent",
        "drill": lambda figure, **kw: _link("/reports/concerns", filters, figure=figure, **kw),
        "csv": lambda table: _link("/reports/overview.csv", filters, table=table),
        "sla_link": _link("/reports/sla", filters),
        "query": filters.params(),
    })


@router.get("/reports/overview.csv")
def overview_csv(request: Request, sessions: SessionsDep, table: str = "per_day"):
    if table not in TABLES:
        raise HTTPException(404, f"no table {table!r}; the tables are {', '.join(TABLES)}")
    filters = _filters(request)
    with sessions.begin() as session:
        rows = overview(session=session, filters=filters).tables[table]
    if request.state.principal.role == "agent" and table == "workload":
        rows = [r for r in rows if r["agent_id"] == request.state.principal.id]
    name = f"overview-{table}-{filters.start}-{filters.end}.csv"
    return Response(table_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/reports/concerns")
def figure_concerns(request: Request, sessions: SessionsDep, figure: str = "created", key: str | None = None):
    if figure not in FIGURES:
        raise HTTPException(404, f"no figure {figure!r}")
    filters = _filters(request)
    with sessions.begin() as session:
        ids = figure_sets(session=session, filters=filters).concerns_of(figure, key)
        rows = concern_rows(session=session, ids=ids)
    base = figure if figure in DEFINITIONS else {
        "handled_by_people": "first_contact_resolution", "answered": "rejected_answers", "rated": "csat",
        "satisfied": "csat", "promoters": "nps", "detractors": "nps"}[figure]
    return render(request, "reports/overview_concerns.html", {
        "rows": rows, "figure": figure, "key": key, "f": filters, "definition": DEFINITIONS[base],
        "back": _link("/reports", filters),
    })
