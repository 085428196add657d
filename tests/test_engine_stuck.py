"""Nobody stuck where nobody can help: bounded loops, staff's fields, a lead's move and asking for a person."""

from __future__ import annotations

import pytest
from sqlmodel import select
from temporalio.client import WorkflowUpdateFailedError

from registry.models import Interaction
from registry.sop_store import publish
from sops.schema import SopDefinition
from tests.engine_support import ADA, act, open_concern, say, timeline_kinds
from workflows.concern import ConcernWorkflow
from workflows.payloads import AgentRef

LEE = AgentRef(id=7, name="Lee", level=3, skills=["general"], lead=True)
# No keyword of the classifier's rules, and no trained classifier in a test desk: `classify` finds nothing.
PRINTER = {"subject": "Printer jams", "body": "The printer pulls two sheets at once and jams."}


def _entries(desk, concern_id: str, kind: str) -> list[Interaction]:
    with desk.sessions.begin() as session:
        return list(session.exec(select(Interaction).where(Interaction.concern_id == concern_id,
                                                           Interaction.kind == kind).order_by(Interaction.id)))


async def _unclassifiable(desk, **kw):
    """A portal concern with "I am not sure" as its category: the shipped general-inquiry SOP takes it."""
    concern = await open_concern(desk, category=None, **PRINTER, **kw)
    await desk.wait_for(concern.id, lambda c: c.step == "ask_details")
    return concern


async def test_an_unclassifiable_concern_is_asked_for_details_once_then_goes_to_a_person(desk):
    concern = await _unclassifiable(desk)
    assert concern.sop_id == "general-inquiry"
    await say(desk, concern, "It is the office printer on the second floor")
    c = await desk.wait_for(concern.id, lambda c: c.step == "level1")
    assert c.status == "open" and c.level == 1
    assert len(_entries(desk, concern.id, "question")) == 1
    bound = _entries(desk, concern.id, "bounded")
    assert [(b.meta["step"], b.meta["to"]) for b in bound] == [("ask_details", "acknowledge")]


async def test_visits_are_carried_over_continue_as_new(desk):
    desk.settings.continue_after_events = 40
    concern = await _unclassifiable(desk)
    handle = desk.client.get_workflow_handle_for(ConcernWorkflow.run, concern.workflow_id)
    first_run = (await handle.describe()).run_id
    for i in range(12):
        await act(desk, concern, "note", ADA, text=f"note {i}")
    await desk.wait_for(concern.id, lambda c: c.seq > 20)
    assert (await handle.describe()).run_id != first_run
    await say(desk, concern, "It is the office printer")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    assert len(_entries(desk, concern.id, "question")) == 1


RECLASSIFIED = {
    "id": "reclassified", "title": "Classified again after the first level", "applies_to": {"channels": ["walk_in"]},
    "sla": "slow", "start": "level1",
    "steps": {
        "level1": {"type": "human", "level": 1, "outcomes": {"resolved": "close", "escalated": "classify"}},
        "classify": {"type": "automate", "action": "classify",
                     "outcomes": {"classified": "route", "unclassified": "route"}},
        "route": {"type": "decide", "on": "category", "cases": {"billing": "billing_desk"}, "default": "level2"},
        "billing_desk": {"type": "human", "level": 1, "outcomes": {"resolved": "close"}},
        "level2": {"type": "human", "level": 2, "outcomes": {"resolved": "close"}},
        "close": {"type": "end"},
    },
}


async def test_a_category_and_priority_set_by_staff_win_over_the_classifier(desk):
    with desk.sessions.begin() as session:
        publish(session=session, definition=SopDefinition.model_validate(RECLASSIFIED), by="tests")
    # The words say "orders" and "urgent" to the classifier's rules; the agent knows better.
    concern = await open_concern(desk, category=None, channel="walk_in", subject="Parcel tracking",
                                 body="Urgent: the tracking of my parcel shows the wrong invoice amount.")
    assert concern.sop_id == "reclassified"
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "set_category", ADA, category="billing")
    await act(desk, concern, "set_priority", ADA, priority="low")
    await act(desk, concern, "claim", ADA)
    await act(desk, concern, "escalate", ADA, reason="billing team")
    c = await desk.wait_for(concern.id, lambda c: c.step in ("billing_desk", "level2"))
    assert (c.step, c.category, c.priority) == ("billing_desk", "billing", "low")


async def test_a_lead_moves_a_concern_out_of_a_waiting_step_into_a_queue_with_a_reason(desk):
    concern = await _unclassifiable(desk)
    response = await desk.http.post(f"/api/concerns/{concern.id}/actions", headers=desk.auth,
                                    json={"type": "move", "step": "level1", "reason": "the customer called us"})
    assert response.status_code == 200, response.text
    c = await desk.wait_for(concern.id, lambda c: c.step == "level1")
    assert c.status == "open" and c.sla_state != "paused"
    moved = _entries(desk, concern.id, "moved")
    assert len(moved) == 1 and moved[0].author == "Admin"
    assert moved[0].meta == {"from": "ask_details", "to": "level1", "reason": "the customer called us"}
    assert moved[0].body == "Moved from 'ask_details' to 'level1' by Admin: the customer called us"
    # The reply the question waited for no longer sends the concern anywhere.
    await say(desk, concern, "Here are the details")
    await act(desk, concern, "claim", ADA)
    assert (await desk.concern(concern.id)).step == "level1"


@pytest.mark.parametrize("agent, step, reason, refusal", [
    (ADA, "level1", "stuck", "only a lead or an admin can move a concern to another step"),
    (LEE, "level9", "stuck", "there is no step 'level9' in SOP general-inquiry v1 (its steps: classify, ask_details, "
                             "route, order_lookup, confirm_order, acknowledge, level1, level2, survey, done, "
                             "closed_unanswered)"),
    (LEE, "level1", "  ", "give a reason for the move; it goes on the timeline"),
    (LEE, "ask_details", "stuck", "the concern is already at step 'ask_details'"),
    (LEE, None, "stuck", "choose the step to move the concern to"),
])
async def test_a_move_is_refused_with_the_reason_before_it_enters_history(desk, agent, step, reason, refusal):
    concern = await _unclassifiable(desk)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await act(desk, concern, "move", agent, step=step, reason=reason)
    assert err.value.cause.message == refusal
    assert "moved" not in timeline_kinds(desk, concern.id)


async def test_the_refusal_at_an_automated_step_points_to_the_move(desk):
    concern = await _unclassifiable(desk)
    response = await desk.http.post(f"/api/concerns/{concern.id}/actions", headers=desk.auth, json={"type": "claim"})
    assert response.status_code == 409
    assert response.json()["detail"] == ("the concern is at the automated step 'ask_details', not in a queue; a lead "
                                         "can move it to a step of its SOP (Move on the concern page)")


async def test_a_customer_who_asks_for_a_person_goes_to_the_first_human_step(desk):
    concern = await _unclassifiable(desk)
    response = await desk.http.post(f"/api/concerns/{concern.id}/messages", headers=desk.auth,
                                    json={"text": "Please let me talk to a person", "intent": "human"})
    assert response.status_code == 202, response.text
    c = await desk.wait_for(concern.id, lambda c: c.step == "level1")
    assert c.status == "open"
    asked = _entries(desk, concern.id, "person_requested")
    assert [a.body for a in asked] == ["The customer asked for a person: to 'level1'"]


async def test_a_customer_who_asks_for_a_person_at_a_human_step_stays_there(desk):
    concern = await open_concern(desk)  # the ladder SOP starts at level1
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await say(desk, concern, "A human please", intent="human")
    await desk.wait_for(concern.id, lambda c: "person_requested" in timeline_kinds(desk, concern.id))
    asked = _entries(desk, concern.id, "person_requested")
    assert asked[0].body == "The customer asked for a person; the concern is already in the level 1 queue"
    assert (await desk.concern(concern.id)).step == "level1"
