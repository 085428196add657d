"""Imports every e-level action, so `ACTIONS` knows them all (the worker and SOP validation import this)."""

import activities.elevel.classify  # noqa: F401
import activities.elevel.kb_answer  # noqa: F401
import activities.elevel.order_status  # noqa: F401
import activities.elevel.password_reset  # noqa: F401
