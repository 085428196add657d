"""How the workspace shows times, SLA clocks and timeline entries (Jinja filters and small view helpers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from registry.sop_store import can_take
from registry.types import utcnow
from web.templating import templates

CLOCK_TITLES = {"first_response": "First response", "next_response": "Next response", "resolution": "Resolution"}
PUBLIC_KINDS = {"reply": "Reply", "question": "Question to the customer", "resolution": "Resolution",
                "automated_answer": "Automatic answer", "notice": "Notice", "survey": "Survey"}


def span(seconds: float) -> str:
    """A duration as people read it: `2d 3h`, `3h 05m`, `12m`, `40s`."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def time_left(due: datetime | None, now: datetime | None = None) -> str:
    """Time until `due`, or how long it is overdue."""
    if due is None:
        return "paused"
    left = (due - (now or utcnow())).total_seconds()
    return span(left) if left >= 0 else f"overdue {span(left)}"


def sla_class(sla_state: str, due: datetime | None, now: datetime | None = None) -> str:
    """The colour of a row: a due time already passed counts as breached even before the workflow says so."""
    if sla_state == "paused":
        return "sla-paused"
    if sla_state == "breached" or (due is not None and due <= (now or utcnow())):
        return "sla-breached"
    return f"sla-{sla_state}" if sla_state in ("ok", "warning") else "sla-ok"


@dataclass(slots=True)
class QueueRow:
    """One queue row as the table shows it, worked out in one pass rather than by filters per cell."""

    id: str
    subject: str
    customer: str
    where: str
    priority: str
    level: str
    status: str
    mine: bool
    claimed_by: str | None
    sla_css: str
    sla_text: str
    unstaffed: bool = False


def queue_rows(rows, me: int, now: datetime, staffing: list | None = None) -> list[QueueRow]:
    """The table rows for queue `rows` as seen by user `me` at `now`.

    With `staffing` ((level, skills) of the active agents), rows at a human step none of them can take are
    marked, so a lead sees them instead of their waiting unnoticed.
    """
    shown = []
    for r in rows:
        unstaffed = staffing is not None and r.level is not None and not r.assignee_id and not any(
            can_take(level=level, skills=skills, step_level=r.level, step_skills=r.skills or [])
            for level, skills in staffing)
        channel = r.channel.replace("_", " ")
        shown.append(QueueRow(
            id=r.id, subject=r.subject, customer=r.customer or "",
            where=f"{r.id} · {channel} · {r.category}" if r.category else f"{r.id} · {channel}",
            priority=r.priority, level=f"L{r.level}" if r.level else "–", status=r.status.replace("_", " "),
            mine=r.assignee_id == me, claimed_by=(r.assignee_name or "a colleague") if r.assignee_id else None,
            sla_css=sla_class(r.sla_state, r.next_due_at, now),
            sla_text="paused" if r.status == "waiting_customer" else time_left(r.next_due_at, now),
            unstaffed=unstaffed))
    return shown


def clock_title(name: str) -> str:
    """A clock's name for people."""
    if name in CLOCK_TITLES:
        return CLOCK_TITLES[name]
    if name.startswith("ola_l"):
        return f"Level {name[5:]} (OLA)"
    if name.startswith("step:"):
        step = name.split(":")[1]
        return f"Customer reply wait ({step})" if name.endswith(":wall") else f"Escalation timer ({step})"
    return name.replace("_", " ")


def clock_rows(clocks: list[dict], now: datetime | None = None) -> list[dict]:
    """The concern's clocks for display, running ones first."""
    now = now or utcnow()
    rows = []
    for clock in clocks:
        due = clock.get("due_at")
        due = datetime.fromisoformat(due) if isinstance(due, str) else due
        state = clock.get("state", "idle")
        breached, warned = clock.get("breached", False), clock.get("warned", False)
        if state == "stopped":
            text = "breached" if breached else "met"
        elif state == "paused":
            text = f"paused at {span(clock.get('elapsed', 0))} of {span(clock.get('target', 0))}"
        elif due is not None:
            text = time_left(due, now)
        else:
            text = state
        css = "sla-breached" if breached else "sla-warning" if warned else "sla-paused" if state == "paused" else \
            "sla-ok"
        rows.append({"name": clock.get("name", ""), "title": clock_title(clock.get("name", "")), "state": state,
                     "due": due if state == "running" else None, "text": text, "css": css})
    order = {"running": 0, "paused": 1, "idle": 2, "stopped": 3}
    return sorted(rows, key=lambda r: order.get(r["state"], 4))


def entry_style(entry) -> str:
    """How a timeline entry looks: customer, public, note or event."""
    if entry.direction == "in":
        return "customer"
    if entry.direction == "out":
        return "public"
    return "note" if entry.kind == "note" else "event"


def entry_label(entry) -> str:
    """The heading of a timeline entry."""
    style = entry_style(entry)
    if style == "customer":
        return "Rating" if entry.kind == "rating" else "Customer message"
    if style == "public":
        return PUBLIC_KINDS.get(entry.kind, entry.kind.replace("_", " ").capitalize())
    return "Internal note" if style == "note" else entry.kind.replace("_", " ")


def when(moment: datetime | None) -> str:
    """A timestamp in UTC, minutes precision."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


templates.env.filters.update(time_left=time_left, span=span, when=when, entry_style=entry_style,
                             entry_label=entry_label, clock_title=clock_title)
templates.env.globals.update(sla_class=sla_class)
