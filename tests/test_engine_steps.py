"""Every SOP step type, SLA clocks pausing and breaching, reopening, and pinned SOP versions."""

from __future__ import annotations

import yaml

from registry.sop_store import publish
from sops.schema import SopDefinition
from tests.conftest import TEST_SOPS
from tests.engine_support import (
    ADA,
    BOB,
    CAROL,
    TASK_COMPLETED,
    TIMER_FIRED,
    act,
    clock_events,
    history_events,
    open_concern,
    say,
    timeline_kinds,
)


async def test_every_step_type_from_intake_to_close(desk):
    desk.settings.reopen_window = "1s"
    concern = await open_concern(desk, category="everything", subject="Question about my plan")
    c = await desk.wait_for(concern.id, lambda c: c.step == "confirm")
    assert c.status == "waiting_customer" and c.sla_state == "paused"
    await say(desk, concern, "It is still broken", intent="not_solved")
    c = await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", ADA)
    await act(desk, concern, "note", BOB, text="Seen this before, check the plan")
    state = await act(desk, concern, "request_info", ADA, text="Which plan are you on?")
    assert state.status == "waiting_customer"
    assert {c.name: c.state for c in state.clocks}["resolution"] == "paused"
    await say(desk, concern, "The gold plan")
    c = await desk.wait_for(concern.id, lambda c: c.status == "open")
    await act(desk, concern, "reply", ADA, text="Thanks, looking at it")
    await act(desk, concern, "resolve", ADA, text="Plan corrected")
    c = await desk.wait_for(concern.id, lambda c: c.status == "closed", timeout=15)
    kinds = timeline_kinds(desk, concern.id)
    for kind in ("customer_message", "automated", "decided", "notice", "question", "claimed", "note", "reply",
                 "resolution", "survey", "closed"):
        assert kind in kinds, kind
    events = clock_events(desk, concern.id)
    resolution = [e.kind for e in events if e.clock == "resolution"]
    assert resolution == ["start", "pause", "resume", "pause", "resume", "stop"]
    first = [e.kind for e in events if e.clock == "first_response"]
    assert first[0] == "start" and first[-1] == "stop"


async def test_decide_sends_urgent_concerns_to_level2(desk):
    concern = await open_concern(desk, category="everything", priority="urgent")
    c = await desk.wait_for(concern.id, lambda c: c.step == "level2")
    assert c.level == 2 and c.priority == "urgent"


async def test_unanswered_question_times_out_to_the_no_reply_target(desk):
    concern = await open_concern(desk, category="everything")
    await desk.wait_for(concern.id, lambda c: c.step == "confirm")
    c = await desk.wait_for(concern.id, lambda c: c.step == "level1", timeout=15)
    assert c.status == "open"


async def test_sla_warning_and_breach_are_recorded_with_their_timer_events_and_escalate(desk):
    concern = await open_concern(desk, category="breach")
    c = await desk.wait_for(concern.id, lambda c: c.step == "level2", timeout=15)
    assert c.sla_state == "breached"
    events = clock_events(desk, concern.id)
    first = [(e.kind, e) for e in events if e.clock == "first_response"]
    assert [k for k, _ in first][:3] == ["start", "warn", "breach"]
    history = await history_events(desk, concern.workflow_id)
    by_id = {e.event_id: e for e in history}
    for kind, ev in first[1:3]:
        # The clock event was decided in the workflow task at `event_id`; the timer that caused it fired
        # after the previous workflow task completed.
        previous_done = max(i for i, e in by_id.items() if e.event_type == TASK_COMPLETED and i < ev.event_id)
        causes = [by_id[i].event_type for i in range(previous_done + 1, ev.event_id)]
        assert TIMER_FIRED in causes, (kind, causes)
    warn, breach = first[1][1], first[2][1]
    assert (breach.at - first[0][1].at).total_seconds() >= 4
    assert (warn.at - first[0][1].at).total_seconds() >= 2
    assert "escalated" in timeline_kinds(desk, concern.id)


async def test_next_response_clock_starts_on_a_customer_message_and_stops_on_the_reply(desk):
    concern = await open_concern(desk)
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", ADA)
    await act(desk, concern, "reply", ADA, text="On it")
    await say(desk, concern, "Any news?")
    await say(desk, concern, "Hello?")
    await act(desk, concern, "reply", ADA, text="Yes, tomorrow")
    await desk.wait_for(concern.id, lambda c: any(
        k["name"] == "next_response" and k["state"] == "stopped" for k in c.clocks))
    kinds = [e.kind for e in clock_events(desk, concern.id) if e.clock == "next_response"]
    assert kinds == ["start", "stop"]  # the second message did not restart the running clock


async def test_reply_after_resolution_reopens_the_concern(desk):
    concern = await open_concern(desk)
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", ADA)
    await act(desk, concern, "resolve", ADA, text="Done")
    await desk.wait_for(concern.id, lambda c: c.status == "resolved")
    _, reopens = await say(desk, concern, "No, it happens again")
    assert reopens
    c = await desk.wait_for(concern.id, lambda c: c.status == "open" and c.step == "level1")
    assert c.assignee_id is None
    assert "reopened" in timeline_kinds(desk, concern.id)
    resolution = [e.kind for e in clock_events(desk, concern.id) if e.clock == "resolution"]
    assert resolution[-1] == "start" and resolution.count("start") == 2


async def test_priority_change_moves_the_clock_targets(desk):
    concern = await open_concern(desk, category="breach", priority="low")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    state = await act(desk, concern, "set_priority", CAROL, priority="urgent")
    first = next(c for c in state.clocks if c.name == "first_response")
    assert first.target == 2 and state.priority == "urgent"


async def test_running_concern_keeps_its_version_while_new_ones_get_the_new_one(desk):
    running = await open_concern(desk)
    await desk.wait_for(running.id, lambda c: c.step == "level1")
    raw = yaml.safe_load((TEST_SOPS / "ladder.yaml").read_text())
    raw["title"] = "Escalation ladder, second edition"
    raw["steps"]["level1"]["escalate_after"] = "1h"
    with desk.sessions.begin() as session:
        v2, created = publish(session=session, definition=SopDefinition.model_validate(raw), by="owner")
    assert created and v2.version == 2
    fresh = await open_concern(desk, email="other@example.com")
    assert (running.sop_version, fresh.sop_version) == (1, 2)
    c = await desk.wait_for(running.id, lambda c: c.level == 2, timeout=15)  # v1's 2 s timer still applies
    assert c.sop_version == 1
    f = await desk.wait_for(fresh.id, lambda c: c.step == "level1")
    assert f.sop_version == 2 and f.level == 1
