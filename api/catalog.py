"""What a SOP may name here, loaded once per process: SLA policies and calendars in force, the e-level actions
registered with the worker, and the mail templates that exist."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from registry.sop_checks import Vocabulary
from sops.loader import DEFINITIONS_DIR, load_calendars, load_policies
from sops.schema import BusinessCalendar, SlaPolicy


def registered_actions() -> frozenset[str]:
    """The names of the e-level actions the worker registers (`activities/elevel/`)."""
    # The worker's registry is the only truth about which actions run; importing it connects to nothing.
    import activities.elevel.actions  # noqa: F401
    from activities.elevel.base import ACTIONS

    return frozenset(ACTIONS)


def mail_templates() -> frozenset[str]:
    """The mail templates the worker can send: each has a subject, a text and an HTML part on disk."""
    from activities.mail_out import TEMPLATE_DIR, TEMPLATES

    return frozenset(name for name in TEMPLATES
                     if all((TEMPLATE_DIR / f"{name}{suffix}").is_file() for suffix in (".subject.txt", ".txt", ".html")))


@dataclass
class Catalog:
    """Policies and calendars by id (a concern pins the ones in force when it opens), actions and templates."""

    policies: dict[str, SlaPolicy] = field(default_factory=dict)
    calendars: dict[str, BusinessCalendar] = field(default_factory=dict)
    actions: frozenset[str] = frozenset()
    templates: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        path = path or DEFINITIONS_DIR / "sla.yaml"
        return cls(policies=load_policies(path), calendars=load_calendars(path), actions=registered_actions(),
                   templates=mail_templates())

    def pinned(self, policy_id: str, year: int) -> tuple[SlaPolicy, BusinessCalendar]:
        """The policy and its calendar with three years of public holidays expanded."""
        policy = self.policies[policy_id]
        return policy, self.calendars[policy.calendar].pinned(year, year + 2)

    @property
    def vocabulary(self) -> Vocabulary:
        """What SOP validation checks names against."""
        return Vocabulary(actions=self.actions, templates=self.templates, policies=frozenset(self.policies))
