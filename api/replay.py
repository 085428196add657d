"""Replay before a deploy: the histories of running concerns (or saved files) against the workflow code at hand."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

RUNNING = "WorkflowType='ConcernWorkflow' AND ExecutionStatus='Running'"
_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


@dataclass
class ReplayFailure:
    """A history that the code at hand would not continue the way it was recorded."""

    workflow_id: str
    run_id: str
    concern_id: str | None
    event_id: int | None  # the first event the code disagrees with, when the SDK names it
    event_type: str | None
    reason: str


@dataclass
class ReplayReport:
    """How many histories replayed cleanly, and the failures."""

    replayed: int = 0
    failures: list[ReplayFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def replayer(workflows: Sequence[type] | None = None) -> Replayer:
    """A sandboxed replayer of the concern workflow (or `workflows`) with the desk's data converter."""
    if workflows is None:
        from workflows.concern import ConcernWorkflow

        workflows = [ConcernWorkflow]
    return Replayer(workflows=list(workflows), data_converter=pydantic_data_converter)


def _concern_id(history: WorkflowHistory) -> str | None:
    if not history.events:
        return None
    started = history.events[0].workflow_execution_started_event_attributes
    try:
        value = pydantic_data_converter.payload_converter.from_payloads(started.input.payloads)[0]
    except Exception:
        return None
    return value.get("concern_id") if isinstance(value, dict) else None


def _reason(failure: Exception) -> str:
    """The SDK's own sentence from a replay failure ("[TMPRL1100] Nondeterminism error: ...")."""
    text = str(failure)
    found = _MESSAGE.search(text)
    return found.group(1) if found else text


async def _diverging(engine: Replayer, history: WorkflowHistory) -> HistoryEvent | None:
    """The first event the code at hand disagrees with.

    A history cut after a workflow task replays cleanly as long as the code decided as recorded up to there, so the
    shortest failing cut (found by bisection) ends in the task whose recorded commands the code does not repeat:
    they are the events after the workflow task before it."""
    events = list(history.events)
    completed = [i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    cuts = [i + 1 for i in completed] + [len(events)]

    async def fails(cut: int) -> bool:
        result = await engine.replay_workflow(WorkflowHistory(history.workflow_id, events[:cut]),
                                              raise_on_replay_failure=False)
        return result.replay_failure is not None

    low, high = 0, len(cuts) - 1  # cuts[high] (the whole history) fails
    while low < high:
        middle = (low + high) // 2
        if await fails(cuts[middle]):
            high = middle
        else:
            low = middle + 1
    start = cuts[low - 1] if low > 0 else 0
    return events[start] if start < len(events) else None


async def replay_histories(histories: list[WorkflowHistory], workflows: Sequence[type] | None = None,
                           run_ids: list[str] | None = None) -> ReplayReport:
    """Replay each history; a failure names the concern and the first event the code disagrees with."""
    report = ReplayReport()
    engine = replayer(workflows)
    for i, history in enumerate(histories):
        result = await engine.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is None:
            report.replayed += 1
            continue
        event = await _diverging(engine, history)
        report.failures.append(ReplayFailure(
            workflow_id=history.workflow_id, run_id=run_ids[i] if run_ids else "", concern_id=_concern_id(history),
            event_id=event.event_id if event else None,
            event_type=EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower() if event else None,
            reason=_reason(result.replay_failure)))
    return report


async def replay_running(client: Client, *, query: str | None = None, limit: int | None = None,
                         workflows: Sequence[type] | None = None) -> ReplayReport:
    """Fetch the current run of every running concern (narrowed by a visibility `query`) and replay it."""
    listing = RUNNING + (f" AND ({query})" if query else "")
    histories, run_ids = [], []
    async for execution in client.list_workflows(listing, limit=limit):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        histories.append(await handle.fetch_history())
        run_ids.append(execution.run_id)
    return await replay_histories(histories, workflows, run_ids)
