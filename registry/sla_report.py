"""The SLA compliance report: figures per group, the clocks behind each figure, and the same as CSV.

One code path for the page, the JSON API, the CSV exports, the evidence bundle and `ccr report sla`. The
figures are read from `clockcycle` (one row per clock cycle, kept with the clock events; see
`registry/clock_cycles.py`); a clock's own events are read from `clockevent`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select
from sqlalchemy import case as sql_case

from registry.clock_cycles import REPORTED_CLOCKS, ClockCycle
from registry.models import Organisation

NONE = "(none)"  # a filter value that selects the clocks without a value for that field
Basis = Literal["started", "stopped"]
_c = ClockCycle.__table__.c

# Grouping and filter fields: name -> (columns, label for people).
FIELDS: dict[str, tuple[tuple, str]] = {
    "policy": ((_c.policy,), "Policy"),
    "priority": ((_c.priority,), "Priority"),
    "clock": ((_c.clock,), "Clock"),
    "sop": ((_c.sop_id,), "SOP"),
    "sop_version": ((_c.sop_id, _c.sop_version), "SOP version"),
    "channel": ((_c.channel,), "Channel"),
    "category": ((_c.category,), "Category"),
    "organisation": ((_c.organisation_id,), "Organisation"),
    "tier": ((_c.tier,), "Customer tier"),
    "level": ((_c.level,), "Level"),
    "agent": ((_c.agent_id,), "Agent"),
}
# A filter names one column; `sop_version` filters the version (with `sop` for the id).
FILTER_COLUMNS = {name: cols[-1] for name, (cols, _) in FIELDS.items()}
INTEGER_FILTERS = {"sop_version", "organisation", "level", "agent"}
MEASURES = ("started", "met", "breached", "running", "paused", "settled", "warned", "stopped")
CLOCK_TITLES = {"first_response": "First response", "next_response": "Next response", "resolution": "Resolution",
                "ola_l1": "Level 1 (OLA)", "ola_l2": "Level 2 (OLA)", "ola_l3": "Level 3 (OLA)"}

# What each figure counts, shown next to it (page, JSON and CSV header notes alike).
DEFINITIONS = {
    "started": "Clock cycles in the group whose {basis} falls in the period. A cycle runs from a clock's start to "
               "its stop: a reopened concern's resolution clock and every next-response clock count once per cycle. "
               "Clocks: first response, next response, resolution and the OLA of each level; step timers are not "
               "SLA clocks and are left out.",
    "met": "Cycles stopped before the business time used reached their target (the target of the priority in "
           "force when they stopped; a priority change applies to running clocks).",
    "breached": "Cycles whose business time used reached their target (a breach event), whether stopped since or "
                "still open.",
    "running": "Cycles neither stopped nor breached, running now. Always 0 when the period is by stop.",
    "paused": "Cycles neither stopped nor breached, paused now while the concern waits on the customer. "
              "Always 0 when the period is by stop.",
    "attainment": "met / (met + breached). Running and paused cycles are left out; blank when there are neither "
                  "met nor breached ones.",
    "median_used": "Median (nearest rank) of the business time used as a share of the target, over the stopped "
                   "cycles (met and breached). Business time counts the policy's calendar (opening hours, breaks, "
                   "public holidays, its time zone) and leaves out pauses; to 0.1 %.",
    "p90_used": "90th percentile (nearest rank) of the same: 9 in 10 stopped cycles used at most this share.",
    "warnings": "Cycles that raised a warning: business time used reached the policy's warning share (warn_at) "
                "of the target.",
}
PERIOD_NOTE = ("The period is whole days in UTC, both included, and selects cycles by the calendar time of their "
               "{basis}. Every other figure is business time of the clock's policy calendar.")


class SlaQuery(BaseModel):
    """A period, the basis that places a cycle in it, the grouping and the filters: all a report depends on."""

    date_from: date
    date_to: date
    basis: Basis = "started"
    group_by: list[str] = Field(default_factory=lambda: ["policy", "priority"])
    filters: dict[str, list[str]] = Field(default_factory=dict)

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return (datetime.combine(self.date_from, time(), UTC),
                datetime.combine(self.date_to + timedelta(days=1), time(), UTC))

    def params(self, **extra: str | list[str] | None) -> list[tuple[str, str]]:
        """The query as URL parameters (for links and bookmarks), plus `extra` ones."""
        out = [("from", self.date_from.isoformat()), ("to", self.date_to.isoformat()), ("basis", self.basis)]
        out += [("group", g) for g in self.group_by]
        for name in FIELDS:
            out += [(name, v) for v in self.filters.get(name, [])]
        for name, value in extra.items():
            if value is None:
                continue
            out += [(name, v) for v in ([value] if isinstance(value, str) else value)]
        return out


def parse_query(params: Mapping[str, list[str]], *, today: date | None = None) -> SlaQuery:
    """An `SlaQuery` from URL-style parameters (each name to its values); ValueError says what to fix."""
    def one(name: str) -> str | None:
        values = [v for v in params.get(name, []) if v != ""]
        return values[-1] if values else None

    today = today or datetime.now(UTC).date()
    try:
        date_to = date.fromisoformat(one("to")) if one("to") else today
        date_from = date.fromisoformat(one("from")) if one("from") else date_to.replace(day=1)
    except ValueError:
        raise ValueError("give `from` and `to` as dates, e.g. 2026-10-01") from None
    if date_from > date_to:
        raise ValueError("`from` must not be after `to`")
    basis = one("basis") or "started"
    if basis not in ("started", "stopped"):
        raise ValueError("`basis` is `started` or `stopped`")
    groups = [g for g in params.get("group", []) if g]
    unknown = [g for g in groups if g not in FIELDS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}; choose from {', '.join(FIELDS)}")
    filters: dict[str, list[str]] = {}
    for name in FIELDS:
        values = [v for v in params.get(name, []) if v != ""]
        if name in INTEGER_FILTERS:
            bad = [v for v in values if v != NONE and not v.lstrip("-").isdigit()]
            if bad:
                raise ValueError(f"`{name}` is a number (or {NONE}), not {bad[0]!r}")
        if values:
            filters[name] = values
    return SlaQuery(date_from=date_from, date_to=date_to, basis=basis,
                    group_by=list(dict.fromkeys(groups)) if "group" in params else ["policy", "priority"],
                    filters=filters)


def _conditions(query: SlaQuery, measure: str | None = None) -> list:
    start, end = query.bounds
    at = _c.started_at if query.basis == "started" else _c.stopped_at
    where = [at >= start, at < end, _c.clock.in_(REPORTED_CLOCKS)]
    for name, values in query.filters.items():
        column = FILTER_COLUMNS[name]
        real = [int(v) if name in INTEGER_FILTERS else v for v in values if v != NONE]
        options = ([column.in_(real)] if real else []) + ([column.is_(None)] if NONE in values else [])
        where.append(or_(*options))
    if measure in ("met", "breached", "running", "paused"):
        where.append(_c.outcome == measure)
    elif measure == "settled":
        where.append(_c.outcome.in_(["met", "breached"]))
    elif measure == "warned":
        where.append(_c.warn_event_id.is_not(None))
    elif measure == "stopped":
        where.append(_c.used_permille.is_not(None))
    return where


def _key_columns(query: SlaQuery) -> list:
    return [col for name in query.group_by for col in FIELDS[name][0]]


class FigureRow(BaseModel):
    """The figures of one group (the total when `key` is empty), each with the URL query of its clocks."""

    key: dict[str, str | None]
    labels: dict[str, str]
    started: int = 0
    met: int = 0
    breached: int = 0
    running: int = 0
    paused: int = 0
    warnings: int = 0
    stopped: int = 0
    attainment: float | None = None
    median_used: float | None = None  # percent of target
    p90_used: float | None = None

    def filter_params(self) -> dict[str, str]:
        """The group's values as filters, so a drill-down selects exactly its clocks."""
        return {name: NONE if value is None else value for name, value in self.key.items()}


class SlaReport(BaseModel):
    """The whole report: the query, a row per group and the total."""

    query: SlaQuery
    rows: list[FigureRow]
    total: FigureRow
    definitions: dict[str, str]
    period_note: str


def _percentile(histogram: dict[int, int], share: float) -> float | None:
    """Nearest rank: the smallest value with at least `share` of the values at or below it (per mille -> %)."""
    n = sum(histogram.values())
    if n == 0:
        return None
    rank, seen = max(1, math.ceil(share * n)), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value / 10
    return None


def _finish(row: FigureRow, histogram: dict[int, int]) -> FigureRow:
    settled = row.met + row.breached
    row.attainment = round(row.met / settled, 4) if settled else None
    row.median_used = _percentile(histogram, 0.5)
    row.p90_used = _percentile(histogram, 0.9)
    row.stopped = sum(histogram.values())
    return row


def sla_report(*, session, query: SlaQuery) -> SlaReport:
    """The figures of `query`, per group and in total, from one aggregate query over the clock cycles.

    The query groups by the row's fields and the per mille of target used, so one scan gives the counts and
    the distribution the percentiles are read from (at most a few thousand values per group)."""
    keys = _key_columns(query)
    where = _conditions(query)
    flags = [func.sum(sql_case((_c.outcome == o, 1), else_=0)) for o in ("met", "breached", "running", "paused")]
    stmt = (select(*keys, _c.used_permille, func.count(), *flags,
                   func.sum(sql_case((_c.warn_event_id.is_not(None), 1), else_=0)))
            .where(*where).group_by(*keys, _c.used_permille))
    n = len(keys)
    groups: dict[tuple, FigureRow] = {}
    histograms: dict[tuple, dict[int, int]] = {}
    for r in session.execute(stmt).all():
        values, permille, counted = tuple(r[:n]), r[n], r[n + 1:]
        row = groups.get(values)
        if row is None:
            row = groups[values] = FigureRow(key={}, labels={})
            histograms[values] = {}
        row.started += counted[0]
        row.met += counted[1] or 0
        row.breached += counted[2] or 0
        row.running += counted[3] or 0
        row.paused += counted[4] or 0
        row.warnings += counted[5] or 0
        if permille is not None:
            histograms[values][permille] = histograms[values].get(permille, 0) + counted[0]
    names = _names(session, query, groups)
    rows = []
    for values, row in groups.items():
        row.key, row.labels = _key_of(query, values, names)
        rows.append(_finish(row, histograms.get(values, {})))
    rows.sort(key=lambda r: [_order(k, v, r.labels.get(k, "")) for k, v in r.key.items()])
    total = FigureRow(key={}, labels={}, **{f: sum(getattr(r, f) for r in rows)
                                            for f in ("started", "met", "breached", "running", "paused", "warnings")})
    merged: dict[int, int] = {}
    for histogram in histograms.values():
        for value, count in histogram.items():
            merged[value] = merged.get(value, 0) + count
    basis = "start" if query.basis == "started" else "stop"
    return SlaReport(query=query, rows=rows, total=_finish(total, merged),
                     definitions={k: v.format(basis=basis) for k, v in DEFINITIONS.items()},
                     period_note=PERIOD_NOTE.format(basis=basis))


_ORDERS = {"priority": ["urgent", "high", "normal", "low"], "clock": list(REPORTED_CLOCKS)}


def _order(name: str, value: str | None, label: str) -> tuple:
    """Rows in the order people expect: priorities from urgent down, clocks as they run, the rest by name."""
    known = _ORDERS.get(name, [])
    if value is None:
        return (2, 0, "")
    if name in ("level", "sop_version") and value.isdigit():
        return (0, int(value), label)
    return (0, known.index(value), "") if value in known else (1, 0, label.lower())


def _names(session, query: SlaQuery, groups) -> dict[str, dict]:
    """Display names of organisations and agents in the result."""
    names: dict[str, dict] = {"organisation": {}, "agent": {}}
    if "organisation" in query.group_by:
        index = _key_columns(query).index(_c.organisation_id)
        ids = {k[index] for k in groups if k[index] is not None}
        if ids:
            names["organisation"] = dict(session.execute(
                select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))).all())
    if "agent" in query.group_by:
        ids = {k[_key_columns(query).index(_c.agent_id)] for k in groups} - {None}
        if ids:
            names["agent"] = dict(session.execute(
                select(_c.agent_id, func.max(_c.agent_name)).where(_c.agent_id.in_(ids)).group_by(_c.agent_id)).all())
    return names


def _key_of(query: SlaQuery, values: tuple, names: dict[str, dict]) -> tuple[dict, dict]:
    key: dict[str, str | None] = {}
    labels: dict[str, str] = {}
    i = 0
    for name in query.group_by:
        width = len(FIELDS[name][0])
        part = values[i:i + width]
        i += width
        value = part[-1]
        key[name] = None if value is None else str(value)
        if name == "sop_version":
            key["sop"] = None if part[0] is None else str(part[0])
            labels[name] = f"{part[0]} v{value}" if value is not None else "–"
        elif value is None:
            labels[name] = "–"
        elif name == "clock":
            labels[name] = CLOCK_TITLES.get(value, value)
        elif name == "level":
            labels[name] = f"L{value}"
        elif name in names:
            labels[name] = names[name].get(value) or f"#{value}"
        else:
            labels[name] = str(value)
    return key, labels


# ---- the clocks behind a figure ---------------------------------------------------------------


class ClockRow(BaseModel):
    """One clock cycle as the drill-down and the clock CSV show it."""

    id: int
    concern_id: str
    clock: str
    policy: str | None
    priority: str | None
    sop_id: str | None
    sop_version: int | None
    channel: str | None
    category: str | None
    organisation_id: int | None
    tier: str | None
    level: int | None
    agent_id: int | None
    agent_name: str | None
    target_seconds: int
    elapsed_seconds: int
    state: str
    warned: bool
    started_at: datetime
    due_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None
    workflow_id: str
    run_id: str
    start_event_id: int
    warn_event_id: int | None
    breach_event_id: int | None
    stop_event_id: int | None


ROW_COLUMNS = [getattr(_c, name) for name in ClockRow.model_fields if name != "state"] + [_c.outcome]


def _clock_select(query: SlaQuery, measure: str | None):
    if measure is not None and measure not in MEASURES:
        raise ValueError(f"`measure` is one of {', '.join(MEASURES)}")
    return select(*ROW_COLUMNS).where(*_conditions(query, None if measure == "started" else measure))


def clock_row(r) -> ClockRow:
    values = {k: v for k, v in r._mapping.items() if k in ClockRow.model_fields or k == "outcome"}
    values["state"] = values.pop("outcome")
    return ClockRow(**values)


def clock_rows(*, session, query: SlaQuery, measure: str | None = None, after: int = 0,
               limit: int = 100) -> list[ClockRow]:
    """The clocks behind a figure, in cycle order, `limit` at a time after cycle id `after`."""
    stmt = _clock_select(query, measure).where(_c.id > after).order_by(_c.id).limit(limit)
    return [clock_row(r) for r in session.execute(stmt)]


def clock_count(*, session, query: SlaQuery, measure: str | None = None) -> int:
    return session.execute(select(func.count()).where(
        *_conditions(query, None if measure == "started" else measure))).scalar_one()


# ---- CSV ----------------------------------------------------------------------------------------

FIGURE_COLUMNS = ["started", "met", "breached", "running", "paused", "attainment", "median_used_pct",
                  "p90_used_pct", "stopped", "warnings"]
CLOCK_COLUMNS = list(ClockRow.model_fields)


def _line(values) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(["" if v is None else v for v in values])
    return out.getvalue()


def report_csv_lines(*, session, query: SlaQuery) -> Iterator[str]:
    """The report as CSV lines: one per group, then the total (group fields blank, `total` in `row`)."""
    report = sla_report(session=session, query=query)
    keys = [k for g in query.group_by for k in (["sop", "sop_version"] if g == "sop_version" else [g])]
    labels = [f"{g}_label" for g in query.group_by]
    yield _line(["row", *keys, *labels, *FIGURE_COLUMNS])
    for row in [*report.rows, report.total]:
        yield _line(["total" if row is report.total else "group", *[row.key.get(k) for k in keys],
                     *[row.labels.get(g) for g in query.group_by],
                     row.started, row.met, row.breached, row.running, row.paused, row.attainment, row.median_used,
                     row.p90_used, row.stopped, row.warnings])


def clock_csv_lines(*, session, query: SlaQuery, measure: str | None = None) -> Iterator[str]:
    """Every clock cycle of `query` (or of one figure) as CSV lines with its workflow event ids, streamed from
    the database in batches: the first line is ready at once and memory stays flat however many rows."""
    yield _line(CLOCK_COLUMNS)
    stmt = _clock_select(query, measure).order_by(_c.id).execution_options(yield_per=2000, stream_results=True)
    # The columns straight from the cursor (no model per row), written a batch at a time.
    names = [("outcome" if name == "state" else name) for name in CLOCK_COLUMNS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for batch in session.execute(stmt).mappings().partitions():
        writer.writerows(["" if (v := r[n]) is None else v.isoformat() if isinstance(v, datetime) else v
                          for n in names] for r in batch)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
