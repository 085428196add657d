"""A concern's workflow history from Temporal: every run of its workflow, continue-as-new runs stitched in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from google.protobuf.json_format import MessageToDict
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

# A history page must answer while a person waits; an outage is reported rather than waited out.
RPC_TIMEOUT = timedelta(seconds=10)
MAX_RUNS = 100
UNREACHABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)


class HistoryUnavailable(RuntimeError):
    """Temporal is unreachable, so the history cannot be read now (the pages and API answer 503)."""


class NoWorkflow(LookupError):
    """Temporal has no workflow of this id (it has not started yet, or its retention has passed)."""


@dataclass
class PendingActivity:
    """An activity of the running run that is scheduled or retrying, as Temporal describes it."""

    activity_id: str
    activity_type: str
    attempt: int
    last_failure: str | None
    state: str


@dataclass
class Run:
    """One run of the concern's workflow with its events."""

    run_id: str
    ordinal: int  # 1 for the first run; continue-as-new adds one
    events: list[HistoryEvent]
    status: str = "running"
    pending: list[PendingActivity] = field(default_factory=list)

    def history(self, workflow_id: str) -> WorkflowHistory:
        return WorkflowHistory(workflow_id, self.events)

    def raw(self) -> dict:
        """The run in the JSON form of `temporal workflow show --output json`, which `ccr replay` reads."""
        return {"events": [MessageToDict(e) for e in self.events]}


def _unreachable(err: RPCError) -> bool:
    return err.status in UNREACHABLE


async def fetch_runs(client: Client, workflow_id: str) -> list[Run]:
    """Every run of `workflow_id`, first to latest: from the first run, following each continue-as-new."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe(rpc_timeout=RPC_TIMEOUT)
        info = description.raw_description.workflow_execution_info
        latest_run = info.execution.run_id
        run_id = info.first_run_id or latest_run
        runs: list[Run] = []
        while run_id and len(runs) < MAX_RUNS:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            history = await handle.fetch_history(rpc_timeout=RPC_TIMEOUT)
            run = Run(run_id=run_id, ordinal=len(runs) + 1, events=list(history.events))
            runs.append(run)
            run_id = _next_run(run)
            if run.run_id == latest_run:
                break
    except RPCError as err:
        if _unreachable(err):
            raise HistoryUnavailable(f"Temporal is unreachable ({err.message}); the history of {workflow_id} can "
                                     "be read again as soon as it answers") from err
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NoWorkflow(f"Temporal has no workflow {workflow_id}") from err
        raise
    last = runs[-1]
    last.status = description.status.name.lower() if description.status else "running"
    last.pending = [_pending(p) for p in description.raw_description.pending_activities]
    return runs


def _next_run(run: Run) -> str | None:
    if run.events and run.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        run.status = "continued_as_new"
        return run.events[-1].workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return None


def _pending(p) -> PendingActivity:
    return PendingActivity(
        activity_id=p.activity_id, activity_type=p.activity_type.name, attempt=p.attempt,
        last_failure=p.last_failure.message if p.HasField("last_failure") else None,
        state=type(p).DESCRIPTOR.fields_by_name["state"].enum_type.values_by_number[p.state].name
        .removeprefix("PENDING_ACTIVITY_STATE_").lower(),
    )
