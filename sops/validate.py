"""Check a SOP before it is published and report every problem at once, each with its step."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import TypeAdapter, ValidationError

from sops.schema import (
    STEP_TYPES,
    WAITING_STEP_TYPES,
    AskCustomerStep,
    AutomateStep,
    Channel,
    DecideStep,
    HumanStep,
    Priority,
    SopDefinition,
    Step,
    Tier,
)

_STEP_ADAPTER: TypeAdapter[Any] = TypeAdapter(Step)
_STEP_ID_RE = re.compile(r"[A-Za-z0-9_-]+")
_CASE_VALUES = {"priority": get_args(Priority), "channel": get_args(Channel), "tier": get_args(Tier)}
_RAW_TARGET_FIELDS = ("default", "next")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a SOP, and the step it is in (None for the SOP as a whole)."""

    step: str | None
    reason: str

    def __str__(self) -> str:
        return self.reason if self.step is None else f"step {self.step!r}: {self.reason}"


@dataclass
class _Node:
    type: str | None
    edges: list[tuple[str, str]]
    model: Any = None
    action: str | None = None
    template: str | None = None


def _catalog_names(kind: Any, source: Any, get: Any) -> dict[str, str | None]:
    """The action or template a step names, read from a model or, if it failed the schema, its raw mapping."""
    field = {"automate": "action", "ask_customer": "message", "notify": "template"}.get(kind)
    value = get(source, field) if field else None
    name = value if isinstance(value, str) else None
    return {"action": name} if kind == "automate" else {"template": name}


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def describe_error(error: Any, loc: tuple[Any, ...]) -> str:
    """A pydantic error as a sentence a process owner can act on."""
    kind, field = error["type"], _field(loc)
    ctx = error.get("ctx", {})
    if kind == "union_tag_invalid":
        return f"unknown step type {ctx.get('tag')!r} (expected one of {', '.join(STEP_TYPES)})"
    if kind == "union_tag_not_found":
        return f"missing field 'type' (one of {', '.join(STEP_TYPES)})"
    if kind == "missing":
        return f"missing field {field!r}"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    if kind == "model_attributes_type":
        return f"{field + ': ' if field else ''}must be a mapping of fields"
    if kind == "string_pattern_mismatch":
        return f"{field}: {error['input']!r} must be lowercase letters and digits joined by '-' or '_'"
    message = error["msg"].removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def _schema_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if len(loc) >= 2 and loc[0] == "steps":
            rest = loc[2:]
            if rest and rest[0] in STEP_TYPES:  # the discriminator's tag, not a field
                rest = rest[1:]
            problems.append(Problem(str(loc[1]), describe_error(error, rest)))
        else:
            problems.append(Problem(None, describe_error(error, loc)))
    return problems


def _raw_edges(raw: Any) -> list[tuple[str, str]]:
    """Best-effort targets of a step that failed the schema, so the graph checks still see it."""
    if not isinstance(raw, Mapping):
        return []
    edges = []
    for field in ("outcomes", "cases"):
        if isinstance(raw.get(field), Mapping):
            edges += [(str(k), v) for k, v in raw[field].items() if isinstance(v, str)]
    edges += [(f, raw[f]) for f in _RAW_TARGET_FIELDS if isinstance(raw.get(f), str)]
    return edges


def _nodes(definition: Mapping[str, Any] | SopDefinition) -> dict[str, _Node]:
    if isinstance(definition, SopDefinition):
        return {
            sid: _Node(step.type, step.edges(), step, **_catalog_names(step.type, step, getattr))
            for sid, step in definition.steps.items()
        }
    steps = definition.get("steps")
    if not isinstance(steps, Mapping):
        return {}
    nodes = {}
    for sid, raw in steps.items():
        try:
            step = _STEP_ADAPTER.validate_python(raw)
            nodes[str(sid)] = _Node(step.type, step.edges(), step, **_catalog_names(step.type, step, getattr))
        except ValidationError:
            raw = raw if isinstance(raw, Mapping) else {}
            kind = raw.get("type") if isinstance(raw.get("type"), str) else None
            names = _catalog_names(kind, raw, lambda source, field: source.get(field))
            nodes[str(sid)] = _Node(kind, _raw_edges(raw), **names)
    return nodes


def _unknown(kind: str, name: str, known: set[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"unknown {kind} {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _step_problems(sid: str, node: _Node, actions: Any, templates: Any) -> list[Problem]:
    step, found = node.model, []
    if not _STEP_ID_RE.fullmatch(sid):
        found.append("a step id may only hold letters, digits, '_' and '-'")
    if actions is not None and node.action is not None and node.action not in actions:
        found.append(_unknown("action", node.action, actions))
    if templates is not None and node.template is not None and node.template not in templates:
        found.append(_unknown("template", node.template, templates))
    if isinstance(step, AutomateStep) and not step.outcomes:
        found.append("an automate step needs at least one outcome")
    if isinstance(step, AskCustomerStep):
        if "replied" not in step.outcomes and not {"solved", "not_solved"} <= step.outcomes.keys():
            found.append("a reply has nowhere to go: give 'replied', or both 'solved' and 'not_solved'")
    if isinstance(step, DecideStep) and step.on in _CASE_VALUES:
        allowed = _CASE_VALUES[step.on]
        for case in step.cases:
            if case not in allowed:
                found.append(f"case {case!r} is not a {step.on} (one of {', '.join(allowed)})")
    if isinstance(step, HumanStep):
        if all(target == sid for target in step.outcomes.values()):
            found.append("a human step without any way out: every outcome leads back to it")
        if step.escalate_after is not None and not {"timeout", "escalated"} & step.outcomes.keys():
            found.append("escalate_after is set but there is no 'timeout' or 'escalated' outcome")
    return [Problem(sid, reason) for reason in found]


def _reach(starts: list[str], successors: dict[str, list[str]]) -> set[str]:
    seen, stack = set(starts), list(starts)
    while stack:
        for nxt in successors.get(stack.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _loops(members: set[str], successors: dict[str, list[str]]) -> list[list[str]]:
    """One concrete cycle per strongly connected group of `members` (edges leaving the group ignored)."""
    inner = {k: [t for t in successors[k] if t in members] for k in members}
    loops, done = [], set()
    for sid in successors:
        if sid not in members or sid in done:
            continue
        group = _reach([sid], inner) & {k for k in members if sid in _reach([k], inner)}
        if sid not in _reach(inner[sid], inner):
            continue
        done |= group
        loops.append(_cycle_through(sid, {k: [t for t in inner[k] if t in group] for k in group}))
    return loops


def _instant_loops(nodes: dict[str, _Node], successors: dict[str, list[str]]) -> list[list[str]]:
    """One concrete cycle per strongly connected group of steps that never wait."""
    instant = {sid for sid, node in nodes.items() if node.type is not None and node.type not in WAITING_STEP_TYPES}
    instant &= {sid for sid, node in nodes.items() if node.model is not None or node.type in STEP_TYPES}
    return _loops(instant, successors)


def _unbounded_loops(nodes: dict[str, _Node], successors: dict[str, list[str]]) -> list[list[str]]:
    """Cycles that wait (on the customer or a survey) but can come round again and again without a person.

    Every such cycle must pass a human step or a step with `max_visits`, so the steps that are neither
    must not form a cycle. Cycles that never wait are reported as instant loops instead.
    """
    free = {sid for sid, node in nodes.items()
            if node.model is not None and node.type != "human" and node.model.max_visits is None}
    return [loop for loop in _loops(free, successors)
            if any(nodes[sid].type in WAITING_STEP_TYPES for sid in loop)]


def _cycle_through(first: str, successors: dict[str, list[str]]) -> list[str]:
    paths = {first: [first]}
    queue = [first]
    while queue:
        current = queue.pop(0)
        for nxt in successors[current]:
            if nxt == first:
                return paths[current] + [first]
            if nxt not in paths:
                paths[nxt] = paths[current] + [nxt]
                queue.append(nxt)
    return [first, first]


def _graph_problems(start: Any, nodes: dict[str, _Node]) -> list[Problem]:
    problems = []
    successors = {sid: list(dict.fromkeys(t for _, t in node.edges if t in nodes)) for sid, node in nodes.items()}
    for sid, node in nodes.items():
        for target in dict.fromkeys(t for _, t in node.edges if t not in nodes):
            problems.append(Problem(sid, f"target {target!r} does not exist"))
    has_start = isinstance(start, str) and start in nodes
    if isinstance(start, str) and not has_start:
        problems.append(Problem(None, f"start step {start!r} does not exist"))
    reached = _reach([start], successors) if has_start else set(nodes)
    if has_start:
        problems += [Problem(sid, "unreachable from the start step") for sid in nodes if sid not in reached]
    for loop in _instant_loops(nodes, successors):
        path = " -> ".join(loop)
        problems.append(Problem(loop[0], f"loop {path} has no waiting step (human, ask_customer or survey)"))
    for loop in _unbounded_loops(nodes, successors):
        path = " -> ".join(loop)
        problems.append(Problem(loop[0], f"loop {path} can repeat forever without a person: give one of its "
                                         "steps max_visits and on_max_visits, or lead it through a human step"))
    ends = [sid for sid, node in nodes.items() if node.type == "end"]
    if not ends:
        problems.append(Problem(None, "there is no end step"))
    elif has_start and not reached & set(ends):
        problems.append(Problem(None, f"no end step is reachable from the start step {start!r}"))
    else:
        predecessors: dict[str, list[str]] = {sid: [] for sid in nodes}
        for sid, targets in successors.items():
            for target in targets:
                predecessors[target].append(sid)
        finishing = _reach(ends, predecessors)
        stuck = [sid for sid in nodes if sid in reached and sid not in finishing]
        problems += [Problem(sid, "no end step can be reached from here") for sid in stuck]
    return problems


def validate_sop(
    definition: Mapping[str, Any] | SopDefinition,
    *,
    actions: set[str] | frozenset[str] | None = None,
    templates: set[str] | frozenset[str] | None = None,
    policies: set[str] | frozenset[str] | None = None,
) -> list[Problem]:
    """Every problem of a SOP (schema, catalogue and flow), or an empty list if it may be published."""
    if not isinstance(definition, (Mapping, SopDefinition)):
        return [Problem(None, f"a SOP must be a mapping of fields, not {type(definition).__name__}")]
    problems: list[Problem] = []
    if not isinstance(definition, SopDefinition):
        try:
            SopDefinition.model_validate(definition)
        except ValidationError as exc:
            problems += _schema_problems(exc)
    sla = definition.sla if isinstance(definition, SopDefinition) else definition.get("sla")
    if policies is not None and isinstance(sla, str) and sla not in policies:
        problems.append(Problem(None, _unknown("SLA policy", sla, policies)))
    nodes = _nodes(definition)
    for sid, node in nodes.items():
        problems += _step_problems(sid, node, actions, templates)
    start = definition.start if isinstance(definition, SopDefinition) else definition.get("start")
    problems += _graph_problems(start, nodes)
    return list(dict.fromkeys(problems))
