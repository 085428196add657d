"""Describe a SOP for drawing: a Mermaid flowchart for the command line, the graph the pages' flow chart lays out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from sops.schema import (
    AskCustomerStep,
    AutomateStep,
    DecideStep,
    EndStep,
    HumanStep,
    NotifyStep,
    SopDefinition,
    SurveyStep,
    format_duration,
)

# Mermaid entity codes: inside a quoted label these are the only safe spellings.
_ENTITIES = {
    "#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "[": "#91;", "]": "#93;",
    "{": "#123;", "}": "#125;", "(": "#40;", ")": "#41;", "|": "#124;", "`": "#96;",
}
_SPECIAL = re.compile("|".join(re.escape(c) for c in _ENTITIES))
_SHAPES = {
    "automate": ('[["', '"]]'),
    "decide": ('{"', '"}'),
    "human": ('["', '"]'),
    "ask_customer": ('[/"', '"/]'),
    "notify": ('>"', '"]'),
    "survey": ('{{"', '"}}'),
    "end": ('(["', '"])'),
}
_CLASSES = (
    "classDef current fill:#fde68a,stroke:#b45309,stroke-width:3px",
    "classDef entry stroke-width:3px",
    "classDef missing fill:#fee2e2,stroke:#b91c1c,stroke-dasharray:4",
)


def escape_label(text: str) -> str:
    """Text made safe for a quoted Mermaid label."""
    return _SPECIAL.sub(lambda m: _ENTITIES[m.group(0)], " ".join(text.split()))


def describe_step(step: Any, *, brief: bool = False) -> str:
    """One line on what a step does; `brief` for a box on a chart, else with its messages and templates."""
    if isinstance(step, AutomateStep):
        return f"{'automatic' if brief else 'automate'}: {step.action}"
    if isinstance(step, DecideStep):
        return f"decide on {step.on}"
    if isinstance(step, HumanStep):
        skills = f" ({', '.join(step.skills)})" if step.skills else ""
        after = format_duration(step.escalate_after) if step.escalate_after else ""
        timer = (f", {after}" if brief else f", escalates after {after}") if after else ""
        return f"L{step.level} agent{skills}{timer}"
    if isinstance(step, AskCustomerStep):
        wait = format_duration(step.wait)
        return f"ask customer, {wait}" if brief else f"ask customer: {step.message}, waits {wait}"
    if isinstance(step, NotifyStep):
        return f"notify {step.to}" if brief else f"notify {step.to}: {step.template}"
    if isinstance(step, SurveyStep):
        return f"survey, {format_duration(step.wait)}" if brief else f"survey, waits {format_duration(step.wait)}"
    if isinstance(step, EndStep):
        return f"end: {step.result}"
    return step.type


def _node_ids(step_ids: list[str]) -> dict[str, str]:
    """Mermaid-safe, unique node ids (a bare `end` would close a subgraph)."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for sid in step_ids:
        base = "step_" + re.sub(r"[^A-Za-z0-9_]", "_", sid)
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}_{n}", n + 1
        ids[sid] = candidate
        used.add(candidate)
    return ids


def to_mermaid(definition: SopDefinition | Mapping[str, Any], *, current: str | None = None) -> str:
    """A `flowchart TD` of the SOP, edges labelled with outcomes, `current` drawn in the current class."""
    sop = definition if isinstance(definition, SopDefinition) else SopDefinition.model_validate(definition)
    if current is not None and current not in sop.steps:
        raise ValueError(f"step {current!r} is not in SOP {sop.id!r}")
    targets = [t for step in sop.steps.values() for _, t in step.edges()]
    missing = [t for t in dict.fromkeys(targets) if t not in sop.steps]
    ids = _node_ids([*sop.steps, *missing])
    lines = ["flowchart TD"]
    for sid, step in sop.steps.items():
        opening, closing = _SHAPES[step.type]
        name = escape_label(step.title or sid)
        lines.append(f"    {ids[sid]}{opening}{name}<br/>{escape_label(describe_step(step))}{closing}")
    for target in missing:
        lines.append(f'    {ids[target]}["{escape_label(target)}<br/>missing step"]:::missing')
    for sid, step in sop.steps.items():
        grouped: dict[str, list[str]] = {}
        for label, target in step.edges():
            grouped.setdefault(target, []).append(label)
        for target, labels in grouped.items():
            text = " / ".join(escape_label(label) for label in labels if label)
            arrow = f'-->|"{text}"|' if text else "-->"
            lines.append(f"    {ids[sid]} {arrow} {ids[target]}")
    lines += [f"    {c}" for c in _CLASSES]
    if sop.start in sop.steps:
        lines.append(f"    class {ids[sop.start]} entry")
    if current is not None:
        lines.append(f"    class {ids[current]} current")
    return "\n".join(lines) + "\n"


# ---- the graph the pages draw (web/templates/flowchart/_chart.html lays it out with ELK) --------------------

TYPE_NAMES = {
    "automate": "automatic (e-level)", "decide": "decision", "human": "agent queue", "ask_customer": "ask the customer",
    "notify": "notification", "survey": "survey", "end": "end", "missing": "missing step",
}
Mark = Literal["added", "removed", "changed"]


def step_details(step: Any) -> list[tuple[str, str]]:
    """What a step is and does, as (name, value) rows for the chart's step details."""
    rows = [("type", TYPE_NAMES.get(step.type, step.type))]
    if isinstance(step, AutomateStep):
        rows.append(("action", step.action))
    elif isinstance(step, DecideStep):
        rows.append(("decides on", step.on))
    elif isinstance(step, HumanStep):
        rows += [("level", f"L{step.level}"), ("skills", ", ".join(step.skills) or "any")]
        if step.escalate_after:
            rows.append(("escalates after", format_duration(step.escalate_after)))
    elif isinstance(step, AskCustomerStep):
        rows += [("message", step.message), ("waits", format_duration(step.wait))]
    elif isinstance(step, NotifyStep):
        rows += [("to", step.to), ("template", step.template)]
    elif isinstance(step, SurveyStep):
        rows.append(("waits", format_duration(step.wait)))
    elif isinstance(step, EndStep):
        rows.append(("result", step.result))
    if step.max_visits is not None:
        rows.append(("at most", f"{step.max_visits} visit{'s' if step.max_visits != 1 else ''}, "
                                f"then {step.on_max_visits}"))
    return rows


def step_label(step_id: str, step: Any) -> str:
    """A step's name on the chart: its title, else its id written as words."""
    return step.title or re.sub(r"[_-]+", " ", step_id).strip().capitalize() or step_id


def chart_graph(definition: SopDefinition | Mapping[str, Any], *, current: str | None = None,
                passed: Sequence[str] = (), marks: Mapping[str, Mark] | None = None) -> dict[str, Any]:
    """The SOP as JSON-ready nodes and edges for the flow chart; `passed` is the steps a concern went through, in order.

    Consecutive steps of `passed` that an edge joins mark that edge as taken; `marks` tags steps for a compare view.
    """
    sop = definition if isinstance(definition, SopDefinition) else SopDefinition.model_validate(definition)
    marks = marks or {}
    visited = set(passed)
    taken = {(a, b) for a, b in zip(passed, passed[1:])}
    titles = {sid: step_label(sid, step) for sid, step in sop.steps.items()}
    nodes = []
    for sid, step in sop.steps.items():
        outcomes = [{"outcome": label, "target": target, "target_label": titles.get(target, target)}
                    for label, target in step.edges()]
        nodes.append({
            "id": sid, "label": titles[sid], "type": step.type, "level": getattr(step, "level", None),
            "summary": describe_step(step, brief=True), "details": [list(row) for row in step_details(step)],
            "outcomes": outcomes, "start": sid == sop.start, "current": sid == current, "visited": sid in visited,
            "mark": marks.get(sid),
        })
    missing = [t for step in sop.steps.values() for _, t in step.edges() if t not in sop.steps]
    for target in dict.fromkeys(missing):
        nodes.append({"id": target, "label": target, "type": "missing", "level": None, "summary": "missing step",
                      "details": [["type", TYPE_NAMES["missing"]]], "outcomes": [], "start": False,
                      "current": False, "visited": False, "mark": marks.get(target)})
    edges = []
    for sid, step in sop.steps.items():
        grouped: dict[str, list[str]] = {}
        for label, target in step.edges():
            grouped.setdefault(target, []).append(label)
        for target, labels in grouped.items():
            edges.append({"id": f"{sid}->{target}", "source": sid, "target": target,
                          "label": " / ".join(label for label in labels if label),
                          "outcomes": labels, "visited": (sid, target) in taken})
    return {"id": sop.id, "version": sop.version, "title": sop.title, "start": sop.start, "current": current,
            "visited": [sid for sid in sop.steps if sid in visited], "nodes": nodes, "edges": edges}


class TimelineEntryLike(Protocol):
    kind: str
    meta: dict | None
    body: str


# The timeline kinds a concern's workflow writes as it passes a step (meta.step names it since notify and
# survey steps carry it; earlier entries of those kinds are matched to their step by type and template).
PASSAGE_KINDS = {"step": None, "decided": "decide", "bounded": None, "notice": "notify", "team_notice": "notify",
                 "survey": "survey"}


def steps_passed(definition: SopDefinition | Mapping[str, Any], timeline: Iterable[TimelineEntryLike]) -> list[str]:
    """The steps of the SOP a concern went through, in order, read from its timeline (oldest entry first)."""
    sop = definition if isinstance(definition, SopDefinition) else SopDefinition.model_validate(definition)
    passed: list[str] = []
    for entry in timeline:
        if entry.kind not in PASSAGE_KINDS:
            continue
        meta = entry.meta or {}
        sid = meta.get("step") or _guess_step(sop, entry, passed[-1] if passed else None)
        if sid in sop.steps:
            passed.append(sid)
    return passed


def _guess_step(sop: SopDefinition, entry: TimelineEntryLike, previous: str | None) -> str | None:
    """The one step an older notify or survey entry can stand for, or None when that is not certain."""
    kind = PASSAGE_KINDS[entry.kind]
    if kind is None:
        return None
    candidates = [sid for sid, step in sop.steps.items() if step.type == kind]
    if entry.kind in ("notice", "team_notice"):
        to = "customer" if entry.kind == "notice" else "team"
        template = (entry.meta or {}).get("template")
        candidates = [sid for sid in candidates if sop.steps[sid].to == to and
                      (sop.steps[sid].template == template if template else f"'{sop.steps[sid].template}'" in entry.body)]
    if len(candidates) > 1 and previous in sop.steps:
        candidates = [sid for sid in candidates if sid in sop.targets(previous)]
    return candidates[0] if len(candidates) == 1 else None


def compare_graph(old: SopDefinition | Mapping[str, Any], new: SopDefinition | Mapping[str, Any]) -> dict[str, Any]:
    """The graph of `new` with the steps and edges only `old` has, each step and edge marked added, removed or changed."""
    old = old if isinstance(old, SopDefinition) else SopDefinition.model_validate(old)
    new = new if isinstance(new, SopDefinition) else SopDefinition.model_validate(new)
    marks: dict[str, Mark] = {}
    for sid, step in new.steps.items():
        if sid not in old.steps:
            marks[sid] = "added"
        elif step.model_dump(mode="json") != old.steps[sid].model_dump(mode="json"):
            marks[sid] = "changed"
    graph = chart_graph(new, marks=marks)
    before = chart_graph(old)
    known = {n["id"] for n in graph["nodes"]}
    graph["nodes"] += [{**n, "mark": "removed"} for n in before["nodes"] if n["id"] not in known]
    old_edges = {e["id"] for e in before["edges"]}
    for edge in graph["edges"]:
        edge["mark"] = None if edge["id"] in old_edges else "added"
    new_edges = {e["id"] for e in graph["edges"]}
    graph["edges"] += [{**e, "mark": "removed"} for e in before["edges"] if e["id"] not in new_edges]
    return graph
