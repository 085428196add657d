"""Validation that knows the running desk: the SOP language's checks against what the worker, the mail
templates and the SLA policies offer (errors), and against who is on staff (warnings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from registry.sop_store import active_staffing, can_take
from sops.schema import HumanStep, SopDefinition
from sops.source import Finding, check_sop_text


@dataclass(frozen=True)
class Vocabulary:
    """What a SOP may name in this installation: registered e-level actions, mail templates, SLA policies."""

    actions: frozenset[str]
    templates: frozenset[str]
    policies: frozenset[str]


@dataclass
class Report:
    """The outcome of checking a SOP text: errors block publishing, warnings need a confirmation."""

    definition: SopDefinition | None
    data: Any = None
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "errors": [f.as_dict() for f in self.errors],
                "warnings": [f.as_dict() for f in self.warnings]}


def staffing_findings(definition: SopDefinition, staffing: list[tuple[int | None, list[str]]],
                      positions: Any = None) -> list[Finding]:
    """Human steps the current staff cannot work: a skill nobody has, a level above the highest staffed
    one, or no single agent with both the level and every skill."""
    steps = positions.steps if positions else {}
    fields = positions.fields if positions else {}
    skills_held = {skill for _, skills in staffing for skill in skills}
    top_level = max((level or 0 for level, _ in staffing), default=0)
    found: list[Finding] = []
    for sid, step in definition.steps.items():
        if not isinstance(step, HumanStep):
            continue
        missing = [skill for skill in step.skills if skill not in skills_held]
        if missing:
            names = ", ".join(repr(s) for s in missing)
            plural = "s" if len(missing) > 1 else ""
            message = f"no active agent has the skill{plural} {names}; nobody can take this step"
            line = fields.get(sid, {}).get("skills")
        elif step.level > top_level:
            highest = f"the highest staffed level is {top_level}" if top_level else "no agent is active"
            message = f"needs a level {step.level} agent, but {highest}"
            line = fields.get(sid, {}).get("level")
        elif not any(can_take(level=level, skills=skills, step_level=step.level, step_skills=step.skills)
                     for level, skills in staffing):
            needs = f"level {step.level}" + (f" with the skills {', '.join(step.skills)}" if step.skills else "")
            message = f"needs an agent of {needs}, and no active agent has both the level and the skills"
            line = None
        else:
            continue
        found.append(Finding(sid, line or steps.get(sid), message))
    return found


def check_text(text: str, *, vocabulary: Vocabulary, session: Session | None = None,
               sop_id: str | None = None) -> Report:
    """Every error and warning of a SOP text; staffing is checked only with a registry `session`.

    `sop_id`, when given, is the SOP the text must be a version of.
    """
    data, errors, positions = check_sop_text(text, actions=vocabulary.actions, templates=vocabulary.templates,
                                             policies=vocabulary.policies)
    if sop_id is not None and isinstance(data, dict) and data.get("id") is not None and data.get("id") != sop_id:
        errors.append(Finding(None, positions.top.get("id") if positions else None,
                              f"id {data.get('id')!r} does not match the SOP {sop_id!r} this is a version of"))
    if errors:
        return Report(None, data, errors)
    definition = SopDefinition.model_validate(data)
    warnings = []
    if session is not None:
        warnings = staffing_findings(definition, active_staffing(session=session), positions)
    return Report(definition, data, [], warnings)
