"""E-level automation: actions that SOP `automate` steps name, found in one registry.

Adding an action is one class with a `name` and a `run` method, plus one `@register` line.
"""

from activities.elevel.base import (
    ACTIONS,
    Automation,
    AutomationContext,
    AutomationRequest,
    AutomationResult,
    register,
)

__all__ = ["ACTIONS", "Automation", "AutomationContext", "AutomationRequest", "AutomationResult", "register"]
