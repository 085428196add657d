"""Liveness and readiness: is the process up, and can it reach the database, Temporal and a worker."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from registry.handover import pending_summary
from workflows.client import TemporalUnreachable, make_client

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers, Temporal answers and a worker polls the task queue."""
    state = request.app.state
    checks: dict[str, dict] = {}
    try:
        with state.sessions.begin() as session:
            session.exec(text("SELECT 1"))
            pending, oldest, last_error = pending_summary(session=session)
        checks["database"] = {"ok": True}
        # Informational: what intake stored and Temporal has yet to take (it catches up by itself).
        checks["handovers"] = {"ok": True, "pending": pending,
                               "oldest": oldest.isoformat() if oldest else None, "last_error": last_error}
    except Exception as err:
        checks["database"] = {"ok": False, "error": f"database unreachable: {err.__class__.__name__}: {err}"[:300]}
    try:
        if state.client is None:
            state.client = await make_client(state.settings)
        response = await state.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=state.settings.temporal_namespace,
                task_queue=TaskQueue(name=state.settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=timedelta(seconds=3),
        )
        checks["temporal"] = {"ok": True}
        pollers = len(response.pollers)
        checks["worker"] = {"ok": pollers > 0, "pollers": pollers} if pollers else {
            "ok": False, "error": f"no worker polls the task queue {state.settings.temporal_task_queue!r}; "
            "start one with `ccr worker`"}
    except TemporalUnreachable as err:
        checks["temporal"] = {"ok": False, "error": str(err)}
    except Exception as err:
        checks["temporal"] = {"ok": False, "error": f"Temporal did not answer: {err}"[:300]}
    ready = all(c["ok"] for c in checks.values()) and "worker" in checks
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)
