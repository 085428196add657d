"""Helpers for driving concerns the way agents and customers do."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from sqlmodel import select

from registry.models import ClockEvent, Interaction
from workflows.concern import ConcernWorkflow
from workflows.payloads import AgentAction, AgentRef

ADA = AgentRef(id=1, name="Ada", level=1, skills=["general"])
BOB = AgentRef(id=2, name="Bob", level=1, skills=["general"])
CAROL = AgentRef(id=3, name="Carol", level=2, skills=["general"])
DAN = AgentRef(id=4, name="Dan", level=3, skills=["general"])


async def open_concern(desk, category="ladder", **kw):
    return await desk.intake.open(email=kw.pop("email", "cust@example.com"), name=kw.pop("name", "Cust"),
                                  subject=kw.pop("subject", "Help"), body=kw.pop("body", "Something is wrong"),
                                  channel=kw.pop("channel", "web"), category=category, **kw)


async def act(desk, concern, type, agent, **kw):
    handle = desk.client.get_workflow_handle_for(ConcernWorkflow.run, concern.workflow_id)
    return await handle.execute_update(ConcernWorkflow.act, AgentAction(type=type, agent=agent, **kw))


async def say(desk, concern, text="More details", intent="message"):
    return await desk.intake.message(concern_id=concern.id, text=text, channel="web", author="Cust", intent=intent)


def timeline_kinds(desk, concern_id: str) -> list[str]:
    with desk.sessions.begin() as session:
        rows = session.exec(select(Interaction).where(Interaction.concern_id == concern_id).order_by(Interaction.id))
        return [r.kind for r in rows]


def clock_events(desk, concern_id: str) -> list[ClockEvent]:
    with desk.sessions.begin() as session:
        return list(session.exec(select(ClockEvent).where(ClockEvent.concern_id == concern_id)
                                 .order_by(ClockEvent.seq)))


async def history_events(desk, workflow_id: str):
    handle = desk.client.get_workflow_handle(workflow_id)
    return [e async for e in handle.fetch_history_events()]


TIMER_FIRED = EventType.EVENT_TYPE_TIMER_FIRED
TASK_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
