"""Runs a Temporal worker with the concern workflow and every activity it asks for."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.elevel.base import AutomationContext
from activities.runtime import AutomationActivities, MailActivities
from activities.projection import ProjectionActivities
from registry.db import Sessions
from registry.settings import Settings
from workflows.concern import ConcernWorkflow

log = logging.getLogger("ccr.worker")


def build_worker(
    client: Client, settings: Settings, sessions: Sessions, *, task_queue: str | None = None,
    http: httpx.AsyncClient | None = None, options: dict | None = None,
) -> Worker:
    """A worker for the concern task queue, its activities built with their dependencies."""
    mail = MailActivities(sessions, settings)
    projection = ProjectionActivities(sessions, render_mail=mail.queue)
    automation = AutomationActivities(
        AutomationContext(sessions=sessions, settings=settings, http=http or httpx.AsyncClient(), options=options or {})
    )
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=[ConcernWorkflow],
        activities=[projection.record, projection.unheard_messages, automation.run_automation, mail.deliver_mail],
        activity_executor=ThreadPoolExecutor(max_workers=32),
        max_concurrent_activities=32,
        # The sandbox re-imports the workflow module for every run and re-enters itself for every payload: about a
        # third of the worker's CPU per concern. Determinism is guarded instead by replaying saved histories in CI
        # and by the test suite, whose workers run sandboxed (CCR_WORKFLOW_SANDBOX=true).
        workflow_runner=SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner(),
    )


def serve_app_metrics(settings: Settings) -> None:
    """Serve the desk's own worker-side counters (`registry.telemetry`) on CCR_WORKER_APP_METRICS_ADDRESS."""
    if not settings.worker_app_metrics_address:
        return
    from prometheus_client import start_http_server

    from registry.telemetry import PROCESS

    host, _, port = settings.worker_app_metrics_address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=PROCESS)


async def run_worker(settings: Settings,
                     alongside: Callable[[Client, Sessions], Awaitable[None]] | None = None) -> None:
    """Connect and poll until cancelled, running `alongside(client, sessions)` in the same loop if given."""
    from registry.db import make_engine
    from workflows.client import make_client, worker_runtime

    client = await make_client(settings, runtime=worker_runtime(settings))
    sessions = Sessions(make_engine(settings.resolved_database_url))
    serve_app_metrics(settings)
    beside = asyncio.create_task(alongside(client, sessions)) if alongside is not None else None
    try:
        await keep_polling(lambda: build_worker(client, settings, sessions))
    finally:
        if beside is not None:
            beside.cancel()
            await asyncio.gather(beside, return_exceptions=True)


async def keep_polling(make: Callable[[], Worker], *, max_backoff: float = 30.0) -> None:
    """Run a worker until cancelled; when the SDK's worker stops by itself (Temporal away too long, a fatal poll
    error), build a new one, with back-off, so the process never sits alive without polling."""
    backoff = 0.5
    while True:
        started = time.monotonic()
        try:
            await make().run()
            return  # shut down on purpose
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - any reason the worker stopped; it is logged and replaced
            if time.monotonic() - started > 60:
                backoff = 0.5
            log.warning("the worker stopped (%s: %s); starting a new one in %.1fs", type(err).__name__, err, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)


if __name__ == "__main__":
    asyncio.run(run_worker(Settings()))
