"""The desk's overview for a period: every figure with the concerns it counted, from the projection,
the timeline, the clock events and the ratings (one code path for the page, the API, CSV and `ccr`)."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel
from sqlalchemy import or_
from sqlmodel import Session, select

from registry.models import ClockEvent, Concern, Customer, Interaction, User
from registry.ratings import Rating
from registry.reports import ElevelFacts, elevel_facts
from registry.types import utcnow

DONE = ("resolved", "closed")
PUBLIC_STAFF = ("reply", "question", "resolution")
AGE_BUCKETS = ((86400, "under 1 day"), (3 * 86400, "1-3 days"), (7 * 86400, "3-7 days"), (None, "over 7 days"))
FILTER_NAMES = ("channel", "category", "sop", "sop_version", "priority", "organisation", "tier", "level", "agent")


class OverviewFilters(BaseModel):
    """A period (whole UTC days, both ends included) and the attributes every figure is narrowed by."""

    start: date
    end: date
    channel: str | None = None
    category: str | None = None
    sop: str | None = None
    sop_version: int | None = None
    priority: str | None = None
    organisation: int | None = None
    tier: str | None = None
    level: int | None = None
    agent: int | None = None

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def previous(self) -> OverviewFilters:
        """The period of the same length just before, with the same filters."""
        length = self.end - self.start + timedelta(days=1)
        return self.model_copy(update={"start": self.start - length, "end": self.end - length})

    def params(self, **extra) -> dict[str, str]:
        """The filters as URL query parameters (empty ones left out)."""
        values = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        values.update({name: str(getattr(self, name)) for name in FILTER_NAMES if getattr(self, name) is not None})
        values.update({k: str(v) for k, v in extra.items() if v is not None})
        return values


class Spread(BaseModel):
    """A duration figure: how many concerns, the median and the 90th percentile in seconds."""

    count: int
    median_seconds: float | None
    p90_seconds: float | None


class Share(BaseModel):
    """A share figure: the concerns that qualify out of those that count, and the rate."""

    count: int
    of: int
    rate: float | None


class Figures(BaseModel):
    """The headline figures of one period (the page's cards, compared with the previous period)."""

    created: int
    resolved: int
    backlog: int
    backlog_median_age_seconds: float | None
    first_reply: Spread
    resolution_time: Spread
    first_contact_resolution: Share
    first_level_resolution: Share
    one_touch: Share
    reopened: Share
    deflected: Share
    rejected_answers: Share
    csat: Share
    nps: float | None
    nps_answers: int
    escalations: int


class Comment(BaseModel):
    concern_id: str
    csat: int
    nps: int | None
    comment: str
    at: datetime


class Overview(BaseModel):
    """The overview: headline figures now and before, and the tables behind the charts."""

    filters: OverviewFilters
    generated_at: datetime
    figures: Figures
    previous: Figures
    tables: dict[str, list[dict]]
    comments: list[Comment]


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `share` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def spread(values: list[float]) -> Spread:
    return Spread(count=len(values), median_seconds=float(statistics.median(values)) if values else None,
                  p90_seconds=percentile(values, 0.9))


def share(count: int, of: int) -> Share:
    return Share(count=count, of=of, rate=round(count / of, 4) if of else None)


@dataclass
class Facts:
    """What the timeline and clock events say about one concern, computed once for every figure."""

    concern: Concern
    tier: str
    organisation_id: int | None
    staff_public: list[tuple[datetime, int | None]] = field(default_factory=list)
    customer_messages: int = 0
    reopened: bool = False
    levels: set[int] = field(default_factory=set)
    first_response_stop: int | None = None
    resolution_seconds: int = 0
    resolution_stops: int = 0
    escalations: list[tuple[datetime, int | None, str]] = field(default_factory=list)
    elevel: ElevelFacts = field(default_factory=ElevelFacts)

    @property
    def human(self) -> bool:
        return bool(self.levels)


def _matches(f: OverviewFilters, c: Concern, customer: Customer) -> bool:
    return all((
        f.channel is None or c.channel == f.channel,
        f.category is None or c.category == f.category,
        f.sop is None or c.sop_id == f.sop,
        f.sop_version is None or c.sop_version == f.sop_version,
        f.priority is None or c.priority == f.priority,
        f.organisation is None or customer.organisation_id == f.organisation,
        f.tier is None or customer.tier == f.tier,
        f.level is None or c.level == f.level,
        f.agent is None or c.assignee_id == f.agent,
    ))


def load_facts(*, session: Session, filters: OverviewFilters, since: datetime, until: datetime) -> dict[str, Facts]:
    """The concerns the filters select that were alive at some time in [since, until), with their facts."""
    rows = session.exec(
        select(Concern, Customer).join(Customer, Customer.id == Concern.customer_id)
        .where(Concern.created_at < until,
               or_(Concern.created_at >= since, Concern.closed_at.is_(None), Concern.closed_at >= since))
    ).all()
    facts = {c.id: Facts(concern=c, tier=cu.tier, organisation_id=cu.organisation_id)
             for c, cu in rows if _matches(filters, c, cu)}
    if not facts:
        return facts
    ids = list(facts)
    for start in range(0, len(ids), 900):  # an IN list of bounded length for every database
        chunk = ids[start:start + 900]
        level_now: dict[str, int | None] = {}
        timeline = session.exec(
            select(Interaction.concern_id, Interaction.kind, Interaction.direction, Interaction.author_user_id,
                   Interaction.meta, Interaction.created_at)
            .where(Interaction.concern_id.in_(chunk))
            .order_by(Interaction.concern_id, Interaction.created_at, Interaction.id))
        for cid, kind, direction, author_id, meta, at in timeline:
            fact, meta = facts[cid], meta or {}
            if kind == "step" and meta.get("type") == "human":
                level_now[cid] = meta.get("level")
                if meta.get("level") is not None:
                    fact.levels.add(int(meta["level"]))
            elif kind in PUBLIC_STAFF and author_id is not None:
                fact.staff_public.append((at, author_id))
            elif kind == "customer_message" and direction == "in":
                fact.customer_messages += 1
            elif kind == "reopened":
                fact.reopened = True
            elif kind == "escalated":
                reason = "time up" if meta.get("reason") == "timeout" else (meta.get("reason") or "").strip()[:80]
                fact.escalations.append((at, level_now.get(cid), reason or "no reason given"))
            fact.elevel.see(kind, meta)
        clocks = session.exec(
            select(ClockEvent.concern_id, ClockEvent.clock, ClockEvent.elapsed_seconds)
            .where(ClockEvent.concern_id.in_(chunk), ClockEvent.kind == "stop",
                   ClockEvent.clock.in_(["first_response", "resolution"]))
            .order_by(ClockEvent.concern_id, ClockEvent.seq))
        for cid, clock, elapsed in clocks:
            fact = facts[cid]
            if clock == "first_response" and fact.first_response_stop is None:
                fact.first_response_stop = elapsed
            elif clock == "resolution":
                fact.resolution_seconds += elapsed
                fact.resolution_stops += 1
    return facts


def _in(at: datetime | None, since: datetime, until: datetime) -> bool:
    return at is not None and since <= at < until


class FigureSets:
    """Every figure of one period as the set of concerns it counts (and the values it takes)."""

    def __init__(self, facts: dict[str, Facts], ratings: list[Rating], since: datetime, until: datetime,
                 now: datetime) -> None:
        self.facts, self.since, self.until = facts, since, until
        every = facts.values()
        self.created = {f.concern.id for f in every if _in(f.concern.created_at, since, until)}
        self.resolved = {f.concern.id for f in every if _in(f.concern.resolved_at, since, until)}
        self.backlog = {f.concern.id for f in every if f.concern.status not in DONE}
        at = min(now, until)
        self.ages = {cid: max(0.0, (at - facts[cid].concern.created_at).total_seconds()) for cid in self.backlog}
        self.first_reply = {cid: facts[cid].first_response_stop for cid in self.created
                            if facts[cid].staff_public and facts[cid].first_response_stop is not None}
        self.resolution_time = {cid: facts[cid].resolution_seconds for cid in self.resolved
                                if facts[cid].resolution_stops}
        self.by_human = {cid for cid in self.resolved if facts[cid].human}
        self.first_contact = {cid for cid in self.by_human
                              if facts[cid].customer_messages <= 1 and not facts[cid].reopened}
        self.first_level = {cid for cid in self.by_human if max(facts[cid].levels) == 1}
        self.one_touch = {cid for cid in self.by_human if len(facts[cid].staff_public) == 1}
        self.reopened = {cid for cid in self.resolved if facts[cid].reopened}
        self.answered = {cid for cid in self.created if facts[cid].elevel.answered}
        self.deflected = {cid for cid in self.created
                          if facts[cid].elevel.deflected and facts[cid].concern.status in DONE}
        self.rejected = {cid for cid in self.answered if facts[cid].elevel.rejected}
        self.ratings = [r for r in ratings if r.concern_id in facts and _in(r.created_at, since, until)]
        self.rated = {r.concern_id for r in self.ratings}
        self.satisfied = {r.concern_id for r in self.ratings if r.csat >= 4}
        self.nps_answers = [r for r in self.ratings if r.nps is not None]
        self.promoters = {r.concern_id for r in self.nps_answers if r.nps >= 9}
        self.detractors = {r.concern_id for r in self.nps_answers if r.nps <= 6}
        self.escalations = [(cid, at, level, reason) for cid, f in facts.items()
                            for at, level, reason in f.escalations if _in(at, since, until)]

    def figures(self) -> Figures:
        n = len(self.nps_answers)
        return Figures(
            created=len(self.created), resolved=len(self.resolved), backlog=len(self.backlog),
            backlog_median_age_seconds=float(statistics.median(self.ages.values())) if self.ages else None,
            first_reply=spread(list(self.first_reply.values())),
            resolution_time=spread(list(self.resolution_time.values())),
            first_contact_resolution=share(len(self.first_contact), len(self.by_human)),
            first_level_resolution=share(len(self.first_level), len(self.by_human)),
            one_touch=share(len(self.one_touch), len(self.by_human)),
            reopened=share(len(self.reopened), len(self.resolved)),
            deflected=share(len(self.deflected), len(self.created)),
            rejected_answers=share(len(self.rejected), len(self.answered)),
            csat=share(len(self.satisfied), len(self.ratings)),
            nps=round(100 * (len(self.promoters) - len(self.detractors)) / n, 1) if n else None,
            nps_answers=n, escalations=len(self.escalations),
        )

    # ---- the drill-down: which concerns a figure counted --------------------------------------

    def concerns_of(self, figure: str, key: str | None = None) -> set[str]:
        """The concerns behind `figure` (optionally one row of its table, named by `key`)."""
        sets = {
            "created": self.created, "resolved": self.resolved, "backlog": self.backlog,
            "first_reply": set(self.first_reply), "resolution_time": set(self.resolution_time),
            "handled_by_people": self.by_human, "first_contact_resolution": self.first_contact,
            "first_level_resolution": self.first_level, "one_touch": self.one_touch, "reopened": self.reopened,
            "answered": self.answered, "deflected": self.deflected, "rejected_answers": self.rejected,
            "rated": self.rated, "satisfied": self.satisfied, "promoters": self.promoters,
            "detractors": self.detractors, "escalations": {e[0] for e in self.escalations},
        }
        if figure not in sets:
            raise KeyError(figure)
        ids = sets[figure]
        if key is None:
            return set(ids)
        return {cid for cid in ids if key in self.keys_of(figure, cid)}

    def keys_of(self, figure: str, cid: str) -> set[str]:
        """The table rows a concern falls in for `figure` (day, channel, category, age band, level)."""
        c = self.facts[cid].concern
        keys = {f"channel:{c.channel}", f"category:{c.category or '-'}"}
        if figure == "created":
            keys.add(f"day:{c.created_at.date().isoformat()}")
        elif figure == "resolved":
            keys.add(f"day:{c.resolved_at.date().isoformat()}")
        elif figure == "backlog":
            keys.add(f"age:{_age_band(self.ages[cid])}")
        elif figure == "escalations":
            keys |= {f"level:{lv if lv is not None else '-'}" for e_cid, _, lv, _ in self.escalations if e_cid == cid}
        if c.assignee_id is not None:
            keys.add(f"agent:{c.assignee_id}")
        return keys


def _age_band(seconds: float) -> str:
    return next(label for limit, label in AGE_BUCKETS if limit is None or seconds < limit)


def _ratings(session: Session, since: datetime, until: datetime) -> list[Rating]:
    return list(session.exec(select(Rating).where(Rating.created_at >= since, Rating.created_at < until)))


def figure_sets(*, session: Session, filters: OverviewFilters, now: datetime | None = None) -> FigureSets:
    """The figure sets of the filters' period."""
    facts = load_facts(session=session, filters=filters, since=filters.since, until=filters.until)
    return FigureSets(facts, _ratings(session, filters.since, filters.until), filters.since, filters.until,
                      now or utcnow())


def _tables(sets: FigureSets, filters: OverviewFilters, names: dict[int, str]) -> dict[str, list[dict]]:
    facts = sets.facts
    channels = sorted({facts[c].concern.channel for c in sets.created | sets.resolved})
    created_by_day = Counter((facts[c].concern.created_at.date(), facts[c].concern.channel) for c in sets.created)
    resolved_by_day = Counter(facts[c].concern.resolved_at.date() for c in sets.resolved)
    per_day = []
    for day in filters.days:
        row = {"day": day.isoformat()}
        row.update({f"created_{ch}": created_by_day[(day, ch)] for ch in channels})
        row["created"] = sum(created_by_day[(day, ch)] for ch in channels)
        row["resolved"] = resolved_by_day[day]
        per_day.append(row)

    def grouped(attr: str) -> list[dict]:
        keys = sorted({getattr(facts[c].concern, attr) or "-" for c in sets.created | sets.resolved | sets.backlog})
        rows = []
        for key in keys:
            mine = {c for c in facts if (getattr(facts[c].concern, attr) or "-") == key}
            answered, deflected = sets.answered & mine, sets.deflected & mine
            rows.append({attr: key, "created": len(sets.created & mine), "resolved": len(sets.resolved & mine),
                         "backlog": len(sets.backlog & mine), "automated_answers": len(answered),
                         "deflected": len(deflected), "rejected_answers": len(sets.rejected & mine),
                         "deflection_rate": round(len(deflected) / len(sets.created & mine), 4)
                         if sets.created & mine else None})
        return rows

    ages = Counter(_age_band(a) for a in sets.ages.values())
    backlog_age = [{"age": label, "concerns": ages[label]} for _, label in AGE_BUCKETS]
    scores = Counter(r.csat for r in sets.ratings)
    csat = [{"rating": s, "ratings": scores[s]} for s in range(1, 6)]
    nps_scores = Counter(r.nps for r in sets.nps_answers)
    nps = [{"score": s, "answers": nps_scores[s],
            "group": "promoter" if s >= 9 else "passive" if s >= 7 else "detractor"} for s in range(0, 11)]
    escalation_rows = Counter((lv, reason) for _, _, lv, reason in sets.escalations)
    escalations = [{"level": lv if lv is not None else "-", "reason": reason, "escalations": n}
                   for (lv, reason), n in sorted(escalation_rows.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    return {"per_day": per_day, "by_channel": grouped("channel"), "by_category": grouped("category"),
            "backlog_age": backlog_age, "csat": csat, "nps": nps, "escalations": escalations,
            "workload": _workload(sets, names)}


def _workload(sets: FigureSets, names: dict[int, str]) -> list[dict]:
    facts = sets.facts
    resolved_by: dict[int, list[str]] = defaultdict(list)
    for cid in sets.resolved:
        if facts[cid].concern.assignee_id is not None:
            resolved_by[facts[cid].concern.assignee_id].append(cid)
    open_by = Counter(facts[c].concern.assignee_id for c in sets.backlog if facts[c].concern.assignee_id)
    replies = Counter(uid for f in facts.values() for at, uid in f.staff_public if _in(at, sets.since, sets.until))
    rows = []
    for uid in sorted(set(resolved_by) | set(open_by) | set(replies), key=lambda u: names.get(u, "")):
        times = [sets.resolution_time[c] for c in resolved_by.get(uid, []) if c in sets.resolution_time]
        rows.append({"agent_id": uid, "agent": names.get(uid, f"#{uid}"), "open": open_by[uid],
                     "resolved": len(resolved_by.get(uid, [])), "public_messages": replies[uid],
                     "median_resolution_seconds": float(statistics.median(times)) if times else None,
                     "reopened": len(set(resolved_by.get(uid, [])) & sets.reopened)})
    return rows


def overview(*, session: Session, filters: OverviewFilters, now: datetime | None = None) -> Overview:
    """The overview of the filters' period, compared with the period of the same length before it."""
    now = now or utcnow()
    sets = figure_sets(session=session, filters=filters, now=now)
    before = figure_sets(session=session, filters=filters.previous(), now=now)
    names = {u.id: u.name or u.email for u in session.exec(select(User))}
    comments = sorted((r for r in sets.ratings if r.comment.strip()), key=lambda r: r.created_at, reverse=True)[:8]
    return Overview(
        filters=filters, generated_at=now, figures=sets.figures(), previous=before.figures(),
        tables=_tables(sets, filters, names),
        comments=[Comment(concern_id=r.concern_id, csat=r.csat, nps=r.nps, comment=r.comment, at=r.created_at)
                  for r in comments],
    )


def concern_rows(*, session: Session, ids: set[str]) -> list[Concern]:
    """The concerns behind a figure, newest first."""
    if not ids:
        return []
    return sorted(session.exec(select(Concern).where(Concern.id.in_(list(ids)))).all(),
                  key=lambda c: c.created_at, reverse=True)
