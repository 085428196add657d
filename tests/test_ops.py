"""/ops and GET /api/ops with real trouble: an unstaffed step, a failing connector, a refusing relay, a concern
without a workflow, a late timer, a workflow whose code changed; and the operator actions, attributed."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.intake import Intake
from registry.handover import pending_for
from registry.models import Interaction, OutboxMail
from registry.types import utcnow
from tests.conftest import _desk, catalog_with_test_policies, fresh_database_url
from tests.engine_support import history_events
from tests.ops_support import (
    ChangedConcernWorkflow,
    FailingOrderSystem,
    RefusingRelay,
    ops_of,
    publish_ops_sops,
    sre,
)
from tests.web_support import as_session, csrf_of
from worker import build_worker

WORKER_OPTIONS = {"order_status_attempts": 10**6, "order_status_wait_initial": 0.05, "order_status_wait_max": 0.2}


@pytest.fixture
def relay():
    relay = RefusingRelay()
    relay.controller.start()
    yield relay
    relay.controller.stop()


@pytest.fixture
def orders():
    server = FailingOrderSystem().start()
    yield server
    server.stop()


@pytest.fixture
async def ops_desk(tmp_path, temporal_server, temporal_client, relay, orders):
    """The desk with mail going to the refusing relay and `order_status` pointed at the failing order system."""
    options = {**WORKER_OPTIONS, "order_status_url": orders.url}
    async for desk in _desk(tmp_path, fresh_database_url("sqlite", tmp_path), temporal_server, temporal_client,
                            worker_options=options, relay_host="127.0.0.1", relay_port=relay.port):
        publish_ops_sops(desk.sessions)
        desk.options = options
        yield desk


def _timeline(desk, concern_id: str, kind: str) -> list[Interaction]:
    with desk.sessions.read() as session:
        return list(session.exec(select(Interaction).where(Interaction.concern_id == concern_id,
                                                           Interaction.kind == kind)))


async def _no_sweeping(desk):
    """Keep the app's own sweeper from handing over what the test left pending (as if Temporal stayed away)."""
    async def away():
        return None
    desk.app.state.sweeper.handover_for = away


async def test_unstaffed_step_refused_mail_and_a_concern_without_a_workflow_are_shown_and_fixed(ops_desk, relay):
    desk = ops_desk
    ops = sre(desk)
    unstaffed = await desk.intake.open(email="ann@example.com", name="Ann", subject="Only Worf knows",
                                       body="Need someone who speaks Klingon", channel="web", category="ops-unstaffed")
    await desk.wait_for(unstaffed.id, lambda c: c.step == "expert")
    view = await ops_of(desk, ops["auth"], lambda v: any(m["concern_id"] == unstaffed.id and m["attempts"] >= 1
                                                         for m in v["mail"]))
    [row] = [u for u in view["unstaffed"] if u["concern_id"] == unstaffed.id]
    assert row["level"] == 1 and row["skills"] == ["klingon"] and view["counts"]["unstaffed"] == 1
    [mail] = [m for m in view["mail"] if m["concern_id"] == unstaffed.id]
    assert mail["status"] == "failed" and "451" in mail["last_error"] and mail["to"] == "ann@example.com"

    # A concern registered while Temporal was away: its start stays pending.
    await _no_sweeping(desk)
    offline = Intake(sessions=desk.sessions, client=None, settings=desk.settings, catalog=catalog_with_test_policies())
    orphan = await offline.open(email="bo@example.com", name="Bo", subject="Registered in an outage",
                                body="Hello", channel="api", category="ops-unstaffed")
    view = await ops_of(desk, ops["auth"], lambda v: v["counts"]["without_workflow"] == 1)
    [pending] = view["handovers"]
    assert pending["concern_id"] == orphan.id and pending["kind"] == "start" and pending["age_seconds"] >= 0

    # The page shows each, with the actions an SRE may take; a lead sees the concerns but not the buttons.
    sre_headers = as_session(desk, user_id=ops["id"])
    page = await desk.http.get("/ops", headers=sre_headers)
    assert page.status_code == 200
    html = page.text
    assert f'href="/concerns/{unstaffed.id}"' in html and "level 1 with klingon" in html
    assert f'action="/ops/mail/{mail["outbox_id"]}/retry"' in html and "451" in html
    assert f'action="/ops/concerns/{orphan.id}/restart"' in html and "no workflow yet" in html
    assert 'href="/ops"' in html  # the navigation leads here
    fragment = await desk.http.get("/ops", headers={**sre_headers, "HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="ops-attention"') and "every 5s" in fragment.text
    from tests.web_support import make_staff
    lead = make_staff(desk.sessions, "lead@desk.test", "lead", level=2, name="Lee Lead")
    lead_page = (await desk.http.get("/ops", headers=as_session(desk, user_id=lead["id"]))).text
    assert unstaffed.id in lead_page and "/retry" not in lead_page and 'id="workers"' not in lead_page
    agent = make_staff(desk.sessions, "agent@desk.test", "agent", level=1)
    assert (await desk.http.get("/ops", headers=as_session(desk, user_id=agent["id"]))).status_code == 403
    assert (await desk.http.get("/api/ops", headers=desk.auth)).status_code == 200  # admin
    assert (await desk.http.get("/api/ops")).status_code == 401

    # Without a reason, or without the form's CSRF token, nothing happens.
    csrf = csrf_of(html)
    cookie = {"Cookie": sre_headers["Cookie"]}
    refused = await desk.http.post(f"/ops/mail/{mail['outbox_id']}/retry", headers=cookie, data={"reason": "x"})
    assert refused.status_code == 403
    no_reason = await desk.http.post(f"/api/ops/mail/{mail['outbox_id']}/retry", headers=ops["auth"],
                                     json={"reason": "  "})
    assert no_reason.status_code == 422

    # Retry the mail once the relay takes mail again: delivered, and recorded with who and why.
    relay.refusing = False
    done = await desk.http.post(f"/ops/mail/{mail['outbox_id']}/retry", headers=cookie,
                                data={"csrf_token": csrf, "reason": "relay fixed after the overload"})
    assert done.status_code == 303 and done.headers["location"] == "/ops"
    with desk.sessions.read() as session:
        assert session.get(OutboxMail, mail["outbox_id"]).status == "sent"
    assert [e.rcpt_tos for e in relay.taken][-1] == ["ann@example.com"]
    [entry] = _timeline(desk, unstaffed.id, "operator_action")
    assert entry.author == "Sam Sre" and entry.author_user_id == ops["id"] and entry.direction == "internal"
    assert entry.meta["reason"] == "relay fixed after the overload" and entry.meta["action"] == "retry_mail"
    flashed = {"Cookie": f"ccr_session={done.cookies['ccr_session']}"}
    flash = (await desk.http.get("/ops", headers=flashed)).text
    assert "delivered (sent). Recorded with your reason." in flash

    # Hand the orphan's start over now: its workflow runs, the hand-over is done, the action is recorded.
    restarted = await desk.http.post(f"/api/ops/concerns/{orphan.id}/restart", headers=ops["auth"],
                                     json={"reason": "Temporal is back; not waiting for the sweeper"})
    assert restarted.status_code == 200, restarted.text
    assert restarted.json()["result"] == "handed over" and restarted.json()["by"] == "Sam Sre"
    await desk.wait_for(orphan.id, lambda c: c.step == "expert")
    with desk.sessions.read() as session:
        assert pending_for(session=session, concern_id=orphan.id) == []
    assert _timeline(desk, orphan.id, "operator_action")[0].meta["action"] == "restart_concern"
    again = await desk.http.post(f"/api/ops/concerns/{orphan.id}/restart", headers=ops["auth"], json={"reason": "again"})
    assert again.status_code == 409 and "nothing to hand over" in again.json()["detail"]
    view = await ops_of(desk, ops["auth"], lambda v: v["counts"]["without_workflow"] == 0)
    assert [a["action"] for a in view["operator_actions"]] == ["restart_concern", "retry_mail"]
    # Both are in the staff audit log too, with the concern and the reason.
    audited = (await desk.http.get("/api/audit", params={"action": "ops."}, headers=desk.auth)).json()["items"]
    assert [(e["action"], e["detail"]["reason"]) for e in audited] == [
        ("ops.restart_concern", "Temporal is back; not waiting for the sweeper"),
        ("ops.retry_mail", "relay fixed after the overload")]
    assert audited[0]["target"] == f"concern:{orphan.id}"


async def test_a_failing_connector_shows_its_retries_then_its_failures(ops_desk, orders):
    desk = ops_desk
    ops = sre(desk)
    stuck = await desk.intake.open(email="cy@example.com", name="Cy", subject="Where is order #60000?",
                                   body="It was due Monday", channel="web", category="ops-orders")
    view = await ops_of(desk, ops["auth"], lambda v: any(a["concern_id"] == stuck.id and a["heartbeat"]
                                                         for a in v["stuck_activities"]))
    [activity] = [a for a in view["stuck_activities"] if a["concern_id"] == stuck.id]
    assert activity["activity"] == "run_automation" and activity["attempt"] >= 1
    assert "order 60000" in activity["heartbeat"] and "answered 500" in activity["heartbeat"]
    assert activity["link"] == f"/concerns/{stuck.id}/history#event-{activity['scheduled_event_id']}"
    events = await history_events(desk, stuck.workflow_id)
    scheduled = next(e for e in events if e.event_id == activity["scheduled_event_id"])
    assert scheduled.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    page = (await desk.http.get("/ops", headers=as_session(desk, user_id=ops["id"]))).text
    assert f'href="{activity["link"]}"' in page and "answered 500" in page

    # The order system answers again: the concern moves on and leaves the list.
    orders.released.add("60000")
    await desk.wait_for(stuck.id, lambda c: c.step == "level1")
    await ops_of(desk, ops["auth"], lambda v: not any(a["concern_id"] == stuck.id for a in v["stuck_activities"]))

    # With few attempts the action gives up: the concern follows its SOP, and /ops counts the connector as down.
    desk.options["order_status_attempts"] = 2
    down = await desk.intake.open(email="di@example.com", name="Di", subject="Order #50000 missing",
                                  body="Nothing came", channel="web", category="ops-orders")
    await desk.wait_for(down.id, lambda c: c.step == "level1")
    view = await ops_of(desk, ops["auth"], lambda v: v["failing_actions"])
    [failing] = view["failing_actions"]
    assert failing["action"] == "order_status" and down.id in failing["concern_ids"]
    assert "answered 500 after 2 attempts" in failing["last_detail"]


async def test_a_late_timer_and_a_changed_workflow_are_shown_and_a_reset_is_recorded(ops_desk):
    desk = ops_desk
    ops = sre(desk)
    # The breach SOP's first response is due 4 s after opening; the worker is stopped before it fires.
    late = await desk.intake.open(email="ed@example.com", name="Ed", subject="Timer", body="Tick", channel="web",
                                  category="breach")
    changed = await desk.intake.open(email="fi@example.com", name="Fi", subject="Replays no more", body="Hi",
                                     channel="web", category="ops-unstaffed")
    await desk.wait_for(late.id, lambda c: c.step == "level1")
    await desk.wait_for(changed.id, lambda c: c.step == "expert")
    await desk.worker.shutdown()
    due = (await desk.concern(late.id)).created_at + timedelta(seconds=4)
    # A new workflow task for `changed` meets a worker whose ConcernWorkflow does something else.
    changed_worker = Worker(desk.client, task_queue=desk.settings.temporal_task_queue,
                            workflows=[ChangedConcernWorkflow], workflow_runner=UnsandboxedWorkflowRunner())
    async with changed_worker:
        await desk.intake.message(concern_id=changed.id, text="Any news?", channel="web", author="Fi")
        view = await ops_of(desk, ops["auth"], lambda v: any(f["concern_id"] == changed.id for f in v["task_failures"]),
                            timeout=60)
        while utcnow() < due + timedelta(seconds=7):  # the breach's instant passes with no worker for it
            await asyncio.sleep(0.2)
    [failure] = [f for f in view["task_failures"] if f["concern_id"] == changed.id]
    assert failure["nondeterminism"] and failure["attempt"] >= 2 and view["counts"]["nondeterminism"] >= 1
    assert failure["link"] == f"/concerns/{changed.id}/history#event-{failure['event_id']}"
    events = await history_events(desk, changed.workflow_id)
    failed = next(e for e in events if e.event_id == failure["event_id"])
    assert failed.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED

    # The shipped code is back: the breach fires late, and /ops says by how much.
    async with build_worker(desk.client, desk.settings, desk.sessions):
        view = await ops_of(desk, ops["auth"], lambda v: any(t["concern_id"] == late.id for t in v["late_timers"]))
        [timer] = [t for t in view["late_timers"] if t["concern_id"] == late.id]
        assert timer["kind"] == "breach" and timer["late_seconds"] > 5
        assert timer["link"] == f"/concerns/{late.id}/history#event-{timer['event_id']}"
        assert any(p["kind"] == "workflow" for p in view["workers"]["pollers"])
        assert "workflow" in view["workers"]["backlog"]

        # Reset the changed concern to its first completed workflow task: only such an event is accepted.
        events = await history_events(desk, changed.workflow_id)
        first_done = next(e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        wrong = await desk.http.post(f"/api/ops/concerns/{changed.id}/reset", headers=ops["auth"],
                                     json={"event_id": 1, "reason": "try"})
        assert wrong.status_code == 422 and "WorkflowTaskCompleted" in wrong.json()["detail"]
        sre_headers = as_session(desk, user_id=ops["id"])
        form = await desk.http.post(f"/ops/concerns/{changed.id}/reset", headers=sre_headers, data={
            "csrf_token": sre_headers["X-CSRF-Token"], "event_id": str(first_done),
            "reason": "bad deploy rolled back; replay from the start", "back": f"/concerns/{changed.id}/history"})
        assert form.status_code == 303 and form.headers["location"] == f"/concerns/{changed.id}/history"
        [entry] = _timeline(desk, changed.id, "operator_action")
        assert entry.meta["action"] == "reset_workflow" and entry.meta["event_id"] == first_done
        assert entry.meta["reason"] == "bad deploy rolled back; replay from the start" and entry.author == "Sam Sre"
        described = await desk.client.get_workflow_handle(changed.workflow_id).describe()
        assert described.run_id == entry.meta["run_id"]
        await ops_of(desk, ops["auth"], lambda v: not any(f["concern_id"] == changed.id for f in v["task_failures"]))
