"""A SOP as the text a process owner types: size limit, duplicate keys, and every problem with its line."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from sops.loader import _YamlLoader
from sops.validate import Problem, validate_sop

# Large enough for any flow chart a person maintains (the shipped ones are under 3 KB), small enough
# that parsing and drawing it never holds a web thread for long.
MAX_SOP_BYTES = 128 * 1024


@dataclass(frozen=True)
class Finding:
    """One problem of a SOP text: the step it is in (None for the SOP as a whole), its line, and what is wrong."""

    step: str | None
    line: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line else []
        where += [f"step {self.step!r}"] if self.step else []
        return f"{', '.join(where)}: {self.message}" if where else self.message


class _Positions:
    """Lines of the top-level keys, of each step, and of each field and value inside a step."""

    def __init__(self, root: Any) -> None:
        self.top: dict[str, int] = {}
        self.steps: dict[str, int] = {}
        self.fields: dict[str, dict[str, int]] = {}
        self.values: dict[str, dict[str, int]] = {}
        if not isinstance(root, yaml.MappingNode):
            return
        for key, value in root.value:
            self.top.setdefault(str(key.value), key.start_mark.line + 1)
            if key.value == "steps" and isinstance(value, yaml.MappingNode):
                for step_key, body in value.value:
                    sid = str(step_key.value)
                    self.steps.setdefault(sid, step_key.start_mark.line + 1)
                    self.fields[sid], self.values[sid] = {}, {}
                    self._walk(sid, body)

    def _walk(self, sid: str, node: Any) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.fields[sid].setdefault(str(key.value), key.start_mark.line + 1)
                self._walk(sid, value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                self._walk(sid, item)
        elif isinstance(node, yaml.ScalarNode):
            self.values[sid].setdefault(str(node.value), node.start_mark.line + 1)

    def line_of(self, problem: Problem) -> int | None:
        """The most precise line for a problem: the field or value it names inside its step, else the step."""
        quoted = re.findall(r"'([^']*)'", problem.reason)
        if problem.step is None:
            for name in [problem.reason.split(":", 1)[0].split(".")[0], *quoted]:
                if name in self.top:
                    return self.top[name]
            for word, field in (("SLA policy", "sla"), ("start step", "start"), ("id ", "id")):
                if word in problem.reason and field in self.top:
                    return self.top[field]
            return None
        fields, values = self.fields.get(problem.step, {}), self.values.get(problem.step, {})
        leading = problem.reason.split(":", 1)[0].split(".")[0]
        for name in [leading, *quoted]:
            if name in fields:
                return fields[name]
        for name in quoted:
            if name in values:
                return values[name]
        for word, field in (("action", "action"), ("template", "message"), ("template", "template"),
                            ("escalate_after", "escalate_after"), ("outcome", "outcomes")):
            if word in problem.reason and field in fields:
                return fields[field]
        return self.steps.get(problem.step)


def _duplicates(node: Any, path: tuple[str, ...] = ()) -> list[Finding]:
    """Every key given twice in one mapping, anywhere in the document."""
    found: list[Finding] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, Any] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in first and isinstance(key, yaml.ScalarNode):
                earlier = first[name].start_mark.line + 1
                if path == ("steps",):
                    found.append(Finding(name, key.start_mark.line + 1,
                                         f"a second step named {name!r}; the first is on line {earlier} "
                                         "(rename one of them)"))
                else:
                    step = path[1] if len(path) > 1 and path[0] == "steps" else None
                    where = ".".join(path[2:] if step else path)
                    field = f"{where}.{name}" if where else name
                    found.append(Finding(step, key.start_mark.line + 1,
                                         f"{field!r} is given twice; the first is on line {earlier}"))
            first.setdefault(name, key)
            found += _duplicates(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _duplicates(item, path)
    return found


def too_large(text: str, limit: int = MAX_SOP_BYTES) -> str | None:
    """Why `text` is refused for its size, or None."""
    size = len(text.encode("utf-8"))
    if size <= limit:
        return None
    return f"the SOP has {size:,} bytes; a SOP may have at most {limit:,} bytes ({limit // 1024} KB)"


def read_sop_text(text: str) -> tuple[Any, _Positions | None, list[Finding]]:
    """The data of a SOP text, where its parts are, and why it cannot be read (if it cannot)."""
    refused = too_large(text)
    if refused:
        return None, None, [Finding(None, None, refused)]
    try:
        root = yaml.compose(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        return None, None, [Finding(None, line, f"not valid YAML: {reason}" + (f" ({context})" if context else ""))]
    positions = _Positions(root)
    duplicates = _duplicates(root)
    if duplicates:
        return None, positions, duplicates
    if root is None:
        return None, positions, [Finding(None, None, "the SOP is empty: write its id, title, sla, start and steps")]
    loader = _YamlLoader(text)
    try:
        return loader.construct_document(root), positions, []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, positions, [Finding(None, mark.line + 1 if mark else None, f"not valid YAML: {exc}")]
    finally:
        loader.dispose()


def check_sop_text(
    text: str,
    *,
    actions: set[str] | frozenset[str] | None = None,
    templates: set[str] | frozenset[str] | None = None,
    policies: set[str] | frozenset[str] | None = None,
) -> tuple[Any, list[Finding], _Positions | None]:
    """The SOP's data (None if unreadable), every problem of it with its step and line, and where its parts are."""
    data, positions, findings = read_sop_text(text)
    if findings:
        return data, findings, positions
    problems = validate_sop(data, actions=actions, templates=templates, policies=policies)
    return data, [Finding(p.step, positions.line_of(p) if positions else None, p.reason) for p in problems], positions
