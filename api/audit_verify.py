"""Figures that recompute from history: rebuild every clock event from Temporal's history, compare with the registry,
check both hash chains, and keep the evaluation if asked (never touching the data it checked).

The clocks are rebuilt by replaying each run's history through the concern workflow's own code with Temporal's
`Replayer`, and a workflow interceptor captures every `record` batch the workflow asks to write. Replay is the most
faithful rebuild there is: the policy and calendar come from the history's first event, every timer, signal and
update arrives at the instant the history says, and the clock arithmetic is the code that ran (a history that this
code no longer replays is itself reported). Reading the `record` local activity's markers would not do: Temporal
keeps a local activity's result in history, not its input.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartLocalActivityInput,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from registry import audit, chain
from registry.db import Sessions
from registry.models import ClockEvent, Concern
from registry.types import utcnow
from workflows.concern import ConcernWorkflow

COMPARED = ("clock", "kind", "at", "event_id", "elapsed_seconds", "target_seconds", "due_at", "workflow_id", "run_id")


@dataclass
class VerifyResult:
    """What a verification found: every mismatch and chain break, named, and the daily anchors of both chains."""

    since: datetime | None
    until: datetime | None
    concern_id: str | None
    concerns: int = 0
    events: int = 0
    mismatches: list[dict] = field(default_factory=list)
    anchors: dict = field(default_factory=dict)
    verification_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def lines(self) -> list[str]:
        """The mismatches as one line each, for people."""
        out = []
        for m in self.mismatches:
            if m["kind"] == "chain":
                out.append(f"{m['row']}: {m['problem']}")
            else:
                where = f"{m['concern']} {m.get('clock') or '?'} #{m['seq']} ({m.get('event') or '?'}, " \
                        f"event {m.get('event_id', '?')})"
                values = f": registry {m['registry']!r}, history {m['history']!r}" if "registry" in m else ""
                out.append(f"{where}: {m['problem']}{values}")
        return out


# ---- rebuilding from history ------------------------------------------------------------------------------------


class _Capture(Interceptor):
    """Collects the `record` batches the workflow code asks for while one history replays."""

    def __init__(self) -> None:
        self.batches: list = []

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput):
        batches = self.batches

        class Outbound(WorkflowOutboundInterceptor):
            def start_local_activity(self, input: StartLocalActivityInput):
                if input.activity == "record":
                    batches.append(input.args[0])
                return super().start_local_activity(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        return Inbound


async def run_histories(client: Client, workflow_id: str) -> list[tuple[str, WorkflowHistory]]:
    """Every run of a workflow with its run id, first to last (following continue-as-new); empty if Temporal never
    started it."""
    try:
        latest = await client.get_workflow_handle(workflow_id).fetch_history()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return []
        raise
    started = latest.events[0].workflow_execution_started_event_attributes
    run_id = started.first_execution_run_id
    if not run_id:
        return [(latest.run_id, latest)]
    runs = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.append((run_id, history))
        last = history.events[-1]
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id \
            if last.HasField("workflow_execution_continued_as_new_event_attributes") else ""
    return runs


async def rebuild(client: Client, workflow_id: str) -> tuple[list[dict], list[str], int]:
    """The clock events the workflow recorded, rebuilt from its history alone; replay problems; how many runs."""
    capture = _Capture()
    replayer = Replayer(workflows=[ConcernWorkflow], data_converter=client.data_converter, interceptors=[capture],
                        workflow_runner=UnsandboxedWorkflowRunner())
    runs = await run_histories(client, workflow_id)
    problems, events = [], []
    for run_id, history in runs:
        capture.batches.clear()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            problems.append(f"run {run_id} no longer replays with this code: {result.replay_failure}")
        for batch in capture.batches:
            for e in batch.clock_events:
                events.append({"seq": e.seq, "clock": e.clock, "kind": e.kind, "at": chain.stamp(e.at),
                               "event_id": e.event_id, "elapsed_seconds": e.elapsed, "target_seconds": e.target,
                               "due_at": chain.stamp(e.due_at), "workflow_id": workflow_id, "run_id": run_id})
    return events, problems, len(runs)


# ---- comparing with the registry --------------------------------------------------------------------------------


def concerns_in_range(*, session, since: datetime | None, until: datetime | None,
                      concern_id: str | None) -> list[tuple[str, str]]:
    """(id, workflow id) of the concerns to verify: the one asked for, or those registered in the period or with a
    clock event in it."""
    query = sa.select(Concern.id, Concern.workflow_id)
    if concern_id:
        query = query.where(Concern.id == concern_id)
    elif since is not None or until is not None:
        created, moved = sa.true(), sa.true()
        if since is not None:
            created, moved = sa.and_(created, Concern.created_at >= since), sa.and_(moved, ClockEvent.at >= since)
        if until is not None:
            created, moved = sa.and_(created, Concern.created_at < until), sa.and_(moved, ClockEvent.at < until)
        query = query.where(sa.or_(created, Concern.id.in_(sa.select(ClockEvent.concern_id).where(moved))))
    return [tuple(r) for r in session.exec(query.order_by(Concern.id))]


def compare(concern_id: str, registry_rows: list[dict], history_rows: list[dict]) -> list[dict]:
    """Every difference between the registry's clock events of a concern and the ones its history gives."""
    found = []
    mine = {r["seq"]: r for r in registry_rows}
    truth = {r["seq"]: r for r in history_rows}
    for seq in sorted(set(mine) | set(truth)):
        reg, his = mine.get(seq), truth.get(seq)
        ref = his or reg
        base = {"kind": "figure", "concern": concern_id, "seq": seq, "clock": ref["clock"], "event": ref["kind"],
                "event_id": ref["event_id"]}
        if reg is None:
            found.append({**base, "problem": "in the history but missing from the registry (deleted)"})
        elif his is None:
            found.append({**base, "problem": "in the registry but not in the history (inserted)"})
        else:
            for name in COMPARED:
                a, b = reg[name], his[name]
                if name in ("at", "due_at"):
                    a = chain.stamp(a)
                if a != b:
                    found.append({**base, "field": name, "registry": a, "history": b,
                                  "problem": f"{name} differs from the history (edited)"})
    return found


def _registry_side(sessions: Sessions, concern_id: str) -> tuple[list[dict], list[dict]]:
    with sessions.read() as session:
        db = session.connection()
        rows = audit.clock_rows(db, concern_id)
        return rows, [{"kind": "chain", "concern": concern_id, **p} for p in audit.check_clock_chain(db, concern_id)]


def _audit_side(sessions: Sessions, since, until) -> tuple[list[dict], dict]:
    with sessions.read() as session:
        problems = [{"kind": "chain", **p} for p in audit.check_audit_chain(session=session, since=since, until=until)]
        start = since or datetime.fromisoformat("1970-01-01T00:00:00+00:00")
        end = until or utcnow()
        anchors = {"clock_events": audit.clock_anchors_for(session.connection(), start, end),
                   "audit_log": audit.audit_anchors_for(session, start, end)}
    return problems, anchors


async def verify(*, sessions: Sessions, client: Client, actor: str, since: datetime | None = None,
                 until: datetime | None = None, concern_id: str | None = None, keep: bool = False,
                 reason: str = "") -> VerifyResult:
    """Rebuild, compare and check; with `keep`, store the evaluation as a `verification` row. Always audited.

    The one code path of `ccr audit verify` and of any page that offers a verification."""
    result = VerifyResult(since=since, until=until, concern_id=concern_id)

    def targets():
        with sessions.read() as session:
            return concerns_in_range(session=session, since=since, until=until, concern_id=concern_id)

    for cid, workflow_id in await asyncio.to_thread(targets):
        rows, chain_problems = await asyncio.to_thread(_registry_side, sessions, cid)
        history, replay_problems, runs = await rebuild(client, workflow_id)
        if not runs and not rows:
            continue  # registered while Temporal was away and not handed over yet: nothing to compare
        result.concerns += 1
        result.events += len(history)
        result.mismatches += [{"kind": "replay", "concern": cid, "row": cid, "problem": p} for p in replay_problems]
        result.mismatches += compare(cid, rows, history)
        result.mismatches += chain_problems
    audit_problems, result.anchors = await asyncio.to_thread(_audit_side, sessions, since, until)
    result.mismatches += audit_problems
    await asyncio.to_thread(_keep, sessions, result, actor, keep, reason)
    return result


def _keep(sessions: Sessions, result: VerifyResult, actor: str, keep: bool, reason: str) -> None:
    with sessions.begin() as session:
        if keep:
            row = audit.store_verification(
                session=session, actor=actor, ok=result.ok, range_from=result.since, range_to=result.until,
                concern_id=result.concern_id, concerns=result.concerns, events=result.events,
                mismatches=result.mismatches, anchors=result.anchors, reason=reason)
            result.verification_id = row.id
        audit.record(session=session, actor=actor, action="audit.verified",
                     target=f"concern:{result.concern_id}" if result.concern_id else "clock events and audit log",
                     detail={"from": result.since, "to": result.until, "ok": result.ok, "concerns": result.concerns,
                             "events": result.events, "mismatches": len(result.mismatches),
                             "verification_id": result.verification_id, "reason": reason})
