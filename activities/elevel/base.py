"""The contract every e-level action follows, and the registry SOP validation checks names against."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from registry.db import Sessions
from registry.settings import Settings


class AutomationRequest(BaseModel):
    """What an action sees of the concern it works on."""

    action: str
    concern_id: str
    workflow_id: str
    step: str
    seq: int
    customer_id: int
    customer_email: str | None = None
    customer_name: str = ""
    subject: str
    body: str
    category: str | None = None
    category_from_customer: bool = False
    priority: str = "normal"
    channel: str = "web"
    tier: str = "standard"


class AutomationResult(BaseModel):
    """An action's outcome (which picks the SOP's next step), what it told the customer, and why."""

    outcome: str
    score: float | None = None
    detail: str = ""
    message: str | None = None
    article_id: int | None = None
    category: str | None = None
    priority: str | None = None


@dataclass
class AutomationContext:
    """The dependencies actions may use; built once per worker."""

    sessions: Sessions
    settings: Settings
    http: httpx.AsyncClient
    options: dict[str, Any] = field(default_factory=dict)


class Automation(ABC):
    """One e-level action."""

    name: ClassVar[str]

    @abstractmethod
    async def run(self, request: AutomationRequest, ctx: AutomationContext) -> AutomationResult:
        """Do the automated work and report its outcome."""


ACTIONS: dict[str, type[Automation]] = {}


def register(cls: type[Automation]) -> type[Automation]:
    """Make an action available to SOPs under its `name`."""
    ACTIONS[cls.name] = cls
    return cls
