"""The raw Temporal baseline: start, one activity, one signal, complete."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def raw_step(value: str) -> str:
    return value


@workflow.defn
class RawWorkflow:
    """One activity, then wait for the signal `finish`."""

    def __init__(self) -> None:
        self.done = False

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self, value: str) -> str:
        await workflow.execute_activity(raw_step, value, start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: self.done)
        return value
