"""The concern workflow: agent actions as updates, escalation by timers, API round trips."""

from __future__ import annotations


import pytest
from temporalio.client import WorkflowUpdateFailedError

from workflows.concern import ConcernWorkflow
from workflows.payloads import AgentAction, AgentRef

ADA = AgentRef(id=1, name="Ada", level=1, skills=["general"])
BOB = AgentRef(id=2, name="Bob", level=1, skills=["general"])
CAROL = AgentRef(id=3, name="Carol", level=2, skills=["general"])
DAN = AgentRef(id=4, name="Dan", level=3, skills=["general"])


async def open_concern(desk, category="ladder", **kw):
    concern = await desk.intake.open(email=kw.pop("email", "cust@example.com"), name="Cust", subject="Help",
                                     body="Something is wrong", channel="web", category=category, **kw)
    return concern


async def act(desk, concern, type, agent, **kw):
    handle = desk.client.get_workflow_handle(concern.workflow_id)
    return await handle.execute_update(ConcernWorkflow.act, AgentAction(type=type, agent=agent, **kw))


async def test_escalates_l1_l2_l3_by_timers(desk):
    concern = await open_concern(desk)
    c = await desk.wait_for(concern.id, lambda c: c.level == 1)
    assert c.status == "open" and c.step == "level1"
    c = await desk.wait_for(concern.id, lambda c: c.level == 2, timeout=15)
    c = await desk.wait_for(concern.id, lambda c: c.level == 3, timeout=15)
    state = await act(desk, concern, "claim", DAN)
    assert state.assignee_name == "Dan" and state.level == 3
    await act(desk, concern, "resolve", DAN, text="Fixed the root cause")
    c = await desk.wait_for(concern.id, lambda c: c.status == "resolved")
    r = await desk.http.get(f"/api/concerns/{concern.id}", headers=desk.auth)
    kinds = [t["kind"] for t in r.json()["timeline"]]
    assert kinds.count("escalated") == 2
    assert "resolution" in kinds and "survey" in kinds


async def test_validator_rejects_with_reasons_and_nothing_enters_history(desk):
    concern = await open_concern(desk)
    await desk.wait_for(concern.id, lambda c: c.level == 1)
    handle = desk.client.get_workflow_handle(concern.workflow_id)
    before = len([e async for e in handle.fetch_history_events()])

    async def rejected(type, agent, **kw):
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await act(desk, concern, type, agent, **kw)
        return err.value.cause.message

    assert await rejected("resolve", ADA, text="done") == "claim the concern first"
    await act(desk, concern, "claim", ADA)
    after_claim = len([e async for e in handle.fetch_history_events()])
    assert await rejected("claim", BOB) == "already claimed by Ada"
    assert await rejected("resolve", BOB, text="done") == "claimed by Ada; only they can resolve"
    assert await rejected("reply", ADA, text="  ") == "a reply needs text"
    assert await rejected("escalate", ADA) == "give a reason for the escalation"
    history = len([e async for e in handle.fetch_history_events()])
    assert history == after_claim > before  # rejected updates left no trace in history


async def test_wrong_level_cannot_claim(desk):
    concern = await open_concern(desk)
    await desk.wait_for(concern.id, lambda c: c.level == 2, timeout=15)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await act(desk, concern, "claim", ADA)
    assert err.value.cause.message == "this step needs a level 2 agent; Ada is level 1"


async def test_closed_concern_rejects_actions(desk):
    desk.settings.reopen_window = "1s"
    concern = await open_concern(desk)
    await desk.wait_for(concern.id, lambda c: c.level == 1)
    await act(desk, concern, "claim", ADA)
    await act(desk, concern, "resolve", ADA, text="Reset done")
    await desk.wait_for(concern.id, lambda c: c.status == "closed", timeout=15)
    result = await desk.client.get_workflow_handle_for(ConcernWorkflow.run, concern.workflow_id).result()
    assert result.status == "closed"


async def test_resolved_and_closed_concerns_refuse_actions_with_reasons(desk):
    from api.security import create_token, create_user

    desk.settings.reopen_window = "2s"
    with desk.sessions.begin() as session:
        user = create_user(session=session, email="ada@desk.test", password="ada-password", role="agent", level=1,
                           name="Ada")
        auth = {"Authorization": f"Bearer {create_token(session=session, user=user)}"}
    concern = await open_concern(desk)
    await desk.wait_for(concern.id, lambda c: c.level == 1)
    url = f"/api/concerns/{concern.id}/actions"
    assert (await desk.http.post(url, json={"type": "claim"}, headers=auth)).status_code == 200
    assert (await desk.http.post(url, json={"type": "resolve", "text": "ok"}, headers=auth)).status_code == 200
    await desk.wait_for(concern.id, lambda c: c.status == "resolved")
    resolved = await desk.http.post(url, json={"type": "reply", "text": "one more thing"}, headers=auth)
    assert resolved.status_code == 409
    assert resolved.json()["detail"] == "the concern is resolved; it reopens when the customer writes again"
    await desk.wait_for(concern.id, lambda c: c.status == "closed", timeout=15)
    closed = await desk.http.post(url, json={"type": "note", "text": "late note"}, headers=auth)
    assert closed.status_code == 409 and "not running" in closed.json()["detail"]
    message = await desk.http.post(f"/api/concerns/{concern.id}/messages", json={"text": "hi"}, headers=desk.auth)
    assert message.status_code == 409 and "open a new concern" in message.json()["detail"]
