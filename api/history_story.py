"""A concern's decoded history told in SOP terms: related events grouped into one row, as Temporal's UI does."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from api.history import Run, fetch_runs
from api.history_decode import Decoder
from workflows.clocks import deadline_label

DEADLINE = "deadline reached: "
KINDS = {"steps": "Steps", "updates": "Updates", "signals": "Signals", "timers": "Timers",
         "activities": "Activities", "failures": "Failures", "workflow": "Workflow and worker"}


@dataclass
class Group:
    """One row of the history: an activity's scheduled-started-completed, an update's accepted-completed, ..."""

    run: int
    run_id: str
    id: int  # the first event's id
    kind: str  # a key of KINDS other than "failures"
    title: str
    status: str = ""
    failed: bool = False
    at: str | None = None
    lines: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    label: str = ""  # what the row is about ("activity classify"), which its title repeats with the outcome

    @property
    def event_ids(self) -> list[int]:
        return [e["id"] for e in self.events]

    def matches(self, kinds: set[str], text: str) -> bool:
        if kinds and self.kind not in kinds and not ("failures" in kinds and self.failed):
            return False
        if text:
            haystack = " ".join([self.title, *self.lines, json.dumps([e["attributes"] for e in self.events],
                                                                     ensure_ascii=False)])
            return text.lower() in haystack.lower()
        return True

    def public(self) -> dict:
        return asdict(self)


def _first(values: Any) -> Any:
    return values[0] if isinstance(values, list) and values else (values if not isinstance(values, list) else None)


def _failure(attrs: dict) -> str:
    failure = attrs.get("failure") or attrs.get("lastFailure") or {}
    message = failure.get("message") or ""
    cause = (failure.get("cause") or {}).get("message")
    return f"{message}: {cause}" if cause and cause not in message else message or "no reason given"


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


def _action_text(action: dict) -> str:
    """An agent's action the way a colleague would say it: "claim by Ada", "move to level2 by Lee: reason"."""
    kind, who = action.get("type", "?"), (action.get("agent") or {}).get("name", "someone")
    if kind == "assign":
        return f"assign to {(action.get('assignee') or {}).get('name', '?')} by {who}"
    if kind == "move":
        return f"move to {action.get('step')} by {who}: {action.get('reason', '')}"
    if kind == "escalate":
        return f"escalate by {who}: {action.get('reason', '')}"
    if kind == "set_priority":
        return f"set priority {action.get('priority')} by {who}"
    if kind == "set_category":
        return f"set category {action.get('category')} by {who}"
    return f"{kind} by {who}"


def _receipt_lines(receipt: dict) -> list[str]:
    lines = []
    for entry in receipt.get("timeline") or []:
        if entry.get("kind") == "step":
            lines.append(f"step {entry.get('step')} entered" + (f": {entry['text']}" if entry.get("text") else ""))
        else:
            text = entry.get("text") or ""
            by = f" ({entry['author']})" if entry.get("author") and entry["author"] not in text else ""
            lines.append(f"{entry.get('kind')}: {text}{by}" if text else f"{entry.get('kind')}{by}")
    for clock in receipt.get("clock_events") or []:
        name, kind = clock.get("clock") or "?", clock.get("kind")
        if kind in ("warn", "breach"):
            lines.append(f"{DEADLINE}{deadline_label(name, kind)}")
            continue
        title = f"step {name.split(':')[1]}'s clock" if name.startswith("step:") else \
            f"clock {name.replace('_', ' ').replace('ola l', 'OLA level ')}"
        done = {"start": "started", "stop": "stopped", "pause": "paused", "resume": "resumed"}.get(kind, kind)
        lines.append(f"{title} {done}")
    if receipt.get("mails"):
        lines.append(f"{receipt['mails']} mail(s) queued for the customer")
    return lines


class _Teller:
    """Walks one run's decoded events, opening a group per first event and adding the related ones to it."""

    def __init__(self, run: Run, pending: dict[str, Any]) -> None:
        self.run, self.pending = run, pending
        self.groups: list[Group] = []
        self.open: dict[tuple[str, Any], Group] = {}

    def group(self, event: dict, kind: str, title: str, key: tuple | None = None, **extra) -> Group:
        g = Group(run=self.run.ordinal, run_id=self.run.run_id, id=event["id"], kind=kind, title=title,
                  at=event["time"], events=[event], **extra)
        self.groups.append(g)
        if key is not None:
            self.open[key] = g
        return g

    def join(self, key: tuple, event: dict) -> Group | None:
        g = self.open.get(key)
        if g is not None:
            g.events.append(event)
        return g

    def tell(self, event: dict) -> None:
        kind, a = event["type"], event["attributes"]
        handler = getattr(self, f"_{kind}", None)
        if handler is not None:
            handler(event, a)
        else:
            self.group(event, "workflow", kind.replace("_", " "))

    # ---- the workflow ----------------------------------------------------------------------

    def _workflow_execution_started(self, e: dict, a: dict) -> None:
        inp = _first(a.get("input")) or {}
        carried = inp.get("carried") if isinstance(inp, dict) else None
        sop = (inp.get("sop") or {}) if isinstance(inp, dict) else {}
        if carried:
            title = f"run {self.run.ordinal} continues at step {carried.get('step')} ({carried.get('status')})"
        else:
            title = (f"concern {inp.get('concern_id')} opened via {inp.get('channel')}: “{inp.get('subject')}”, "
                     f"SOP {sop.get('id')} v{sop.get('version')}, priority {inp.get('priority')}")
        self.group(e, "workflow", title, status="started")

    def _workflow_execution_completed(self, e: dict, a: dict) -> None:
        result = _first(a.get("result")) or {}
        self.group(e, "workflow", f"workflow completed: the concern is {result.get('status', 'done')}",
                   status="completed")

    def _workflow_execution_continued_as_new(self, e: dict, a: dict) -> None:
        self.group(e, "workflow", f"continued as new: the history goes on in run {self.run.ordinal + 1}",
                   status="continued")

    def _workflow_execution_failed(self, e: dict, a: dict) -> None:
        self.group(e, "workflow", f"workflow failed: {_failure(a)}", status="failed", failed=True)

    def _workflow_execution_terminated(self, e: dict, a: dict) -> None:
        self.group(e, "workflow", f"workflow terminated by {a.get('identity') or 'an operator'}: "
                                  f"{a.get('reason') or 'no reason given'}", status="terminated", failed=True)

    def _workflow_execution_timed_out(self, e: dict, a: dict) -> None:
        self.group(e, "workflow", "workflow timed out", status="timed out", failed=True)

    def _workflow_task_scheduled(self, e: dict, a: dict) -> None:
        self.group(e, "workflow", "workflow task scheduled", ("wft", e["id"]), status="scheduled")

    def _workflow_task_started(self, e: dict, a: dict) -> None:
        g = self.join(("wft", _int(a.get("scheduledEventId"))), e)
        if g is not None:
            g.title, g.status = f"workflow task started by {a.get('identity')}", "started"

    def _workflow_task_completed(self, e: dict, a: dict) -> None:
        g = self.join(("wft", _int(a.get("scheduledEventId"))), e)
        if g is not None:
            g.title, g.status = f"workflow task completed by {a.get('identity')}", "completed"

    def _workflow_task_failed(self, e: dict, a: dict) -> None:
        g = self.join(("wft", _int(a.get("scheduledEventId"))), e) or self.group(e, "workflow", "")
        cause = (a.get("cause") or "").removeprefix("WORKFLOW_TASK_FAILED_CAUSE_").lower().replace("_", " ")
        g.title, g.status, g.failed = f"workflow task failed ({cause}): {_failure(a)}", "failed", True

    def _workflow_task_timed_out(self, e: dict, a: dict) -> None:
        g = self.join(("wft", _int(a.get("scheduledEventId"))), e) or self.group(e, "workflow", "")
        g.title, g.status = "workflow task timed out: no worker finished it in time", "timed out"

    def _upsert_workflow_search_attributes(self, e: dict, a: dict) -> None:
        fields = (a.get("searchAttributes") or {}).get("indexedFields") or {}
        shown = ", ".join(f"{k}={'–' if v is None else v}" for k, v in fields.items())
        self.group(e, "workflow", f"search attributes: {shown}", status="set")

    def _marker_recorded(self, e: dict, a: dict) -> None:
        details = a.get("details") or {}
        data = _first(details.get("data")) or {}
        if a.get("markerName") == "core_patch":
            patch = _first(details.get("patch-data") or details.get("patch_data")) or {}
            name = patch.get("id") if isinstance(patch, dict) else patch
            self.group(e, "workflow", f"patch {name} in effect", status="recorded")
            return
        activity = data.get("activity_type") if isinstance(data, dict) else None
        result = _first(details.get("result"))
        attempt = data.get("attempt", 1) if isinstance(data, dict) else 1
        if a.get("failure"):
            self.group(e, "activities", f"local activity {activity} attempt {attempt} failed: {_failure(a)}",
                       status="failed", failed=True)
        elif activity == "record" and isinstance(result, dict):
            # The step entered leads the row: it is where the concern went.
            lines = sorted(_receipt_lines(result), key=lambda line: not line.startswith("step "))
            title = lines[0] if lines else "snapshot recorded"
            self.group(e, "steps", title, status=result.get("status", ""), lines=lines[1:])
        elif activity == "record":
            self.group(e, "steps", "the concern's progress recorded in the registry", status="recorded")
        elif activity == "unheard_messages":
            found = len(result) if isinstance(result, list) else 0
            self.group(e, "activities", f"asked the registry for messages not heard yet: {found} found",
                       status="completed")
        else:
            self.group(e, "activities", f"local activity {activity}", status="completed")

    # ---- activities ------------------------------------------------------------------------

    def _activity_task_scheduled(self, e: dict, a: dict) -> None:
        name = (a.get("activityType") or {}).get("name", "?")
        request = _first(a.get("input"))
        if name == "run_automation" and isinstance(request, dict):
            name = request.get("action") or name
        label = f"activity {name}" + (f" ({e['summary']})" if e.get("summary") else "")
        g = self.group(e, "activities", f"{label}: scheduled, waiting for a worker", ("act", e["id"]),
                       status="scheduled")
        pending = self.pending.get(a.get("activityId"))
        if pending is not None and pending.attempt > 1:
            g.title = f"{label} attempt {pending.attempt - 1} failed: {pending.last_failure}; retrying"
            g.status, g.failed = "retrying", True
        g.label = label

    def _activity_task_started(self, e: dict, a: dict) -> None:
        g = self.join(("act", _int(a.get("scheduledEventId"))), e)
        if g is not None:
            attempt = _int(a.get("attempt")) or 1
            g.title, g.status = f"{g.label}: attempt {attempt} running", "started"
            if a.get("lastFailure"):
                g.lines.append(f"attempt {attempt - 1} failed: {_failure(a)}")

    def _activity_task_completed(self, e: dict, a: dict) -> None:
        g = self.join(("act", _int(a.get("scheduledEventId"))), e)
        if g is not None:
            result = _first(a.get("result"))
            outcome = result.get("outcome") if isinstance(result, dict) else None
            attempt = _int(g.events[1]["attributes"].get("attempt")) if len(g.events) > 2 else 1
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            g.title = f"{g.label}: " + (f"outcome {outcome}" if outcome else "completed") + tries
            g.status, g.failed = "completed", False

    def _activity_task_failed(self, e: dict, a: dict) -> None:
        g = self.join(("act", _int(a.get("scheduledEventId"))), e)
        if g is not None:
            attempt = _int(g.events[1]["attributes"].get("attempt")) if len(g.events) > 2 else 1
            g.title = f"{g.label} attempt {attempt} failed: {_failure(a)}"
            g.status, g.failed = "failed", True

    def _activity_task_timed_out(self, e: dict, a: dict) -> None:
        g = self.join(("act", _int(a.get("scheduledEventId"))), e)
        if g is not None:
            g.title, g.status, g.failed = f"{g.label} timed out: {_failure(a)}", "timed out", True

    def _activity_task_canceled(self, e: dict, a: dict) -> None:
        g = self.join(("act", _int(a.get("scheduledEventId"))), e)
        if g is not None:
            g.title, g.status = f"{g.label}: canceled", "canceled"

    # ---- timers, signals, updates ------------------------------------------------------------

    def _timer_started(self, e: dict, a: dict) -> None:
        label = e.get("summary") or ""
        g = self.group(e, "timers", "", ("timer", e["id"]), status="running", label=label)
        g.title = f"timer set: {label or 'a deadline'}, fires in {_duration(a.get('startToFireTimeout'))}"

    def _timer_fired(self, e: dict, a: dict) -> None:
        g = self.join(("timer", _int(a.get("startedEventId"))), e)
        if g is not None:
            g.title, g.status = f"timer fired: {g.label or 'a deadline'}", "fired"

    def _timer_canceled(self, e: dict, a: dict) -> None:
        g = self.join(("timer", _int(a.get("startedEventId"))), e)
        if g is not None:
            g.title, g.status = f"timer canceled: {g.label or 'a deadline'} (re-planned)", "canceled"

    def _workflow_execution_signaled(self, e: dict, a: dict) -> None:
        name, arg = a.get("signalName"), _first(a.get("input"))
        arg = arg if isinstance(arg, dict) else {}
        lines: list[str] = []
        if name == "customer_message":
            intent = {"solved": ": the customer says it is solved",
                      "not_solved": ": the customer says it is not solved",
                      "human": ": the customer asks for a person"}.get(arg.get("intent"), "")
            title = f"signal customer_message via {arg.get('channel', '?')}{intent}"
            lines = [arg["text"][:200]] if arg.get("text") else []
        elif name == "survey_answer":
            title = f"signal survey_answer: CSAT {arg.get('csat', '–')}, NPS {arg.get('nps', '–')}"
        else:
            title = f"signal {name}"
        self.group(e, "signals", title, status="received", lines=lines)

    def _workflow_execution_update_admitted(self, e: dict, a: dict) -> None:
        update_id = ((a.get("request") or {}).get("meta") or {}).get("updateId")
        self.group(e, "updates", "update admitted", ("upd", update_id), status="admitted")

    def _workflow_execution_update_accepted(self, e: dict, a: dict) -> None:
        request = a.get("acceptedRequest") or {}
        update_id = (request.get("meta") or {}).get("updateId")
        name = (request.get("input") or {}).get("name", "?")
        arg = _first((request.get("input") or {}).get("args"))
        said = _action_text(arg) if name == "act" and isinstance(arg, dict) else name
        g = self.join(("upd", update_id), e) or self.group(e, "updates", "", ("upd", update_id))
        g.label = f"update {name}: {said}"
        if isinstance(arg, dict) and (arg.get("text") or "").strip():
            g.lines.append(arg["text"].strip()[:300])
        g.title, g.status = f"{g.label} — accepted", "accepted"

    def _workflow_execution_update_completed(self, e: dict, a: dict) -> None:
        update_id = (a.get("meta") or {}).get("updateId")
        g = self.join(("upd", update_id), e)
        if g is None:
            return
        outcome = a.get("outcome") or {}
        if outcome.get("failure"):
            g.title = f"{g.label} — rejected: {outcome['failure'].get('message')}"
            g.status, g.failed = "rejected", True
        else:
            state = _first(outcome.get("success")) or {}
            g.title = f"{g.label} — accepted"
            if isinstance(state, dict) and state.get("status"):
                g.lines.append(f"then {state['status']} at step {state.get('step')}")
            g.status = "completed"


def _duration(value: str | None) -> str:
    """Protobuf's "7200s" as "2h 0m"."""
    try:
        seconds = float((value or "").removesuffix("s"))
    except ValueError:
        return value or "?"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return " ".join(p for p in (f"{days}d" if days else "", f"{hours}h" if hours else "",
                                f"{minutes}m" if minutes else "") if p)


def _name_unlabelled_timers(groups: list[Group]) -> None:
    """Older histories carry no timer summaries: a fired timer is named by the warning or breach recorded next."""
    for i, g in enumerate(groups):
        if g.kind != "timers" or g.label or g.status != "fired":
            continue
        fired_at = g.events[-1]["id"]
        for later in groups[i + 1:]:
            if later.kind == "steps" and later.id > fired_at:
                reached = next((line for line in [later.title, *later.lines] if line.startswith(DEADLINE)), None)
                if reached:
                    g.title = f"timer fired: {reached.removeprefix(DEADLINE)}"
                break


def tell(runs: list[Run], decoded: list[list[dict]]) -> list[Group]:
    """Every run's events, decoded, as groups in the order their first events happened."""
    groups: list[Group] = []
    for run, events in zip(runs, decoded):
        teller = _Teller(run, {p.activity_id: p for p in run.pending})
        for event in events:
            teller.tell(event)
        _name_unlabelled_timers(teller.groups)
        groups += teller.groups
    return groups


async def load_history(client, workflow_id: str) -> tuple[list[Run], list[Group]]:
    """Every run of the concern's workflow from Temporal, decoded with the client's data converter, told as groups."""
    runs = await fetch_runs(client, workflow_id)
    decoder = Decoder(client.data_converter)
    decoded = [[await decoder.event(e) for e in run.events] for run in runs]
    return runs, tell(runs, decoded)


def select(groups: list[Group], kinds: set[str], text: str) -> list[Group]:
    """The groups of the chosen kinds (all when none is chosen) whose text contains `text`."""
    kinds = {k for k in kinds if k in KINDS}
    text = text.strip()
    return [g for g in groups if g.matches(kinds, text)]
