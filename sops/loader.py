"""Read SOPs, SLA policies and business calendars from YAML files (the only module of sops/ that does I/O).

Layout of a definitions directory:

- one SOP per `*.yaml` file (the file name is free; the `id` inside counts, and must be unique);
- `sla.yaml` holds both the calendars, under `calendars:`, and the policies, under `policies:`,
  each a mapping from id to body (an `id` inside the body is optional and must match the key).
  Every policy's `calendar` must name a calendar of the same file.

YAML is read safely and only `true`/`false` are booleans, so a decide step's `on:` stays a key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sops.schema import BusinessCalendar, SlaPolicy, SopDefinition
from sops.validate import Problem, describe_error, validate_sop

DEFINITIONS_DIR = Path(__file__).parent / "definitions"
SLA_FILE_NAME = "sla.yaml"
_Model = TypeVar("_Model", bound=BaseModel)


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML where yes/no/on/off are plain strings and a key given twice in one mapping is refused.

    PyYAML keeps the last of two equal keys without a word, so a second step with the name of an earlier
    one would silently replace it.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # an unhashable key; the base class reports it
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        f"while constructing a mapping (line {first.start_mark.line + 1})", node.start_mark,
                        f"found duplicate key {key!r} (first given on line {first.start_mark.line + 1})",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class SopInvalid(Exception):
    """A SOP or SLA file that does not validate, with every problem found in it."""

    def __init__(self, path: Path | str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        lines = [f"{self.path}: {count} problem{'s' if count != 1 else ''}"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


def parse_yaml(text: str, source: Path | str = "<text>") -> Any:
    """YAML text as Python data, or SopInvalid with the parser's message."""
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SopInvalid(source, [Problem(None, f"not valid YAML: {exc}")]) from None


def sop_from_yaml(
    text: str,
    *,
    source: Path | str = "<text>",
    actions: set[str] | frozenset[str] | None = None,
    templates: set[str] | frozenset[str] | None = None,
    policies: set[str] | frozenset[str] | None = None,
) -> SopDefinition:
    """A validated SOP from YAML text (the path the API's publish route takes)."""
    data = parse_yaml(text, source)
    problems = validate_sop(data, actions=actions, templates=templates, policies=policies)
    if problems:
        raise SopInvalid(source, problems)
    return SopDefinition.model_validate(data)


def load_sop_file(
    path: Path | str,
    *,
    actions: set[str] | frozenset[str] | None = None,
    templates: set[str] | frozenset[str] | None = None,
    policies: set[str] | frozenset[str] | None = None,
) -> SopDefinition:
    """A validated SOP from one YAML file."""
    path = Path(path)
    return sop_from_yaml(
        path.read_text(encoding="utf-8"), source=path, actions=actions, templates=templates, policies=policies
    )


def load_definitions(
    directory: Path | str = DEFINITIONS_DIR,
    *,
    actions: set[str] | frozenset[str] | None = None,
    templates: set[str] | frozenset[str] | None = None,
    policies: set[str] | frozenset[str] | None = None,
) -> dict[str, SopDefinition]:
    """Every SOP of a directory by id, skipping sla.yaml."""
    found: dict[str, SopDefinition] = {}
    origin: dict[str, Path] = {}
    for path in sorted([*Path(directory).glob("*.yaml"), *Path(directory).glob("*.yml")]):
        if path.name == SLA_FILE_NAME:
            continue
        sop = load_sop_file(path, actions=actions, templates=templates, policies=policies)
        if sop.id in found:
            raise SopInvalid(path, [Problem(None, f"id {sop.id!r} is already used by {origin[sop.id].name}")])
        found[sop.id], origin[sop.id] = sop, path
    return found


def _load_section(path: Path, section: str, model: type[_Model]) -> dict[str, _Model]:
    data = parse_yaml(path.read_text(encoding="utf-8"), path)
    entries = data.get(section) if isinstance(data, Mapping) else None
    if not isinstance(entries, Mapping):
        raise SopInvalid(path, [Problem(None, f"{section!r} must be a mapping from id to definition")])
    kind = {"policies": "policy", "calendars": "calendar"}.get(section, section)
    found: dict[str, _Model] = {}
    problems: list[Problem] = []
    for key, body in entries.items():
        if not isinstance(body, Mapping):
            problems.append(Problem(None, f"{kind} {key!r}: must be a mapping"))
            continue
        if body.get("id", key) != key:
            problems.append(Problem(None, f"{kind} {key!r}: id {body['id']!r} does not match its key"))
            continue
        try:
            found[str(key)] = model.model_validate({**body, "id": str(key)})
        except ValidationError as exc:
            problems += [Problem(None, f"{kind} {key!r}: {describe_error(e, tuple(e['loc']))}") for e in exc.errors()]
    if problems:
        raise SopInvalid(path, problems)
    return found


def load_calendars(path: Path | str = DEFINITIONS_DIR / SLA_FILE_NAME) -> dict[str, BusinessCalendar]:
    """The business calendars of an SLA file by id (not pinned: pin them before a workflow gets one)."""
    return _load_section(Path(path), "calendars", BusinessCalendar)


def load_policies(path: Path | str = DEFINITIONS_DIR / SLA_FILE_NAME) -> dict[str, SlaPolicy]:
    """The SLA policies of an SLA file by id, each checked to name one of its calendars."""
    policies = _load_section(Path(path), "policies", SlaPolicy)
    calendars = load_calendars(path)
    problems = [
        Problem(None, f"policy {pid!r}: unknown calendar {policy.calendar!r}")
        for pid, policy in policies.items()
        if policy.calendar not in calendars
    ]
    if problems:
        raise SopInvalid(path, problems)
    return policies
