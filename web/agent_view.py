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
    """A duration in one unit everywhere, hours and minutes: `51h 10m`, `3h 05m`, `12m`, `40s`.

    No days: a wall-clock day is 24 hours but a business day is the calendar's opening hours (9 on the
    Berlin calendar), so "1d" would mean different things on running and paused clocks."""
    seconds = int(abs(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def time_left(due: datetime | None, now: datetime | None = None) -> str:
    """Wall-clock time until `due`, or how long it is overdue, labelled."""
    if due is None:
        return "no clock running"
    left = (due - (now or utcnow())).total_seconds()
    return f"{span(left)} left" if left >= 0 else f"overdue by {span(left)}"


def due_title(due: datetime | None) -> str:
    """The absolute due time, for hovering (the page's script shows it in the viewer's time zone)."""
    return f"due {due.strftime('%a %Y-%m-%d %H:%M')} UTC" if due else ""


def paused_text(elapsed: float, target: float) -> tuple[str, str]:
    """A paused clock: the business time left (its unit said), and what was used of the target."""
    return (f"paused · {span(max(0, target - elapsed))} business time left",
            f"{span(elapsed)} of {span(target)} business time used; the clock resumes when the customer answers")


def outcome(clocks: list[dict] | None) -> str:
    """A stopped concern's SLA result: its resolution clock's, else any customer-facing clock's."""
    clocks = [c for c in clocks or [] if not c.get("name", "").startswith("step:")]
    resolution = [c for c in clocks if c.get("name") == "resolution"] or clocks
    return "breached" if any(c.get("breached") for c in resolution) else "met"


def sla_class(sla_state: str, due: datetime | None, now: datetime | None = None) -> str:
    """The colour of a row: a due time already passed counts as breached even before the workflow says so."""
    if sla_state == "paused":
        return "sla-paused"
    if sla_state == "breached" or (due is not None and due <= (now or utcnow())):
        return "sla-breached"
    return f"sla-{sla_state}" if sla_state in ("ok", "warning") else "sla-ok"


def sla_cell(r, now: datetime) -> tuple[str, str, str]:
    """A queue row's SLA cell: text, hover title and colour, from the row's status, due time and clocks."""
    if r.status in ("resolved", "closed"):
        result = outcome(r.stopped_clocks)
        return result, f"resolution SLA {result}", f"sla-{'breached' if result == 'breached' else 'met'}"
    if r.status == "waiting_customer":
        paused = [c for c in r.stopped_clocks or [] if c.get("state") == "paused" and c.get("name") == "resolution"]
        if paused:
            text, title = paused_text(paused[0].get("elapsed", 0), paused[0].get("target", 0))
            return text, title, "sla-paused" if r.sla_state != "breached" else "sla-breached"
        return "paused", "waiting on the customer; the clocks resume when they answer", "sla-paused"
    return time_left(r.next_due_at, now), due_title(r.next_due_at), sla_class(r.sla_state, r.next_due_at, now)


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
    sla_title: str
    sla_due: datetime | None
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
        text, title, css = sla_cell(r, now)
        shown.append(QueueRow(
            id=r.id, subject=r.subject, customer=r.customer or "",
            where=f"{r.id} · {channel} · {r.category}" if r.category else f"{r.id} · {channel}",
            priority=r.priority, level=f"L{r.level}" if r.level else "–", status=r.status.replace("_", " "),
            mine=r.assignee_id == me, claimed_by=(r.assignee_name or "a colleague") if r.assignee_id else None,
            sla_css=css, sla_text=text, sla_title=title,
            sla_due=r.next_due_at if r.status == "open" else None, unstaffed=unstaffed))
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
        title = ""
        if state == "stopped":
            text = "breached" if breached else "met"
        elif state == "paused":
            text, title = paused_text(clock.get("elapsed", 0), clock.get("target", 0))
        elif state == "running" and due is not None:
            text, title = time_left(due, now), due_title(due)
        elif state == "idle":
            text = "not started"
        else:
            text = state
        css = "sla-breached" if breached else "sla-warning" if warned else "sla-paused" if state == "paused" else \
            "sla-met" if state == "stopped" else "sla-ok"
        rows.append({"name": clock.get("name", ""), "title": clock_title(clock.get("name", "")), "state": state,
                     "due": due if state == "running" else None, "text": text, "css": css, "hover": title})
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


templates.env.filters.update(time_left=time_left, span=span, due_title=due_title, when=when, entry_style=entry_style,
                             entry_label=entry_label, clock_title=clock_title)
templates.env.globals.update(sla_class=sla_class)
