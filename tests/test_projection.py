"""Projection writes run at least once: a repeated batch writes nothing twice and old snapshots never win."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import func, select

from activities.projection import ProjectionActivities
from registry.concerns import register_concern
from registry.customers import find_or_create_customer
from registry.models import ClockEvent, Concern, Interaction
from workflows.payloads import Clock, ClockEventRecord, ConcernSnapshot, RecordInput, TimelineEntry

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _snapshot(concern_id: str, seq: int, status: str, step: str) -> ConcernSnapshot:
    return ConcernSnapshot(concern_id=concern_id, seq=seq, status=status, step=step, step_type="human", level=1,
                           skills=[], assignee_id=None, assignee_name=None, priority="normal", category=None,
                           sop_id="ladder", sop_version=1, sla_policy="slow", sla_state="ok", next_due_at=None,
                           clocks=[])


def test_a_repeated_batch_is_harmless_and_an_older_snapshot_never_overwrites(sessions):
    with sessions.begin() as session:
        customer, _ = find_or_create_customer(session=session, email="a@example.com")
        concern = register_concern(session=session, customer=customer, subject="S", body="B", channel="web",
                                   priority="normal", category=None, workflow_id_prefix="w-")
        cid, customer_id = concern.id, customer.id
    batch = RecordInput(
        workflow_id=f"w-{cid}", run_id="run-1", customer_id=customer_id,
        snapshot=_snapshot(cid, 2, "open", "level1"),
        timeline=[TimelineEntry(seq=1, kind="step", body="In the level 1 queue", at=NOW)],
        clock_events=[ClockEventRecord(seq=2, clock="resolution", kind="start", at=NOW, event_id=3, elapsed=0,
                                       target=60)],
    )
    record = ProjectionActivities(sessions).record
    record(batch)
    record(batch)
    due = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    claimed = _snapshot(cid, 4, "open", "level1").model_copy(update={
        "assignee_id": 7, "assignee_name": "Ada", "sla_state": "warning", "next_due_at": due,
        "clocks": [Clock(name="resolution", target=3600, state="running", run_started=NOW, due_at=due)]})
    record(batch.model_copy(update={"snapshot": claimed, "clock_events": [], "timeline": [
        TimelineEntry(seq=3, kind="note", body="Checked <the> logs", author="Ada", author_user_id=7,
                      meta={"internal": True}, at=NOW)]}))
    with sessions.begin() as session:
        row = session.get(Concern, cid)
        assert (row.assignee_name, row.sla_state, row.next_due_at) == ("Ada", "warning", due)
        assert row.clocks[0]["name"] == "resolution" and row.clocks[0]["state"] == "running"
        note = session.exec(select(Interaction).where(Interaction.concern_id == cid, Interaction.seq == 3)).one()
        assert (note.body, note.author, note.author_user_id, note.meta, note.created_at, note.customer_id) == (
            "Checked <the> logs", "Ada", 7, {"internal": True}, NOW, customer_id)
    newer = batch.model_copy(update={"snapshot": _snapshot(cid, 5, "resolved", "close"), "timeline": [],
                                     "clock_events": []})
    record(newer)
    record(batch)  # a late retry of the older batch
    with sessions.begin() as session:
        row = session.get(Concern, cid)
        assert (row.status, row.step, row.seq) == ("resolved", "close", 5)
        steps = session.exec(select(func.count()).select_from(Interaction).where(Interaction.kind == "step")).one()
        clocks = session.exec(select(func.count()).select_from(ClockEvent)).one()
    assert steps == 1 and clocks == 1
