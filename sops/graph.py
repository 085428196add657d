"""Draw a SOP as a Mermaid flowchart, optionally highlighting the step a concern is in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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
        return "survey" if brief else f"survey, waits {format_duration(step.wait)}"
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
