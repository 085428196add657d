"""The SLA policies and calendars in force, loaded once per process from the shipped definitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sops.loader import DEFINITIONS_DIR, load_calendars, load_policies
from sops.schema import BusinessCalendar, SlaPolicy


@dataclass
class Catalog:
    """Policies and calendars by id; a concern pins the ones in force when it opens."""

    policies: dict[str, SlaPolicy] = field(default_factory=dict)
    calendars: dict[str, BusinessCalendar] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        path = path or DEFINITIONS_DIR / "sla.yaml"
        return cls(policies=load_policies(path), calendars=load_calendars(path))

    def pinned(self, policy_id: str, year: int) -> tuple[SlaPolicy, BusinessCalendar]:
        """The policy and its calendar with three years of public holidays expanded."""
        policy = self.policies[policy_id]
        return policy, self.calendars[policy.calendar].pinned(year, year + 2)
