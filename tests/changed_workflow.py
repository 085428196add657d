"""A deliberately changed concern workflow, for the test that `ccr replay --running` catches it (never shipped)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.concern import ConcernWorkflow
    from workflows.payloads import ConcernState, OpenConcernInput


@workflow.defn(name="ConcernWorkflow")
class ChangedConcernWorkflow(ConcernWorkflow):
    """The concern workflow with a pause before its first step: a change that running concerns cannot take."""

    @workflow.run
    async def run(self, input: OpenConcernInput) -> ConcernState:
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(input)
