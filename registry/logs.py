"""Logging for every process: text or one JSON object per line (`CCR_LOG_FORMAT=json`), and on every line about a
concern its `concern_id` and `workflow_id`, from the web request, the workflow or the activity it comes from."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

_prefix = "concern-"


def concern_of(workflow_id: str) -> str | None:
    return workflow_id.removeprefix(_prefix) if workflow_id.startswith(_prefix) else None


def _temporal_context(logger, method, event: dict) -> dict:
    """The concern of the workflow or activity this line is logged in (the SDK keeps both in context)."""
    if "workflow_id" in event:
        return event
    workflow_id = None
    try:
        from temporalio import activity, workflow

        if activity.in_activity():
            workflow_id = activity.info().workflow_id
        elif workflow.in_workflow():
            workflow_id = workflow.info().workflow_id
    except Exception:  # noqa: BLE001 - a log line must never fail for want of context
        workflow_id = None
    record = event.get("_record")
    if workflow_id is None and record is not None:
        extra = getattr(record, "temporal_activity", None) or getattr(record, "temporal_workflow", None) or {}
        workflow_id = extra.get("workflow_id")
    if workflow_id:
        event["workflow_id"] = workflow_id
        if (concern_id := concern_of(workflow_id)) is not None:
            event.setdefault("concern_id", concern_id)
    return event


def configure(*, log_format: str = "text", workflow_id_prefix: str = "concern-", process: str = "ccr",
              level: int = logging.INFO) -> None:
    """Send every log line (ours, the SDK's, uvicorn's) through one formatter on stderr."""
    global _prefix
    _prefix = workflow_id_prefix
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _temporal_context,
        lambda _, __, event: {**event, "process": process},
    ]
    renderer = structlog.processors.JSONRenderer() if log_format == "json" else \
        structlog.dev.ConsoleRenderer(colors=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "mail.log", "sqlalchemy", "alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
                        logger_factory=structlog.stdlib.LoggerFactory(),
                        wrapper_class=structlog.stdlib.BoundLogger, cache_logger_on_first_use=True)


@contextmanager
def about_concern(concern_id: str | None, workflow_id: str | None = None) -> Iterator[None]:
    """Every line logged inside carries the concern's id and workflow id."""
    if concern_id is None:
        yield
        return
    with structlog.contextvars.bound_contextvars(concern_id=concern_id,
                                                 workflow_id=workflow_id or f"{_prefix}{concern_id}"):
        yield


def get(name: str):
    """A structured logger (`log.info("mail sent", outbox_id=3)`); plain `logging` loggers work too."""
    return structlog.get_logger(name)
