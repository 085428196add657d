"""What Temporal knows that needs an SRE: activities retrying, workflow tasks failing, pollers and backlog; and the
reset of a concern's workflow. Every call is bounded in number and time, so /ops answers while Temporal is slow."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, TaskQueueType, WorkflowTaskFailedCause
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryReverseRequest,
    ResetWorkflowExecutionRequest,
)
from temporalio.client import Client

from registry.settings import Settings

RPC_TIMEOUT = timedelta(seconds=3)
# How many running workflows one look describes, and how many at once.
DESCRIBE_LIMIT = 200
DESCRIBE_PARALLEL = 8


@dataclass
class StuckActivity:
    concern_id: str
    workflow_id: str
    activity: str
    attempt: int
    state: str
    last_failure: str | None
    heartbeat: str | None
    scheduled_event_id: int | None
    since: datetime | None


@dataclass
class TaskFailure:
    concern_id: str
    workflow_id: str
    attempt: int
    nondeterminism: bool
    cause: str
    message: str
    event_id: int | None


@dataclass
class Poller:
    kind: str
    identity: str
    last_seen: datetime | None


@dataclass
class TemporalView:
    ok: bool
    error: str | None = None
    activities: list[StuckActivity] = field(default_factory=list)
    task_failures: list[TaskFailure] = field(default_factory=list)
    pollers: list[Poller] = field(default_factory=list)
    backlog: dict[str, dict] = field(default_factory=dict)
    described: int = 0


def _ts(value) -> datetime | None:
    if value is None or (value.seconds == 0 and value.nanos == 0):
        return None
    return value.ToDatetime().replace(tzinfo=timezone.utc)


def concern_of(settings: Settings, workflow_id: str) -> str:
    return workflow_id.removeprefix(settings.workflow_id_prefix)


async def look(client: Client, settings: Settings, *, also: list[str] = ()) -> TemporalView:
    """Describe the running concern workflows of the task queue (and `also`), and the task queue itself."""
    view = TemporalView(ok=True)
    try:
        ids = list(dict.fromkeys(also))
        query = f'TaskQueue="{settings.temporal_task_queue}" AND ExecutionStatus="Running"'
        async for execution in client.list_workflows(query, limit=DESCRIBE_LIMIT, rpc_timeout=RPC_TIMEOUT):
            if execution.id.startswith(settings.workflow_id_prefix) and execution.id not in ids:
                ids.append(execution.id)
        ids = ids[:DESCRIBE_LIMIT]
        gate = asyncio.Semaphore(DESCRIBE_PARALLEL)
        results = await asyncio.gather(*(_describe(client, settings, wid, gate) for wid in ids),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                continue  # one workflow gone since it was listed does not hide the others
            activities, failure = result
            view.activities += activities
            if failure is not None:
                view.task_failures.append(failure)
        view.described = len(ids)
        await _task_queue(client, settings, view)
    except Exception as err:  # noqa: BLE001 - Temporal down: the registry's part of /ops still answers
        view.ok = False
        view.error = f"Temporal did not answer: {getattr(err, 'message', None) or err}"[:300]
    return view


async def _describe(client: Client, settings: Settings, workflow_id: str, gate: asyncio.Semaphore):
    async with gate:
        service = client.workflow_service
        described = await service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
            namespace=settings.temporal_namespace, execution=WorkflowExecution(workflow_id=workflow_id)),
            timeout=RPC_TIMEOUT)
        concern_id = concern_of(settings, workflow_id)
        troubled = [p for p in described.pending_activities
                    if p.attempt > 1 or p.last_failure.message or p.heartbeat_details.payloads]
        task = described.pending_workflow_task
        failing_task = described.HasField("pending_workflow_task") and task.attempt > 1
        events = await _recent_events(client, settings, workflow_id) if troubled or failing_task else []
        activities = []
        for p in troubled:
            heartbeat = None
            if p.heartbeat_details.payloads:
                decoded = await client.data_converter.decode(p.heartbeat_details.payloads)
                heartbeat = "; ".join(str(d) for d in decoded)[:500]
            activities.append(StuckActivity(
                concern_id=concern_id, workflow_id=workflow_id, activity=p.activity_type.name, attempt=p.attempt,
                state=_enum_name(p.state, "PENDING_ACTIVITY_STATE_"),
                last_failure=p.last_failure.message or None, heartbeat=heartbeat,
                scheduled_event_id=_scheduled_event(events, p.activity_id), since=_ts(p.scheduled_time)))
        failure = None
        if failing_task:
            event = next((e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED), None)
            attrs = event.workflow_task_failed_event_attributes if event is not None else None
            cause = WorkflowTaskFailedCause.Name(attrs.cause) if attrs is not None else "unknown"
            message = attrs.failure.message if attrs is not None else ""
            nondeterminism = (attrs is not None and attrs.cause ==
                              WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR) \
                or "nondetermin" in message.lower()
            failure = TaskFailure(concern_id=concern_id, workflow_id=workflow_id, attempt=task.attempt,
                                  nondeterminism=nondeterminism,
                                  cause=cause.removeprefix("WORKFLOW_TASK_FAILED_CAUSE_").lower(),
                                  message=message[:1000], event_id=event.event_id if event is not None else None)
        return activities, failure


async def _recent_events(client: Client, settings: Settings, workflow_id: str, count: int = 200):
    """The latest events of the workflow's current run, newest first."""
    response = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(namespace=settings.temporal_namespace,
                                                  execution=WorkflowExecution(workflow_id=workflow_id),
                                                  maximum_page_size=count), timeout=RPC_TIMEOUT)
    return list(response.history.events)


def _scheduled_event(events, activity_id: str) -> int | None:
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and \
                event.activity_task_scheduled_event_attributes.activity_id == activity_id:
            return event.event_id
    return None


def _enum_name(value: int, prefix: str) -> str:
    from temporalio.api.enums.v1 import PendingActivityState

    return PendingActivityState.Name(value).removeprefix(prefix).lower()


async def _task_queue(client: Client, settings: Settings, view: TemporalView) -> None:
    for kind, queue_type in (("workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
                             ("activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)):
        response = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace, task_queue=TaskQueue(name=settings.temporal_task_queue),
            task_queue_type=queue_type, report_stats=True), timeout=RPC_TIMEOUT)
        for poller in response.pollers:
            view.pollers.append(Poller(kind=kind, identity=poller.identity, last_seen=_ts(poller.last_access_time)))
        stats = response.stats
        view.backlog[kind] = {"count": stats.approximate_backlog_count,
                              "age_seconds": stats.approximate_backlog_age.ToTimedelta().total_seconds()}


# ---- reset --------------------------------------------------------------------------------------


class ResetRefused(ValueError):
    """The event named is not one a workflow can be reset to; the message says which ones are."""


async def reset_workflow(client: Client, settings: Settings, *, workflow_id: str, event_id: int, reason: str,
                         identity: str) -> str:
    """Reset the concern's current run to the WorkflowTaskCompleted event `event_id`; the new run's id."""
    handle = client.get_workflow_handle(workflow_id)
    kind = None
    async for event in handle.fetch_history_events(rpc_timeout=RPC_TIMEOUT):
        if event.event_id == event_id:
            kind = event.event_type
            break
    if kind is None:
        raise ResetRefused(f"the workflow's current run has no event {event_id}")
    if kind != EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        name = EventType.Name(kind).removeprefix("EVENT_TYPE_").replace("_", " ").title().replace(" ", "")
        raise ResetRefused(f"event {event_id} is a {name}; a workflow resets only to a WorkflowTaskCompleted event")
    response = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
        namespace=settings.temporal_namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        reason=reason[:500], workflow_task_finish_event_id=event_id, request_id=str(uuid.uuid4()),
        identity=identity[:100]), timeout=RPC_TIMEOUT * 3)
    return response.run_id
