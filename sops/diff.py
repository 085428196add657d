"""What changed between two versions of a SOP: steps added, removed and changed field by field, outcomes
rewired, SLA policy and the rest of the header; and a line diff of their YAML."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from sops.schema import SopDefinition

_EDGE_FIELDS = ("outcomes", "cases", "default", "next", "on_max_visits")
_HEADER_FIELDS = ("title", "sla", "start", "applies_to")


@dataclass(frozen=True)
class FieldChange:
    """One field of a step or of the SOP with its value before and after (None when absent)."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Rewiring:
    """An outcome of a step that now leads elsewhere (or is new, or is gone)."""

    step: str
    outcome: str
    before: str | None
    after: str | None


@dataclass
class SopChanges:
    """Every difference between two definitions of one SOP."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[FieldChange]] = field(default_factory=dict)
    rewired: list[Rewiring] = field(default_factory=list)
    header: list[FieldChange] = field(default_factory=list)

    @property
    def sla(self) -> FieldChange | None:
        return next((c for c in self.header if c.field == "sla"), None)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.rewired or self.header)

    def marks(self) -> tuple[dict[str, str], dict[str, str]]:
        """Per-step marks for the chart of the older and of the newer definition."""
        changed = set(self.changed) | {r.step for r in self.rewired}
        before = {**{s: "changed" for s in changed if s not in self.added}, **{s: "removed" for s in self.removed}}
        after = {**{s: "changed" for s in changed if s not in self.removed}, **{s: "added" for s in self.added}}
        return before, after

    def summary(self) -> list[str]:
        """One line per difference, for the command line and the publish page."""
        lines = [f"{c.field}: {_show(c.before)} -> {_show(c.after)}" for c in self.header]
        lines += [f"step {s!r} added" for s in self.added]
        lines += [f"step {s!r} removed" for s in self.removed]
        for sid, changes in self.changed.items():
            lines += [f"step {sid!r} {c.field}: {_show(c.before)} -> {_show(c.after)}" for c in changes]
        lines += [f"step {r.step!r} outcome {r.outcome!r}: {r.before or '(none)'} -> {r.after or '(none)'}"
                  for r in self.rewired]
        return lines


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def _as_dict(definition: SopDefinition | dict) -> dict:
    sop = definition if isinstance(definition, SopDefinition) else SopDefinition.model_validate(definition)
    return sop.model_dump(mode="json", exclude_none=True)


def _wiring(step: dict) -> dict[str, str]:
    wires = {**step.get("outcomes", {}), **{f"case {k}": v for k, v in step.get("cases", {}).items()}}
    for name in ("default", "next", "on_max_visits"):
        if name in step:
            wires[name] = step[name]
    return wires


def compare(before: SopDefinition | dict, after: SopDefinition | dict) -> SopChanges:
    """The differences from `before` to `after` (version numbers are not a difference)."""
    old, new = _as_dict(before), _as_dict(after)
    changes = SopChanges()
    for name in _HEADER_FIELDS:
        if old.get(name) != new.get(name):
            changes.header.append(FieldChange(name, old.get(name), new.get(name)))
    old_steps, new_steps = old["steps"], new["steps"]
    changes.added = [s for s in new_steps if s not in old_steps]
    changes.removed = [s for s in old_steps if s not in new_steps]
    for sid in (s for s in new_steps if s in old_steps):
        a, b = old_steps[sid], new_steps[sid]
        fields = [f for f in dict.fromkeys([*a, *b]) if f not in _EDGE_FIELDS and a.get(f) != b.get(f)]
        if fields:
            changes.changed[sid] = [FieldChange(f, a.get(f), b.get(f)) for f in fields]
        wa, wb = _wiring(a), _wiring(b)
        for outcome in dict.fromkeys([*wa, *wb]):
            if wa.get(outcome) != wb.get(outcome):
                changes.rewired.append(Rewiring(sid, outcome, wa.get(outcome), wb.get(outcome)))
    return changes


@dataclass(frozen=True)
class DiffLine:
    """A line of a unified diff: `add`, `del`, `hunk` or `same`."""

    kind: str
    text: str


def text_diff(before: str, after: str, *, old_name: str = "before", new_name: str = "after") -> list[DiffLine]:
    """The unified diff of two YAML texts, line by line."""
    lines = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), old_name, new_name, lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        lines.append(DiffLine({"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "same"), line))
    return lines
