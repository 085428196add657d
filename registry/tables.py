"""Imports every module that defines tables, so `SQLModel.metadata` knows them all (used by migrations)."""

import registry.access  # noqa: F401
import registry.clock_cycles  # noqa: F401
import registry.knowledge  # noqa: F401
import registry.models  # noqa: F401
import registry.attachments  # noqa: F401
import registry.concern_search  # noqa: F401
import registry.handover  # noqa: F401
import registry.mailbox  # noqa: F401
import registry.ratings  # noqa: F401
import registry.workspace  # noqa: F401
import registry.knowledge_feedback  # noqa: F401
import registry.sop_drafts  # noqa: F401
import registry.sop_history  # noqa: F401
import registry.audit  # noqa: F401
import registry.sop_migrations  # noqa: F401
import registry.ideas  # noqa: F401
