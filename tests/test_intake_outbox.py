"""Nothing a customer sends is lost while Temporal is unreachable: the registry is the outbox.

Intake stores every new concern, message and rating with a pending hand-over, and the desk hands them
to Temporal by itself once it answers again: in the request, from the web app's sweeper, or at the
start-up of the next process after one was killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlmodel import col, select
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.intake import Intake
from registry.db import Sessions, make_engine
from registry.handover import Handover
from registry.models import Concern, Interaction
from tests.conftest import (
    Desk,
    DevServer,
    catalog_with_test_policies,
    fresh_database_url,
    free_port,
    make_settings,
    publish_all,
)
from tests.engine_support import ADA, act, clock_events, open_concern
from tests.intake_kit import customer_mail, open_in_portal, send, signed_in
from tests.web_support import publish_workspace_sop
from workflows.client import make_client
from workflows.concern import ConcernWorkflow
from workflows.payloads import CustomerMessage

ROOT = Path(__file__).parent.parent


def pending(desk, concern_id: str | None = None) -> list[Handover]:
    with desk.sessions.begin() as session:
        query = select(Handover).where(col(Handover.delivered_at).is_(None))
        if concern_id:
            query = query.where(Handover.concern_id == concern_id)
        return list(session.exec(query))


async def wait_until(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# ---- the workflow side: a message counts once, and a reply stored in time counts ---------------


async def test_a_reply_stored_in_time_but_handed_over_late_still_counts_when_the_wait_runs_out(desk):
    concern = await open_concern(desk, category="reply-window")
    await desk.wait_for(concern.id, lambda c: c.status == "waiting_customer")
    # A web process that could not reach Temporal: the reply is stored, its hand-over left pending.
    cut_off = Intake(sessions=desk.sessions, client=None, settings=desk.settings, catalog=desk.intake.catalog)
    row, _ = await cut_off.message(concern_id=concern.id, text="Here are the details", channel="web", author="Cust")
    assert [h.interaction_id for h in pending(desk, concern.id)] == [row.id]

    # The 3 s wait runs out; the workflow asks the registry and finds the answer instead of closing unanswered.
    after = await desk.wait_for(concern.id, lambda c: c.step != "ask", timeout=20)
    assert (after.step, after.status) == ("level1", "open")
    [started] = [e for e in clock_events(desk, concern.id) if e.clock == "next_response" and e.kind == "start"]
    assert abs((started.at - row.created_at).total_seconds()) < 0.5  # counted from when the customer wrote

    # The late hand-over arrives: Temporal takes it and the workflow ignores what it has heard.
    assert await desk.intake.handover.hand_over(concern.id)
    await act(desk, concern, "claim", ADA)
    state = await desk.client.get_workflow_handle(concern.workflow_id).query(ConcernWorkflow.state)
    assert state.step == "level1"
    starts = [e for e in clock_events(desk, concern.id) if e.clock == "next_response" and e.kind == "start"]
    assert len(starts) == 1


async def test_a_message_handed_over_twice_moves_the_clocks_once(desk):
    concern = await open_concern(desk)
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", ADA)
    await act(desk, concern, "request_info", ADA, text="Which printer is it?")
    row, _ = await desk.intake.message(concern_id=concern.id, text="The one on floor 2", channel="web", author="Cust")
    await desk.wait_for(concern.id, lambda c: c.status == "open")
    await act(desk, concern, "reply", ADA, text="Thanks, on it")
    before = clock_events(desk, concern.id)

    # The same interaction signalled again, as a second process finishing the same hand-over would.
    handle = desk.client.get_workflow_handle(concern.workflow_id)
    await handle.signal(ConcernWorkflow.customer_message,
                        CustomerMessage(interaction_id=row.id, text="The one on floor 2", at=row.created_at))
    await act(desk, concern, "note", ADA, text="checked")  # a round trip: the signal above has been handled
    assert [(e.clock, e.kind) for e in clock_events(desk, concern.id)] == [(e.clock, e.kind) for e in before]


# ---- the whole desk through an outage of the Temporal server -----------------------------------


async def test_intake_on_every_channel_during_an_outage_reaches_the_workflows_when_temporal_is_back(tmp_path):
    from api.mail_intake import serve_smtp
    from api.security import create_token, create_user
    from web.app import create_site
    from worker import build_worker

    server = DevServer(db_file=tmp_path / "temporal.db").start()
    url = fresh_database_url("sqlite", tmp_path)
    settings = make_settings(tmp_path, url, server.address, smtp_port=free_port())
    sessions = Sessions(make_engine(url))
    publish_all(sessions)
    publish_workspace_sop(sessions)  # a level 1 step without timers, which the outage must not move on
    catalog = catalog_with_test_policies()
    with sessions.begin() as session:
        admin = create_user(session=session, email="admin@desk.test", password="admin-password", role="admin",
                            level=3, skills=["general"])
        token = create_token(session=session, user=admin)
    auth = {"Authorization": f"Bearer {token}"}
    client = await _connect(settings)
    app = create_site(settings)
    worker = build_worker(client, settings, sessions)
    smtp = None
    try:
        async with app.router.lifespan_context(app):
            app.state.catalog = catalog
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk") as http:
                desk = Desk(settings=settings, sessions=sessions, client=client, app=app, http=http, worker=worker,
                            auth=auth, intake=Intake(sessions=sessions, client=client, settings=settings,
                                                     catalog=catalog))
                smtp = asyncio.create_task(serve_smtp(settings, intake=desk.intake))
                portal = await signed_in(desk, "casey@example.com", name="Casey")
                async with worker:
                    made = await http.post("/api/concerns", headers=auth, json={
                        "customer": {"email": "casey@example.com"}, "subject": "Invoice", "body": "Wrong total",
                        "channel": "api", "category": "workspace"})
                    assert made.status_code == 201 and made.json()["workflow"] == "running"
                    earlier = await desk.wait_for(made.json()["id"], lambda c: c.step == "level1")
                    await act(desk, earlier, "claim", ADA)
                    await act(desk, earlier, "request_info", ADA, text="Which invoice?")
                    await desk.wait_for(earlier.id, lambda c: c.status == "waiting_customer")

                server.stop()  # -------- Temporal is down from here on --------
                keyed = await http.post("/api/concerns", headers={**auth, "Idempotency-Key": "k-1"}, json={
                    "customer": {"email": "dana@example.com"}, "subject": "Refund", "body": "Please refund",
                    "channel": "api", "category": "ladder"})
                assert keyed.status_code == 202, keyed.text
                assert keyed.json()["workflow"] == "pending"
                again = await http.post("/api/concerns", headers={**auth, "Idempotency-Key": "k-1"}, json={
                    "customer": {"email": "dana@example.com"}, "subject": "Refund", "body": "Please refund",
                    "channel": "api", "category": "ladder"})
                assert again.json()["id"] == keyed.json()["id"]
                unkeyed = await http.post("/api/concerns", headers=auth, json={
                    "customer": {"email": "erin@example.com"}, "subject": "Login", "body": "Locked out",
                    "channel": "api", "category": "ladder"})
                assert unkeyed.status_code == 202 and unkeyed.json()["workflow"] == "pending"
                answer = await http.post(f"/api/concerns/{earlier.id}/messages", headers=auth,
                                         json={"text": "Invoice 4711", "channel": "api"})
                assert answer.status_code == 202 and answer.json()["delivered"] is False
                refused = await http.post(f"/api/concerns/{earlier.id}/actions", headers=auth,
                                          json={"type": "note", "text": "while down"})
                assert refused.status_code == 503 and "Temporal is unreachable" in refused.json()["detail"]

                opened = await open_in_portal(portal, subject="Printer", body="It jams", category="ladder")
                assert opened.status_code == 303
                portal_page = await portal.get(opened.headers["location"])
                assert "stored safely" in portal_page.text
                portal_id = opened.headers["location"].rsplit("/", 1)[-1]

                code, reply = await asyncio.to_thread(send, settings.smtp_port, customer_mail(
                    "My scanner is broken too", sender="Fay <fay@example.com>", message_id="<fay-1@example.com>"),
                    sender="fay@example.com")
                assert code == 250 and "queued as" in reply
                mailed_id = next(c.id for c in _concerns(sessions) if c.subject == "Printer jams")

                waiting = {keyed.json()["id"], unkeyed.json()["id"], portal_id, mailed_id, earlier.id}
                assert {h.concern_id for h in pending(desk)} == waiting

                server.start()  # -------- Temporal is back; nobody repeats anything --------
                client = await _connect(settings)
                desk.client = client
                async with build_worker(client, settings, sessions):
                    await wait_until(lambda: not pending(desk), 60, "every hand-over to be delivered")
                    for concern_id in waiting - {earlier.id}:
                        concern = await desk.wait_for(concern_id, lambda c: c.status != "new", timeout=30)
                        first = [e for e in clock_events(desk, concern_id)
                                 if e.clock == "first_response" and e.kind == "start"][0]
                        # The clocks start when the concern was registered, not when Temporal came back.
                        assert abs((first.at - concern.created_at).total_seconds()) < 1
                    back = await desk.wait_for(earlier.id, lambda c: c.status == "open", timeout=30)
                    assert back.assignee_name == "Ada"
                    resumed = [e for e in clock_events(desk, earlier.id) if e.kind == "resume"]
                    with sessions.begin() as session:
                        reply_row = session.exec(select(Interaction).where(
                            Interaction.concern_id == earlier.id, Interaction.body == "Invoice 4711")).one()
                    assert resumed and abs((resumed[0].at - reply_row.created_at).total_seconds()) < 1
                    assert len(_concerns(sessions)) == 5
    finally:
        if smtp is not None:
            smtp.cancel()
            await asyncio.gather(smtp, return_exceptions=True)
        server.stop()
        sessions.engine.dispose()


async def _connect(settings):
    for _ in range(100):
        try:
            client = await make_client(settings)
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            return client
        except Exception:
            await asyncio.sleep(0.2)
    raise RuntimeError("the dev server did not come back")


def _concerns(sessions) -> list[Concern]:
    with sessions.begin() as session:
        return list(session.exec(select(Concern)))


# ---- a process killed between the registry write and the hand-over -----------------------------

KILLED_AFTER_WRITE = """
import os, signal, sys
from api.intake import Intake
from registry.db import Sessions, make_engine
from registry.settings import Settings
from tests.conftest import catalog_with_test_policies

settings = Settings(database_url=sys.argv[1], workflow_id_prefix=sys.argv[2])
intake = Intake(sessions=Sessions(make_engine(settings.resolved_database_url)), client=None, settings=settings,
                catalog=catalog_with_test_policies())
concern, _ = intake._register("gus@example.com", None, "Gus", "Parcel", "Where is my parcel?", "web", None,
                           "ladder", None, None, None)
print(concern.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # killed before anything reaches Temporal
"""


async def test_a_concern_registered_by_a_killed_process_starts_when_the_next_one_starts(
        tmp_path, temporal_server, temporal_client):
    from web.app import create_site
    from worker import build_worker

    url = fresh_database_url("sqlite", tmp_path)
    settings = make_settings(tmp_path, url, temporal_server.address)
    sessions = Sessions(make_engine(url))
    publish_all(sessions)
    proc = subprocess.run([sys.executable, "-c", KILLED_AFTER_WRITE, url, settings.workflow_id_prefix],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    concern_id = proc.stdout.split()[0]
    with sessions.begin() as session:
        assert session.get(Concern, concern_id).status == "new"

    app = create_site(settings)
    async with build_worker(temporal_client, settings, sessions), app.router.lifespan_context(app):
        app.state.catalog = catalog_with_test_policies()
        desk = Desk(settings=settings, sessions=sessions, client=temporal_client, intake=None, http=None,
                    worker=None, auth={}, app=app)
        concern = await desk.wait_for(concern_id, lambda c: c.step == "level1", timeout=30)
        assert concern.status == "open"
        assert not pending(desk)
    sessions.engine.dispose()


# ---- poison and unreadable mail over a real SMTP socket ----------------------------------------


async def test_a_mail_of_several_megabytes_opens_a_concern_whose_workflow_carries_an_excerpt(desk, smtp_port):
    text = "My printer jams on page one. " + ("Details of the log follow. " * 200_000)  # about 5 MB
    code, reply = await asyncio.to_thread(send, smtp_port, customer_mail(text, message_id="<big@example.com>"))
    assert code == 250 and "queued as" in reply, reply
    concern_id = reply.split("queued as")[1].split()[0]
    concern = await desk.wait_for(concern_id, lambda c: c.status != "new", timeout=30)
    with desk.sessions.begin() as session:
        first = session.exec(select(Interaction).where(Interaction.concern_id == concern.id)
                             .order_by(Interaction.id)).first()
    assert len(first.body) > 5_000_000  # the registry holds every word
    history = await desk.client.get_workflow_handle(concern.workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert sum(len(p.data) for p in started.input.payloads) < 200_000


async def test_a_mail_over_the_advertised_size_is_refused_at_the_door(desk):
    import smtplib

    from api.mail_intake import serve_smtp

    desk.settings.max_message_bytes, desk.settings.smtp_port = 200_000, free_port()
    listener = asyncio.create_task(serve_smtp(desk.settings, intake=desk.intake))
    try:
        for _ in range(200):
            try:
                with smtplib.SMTP("127.0.0.1", desk.settings.smtp_port, timeout=5) as conn:
                    conn.ehlo("mx.example.com")
                    advertised = int(conn.esmtp_features["size"])
                break
            except OSError:
                await asyncio.sleep(0.05)
        assert advertised == 200_000
        code, _ = await asyncio.to_thread(send, desk.settings.smtp_port,
                                          customer_mail("x " * 150_000, message_id="<huge@example.com>"))
        assert code == 552
        code, _ = await asyncio.to_thread(send, desk.settings.smtp_port,
                                          customer_mail("x " * 50_000, message_id="<fits@example.com>"))
        assert code == 250
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def test_a_mail_nested_too_deeply_to_parse_is_kept_and_shown_to_agents(desk, smtp_port):
    inner = b"Content-Type: text/plain\r\n\r\nMy printer jams\r\n"
    for i in range(2000):
        inner = (b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)) + inner + b"\r\n--b%d--\r\n" % i
    raw = (b"From: Hal <hal@example.com>\r\nTo: support@ccr.localhost\r\nSubject: Nested\r\n"
           b"Message-ID: <nested@example.com>\r\nMIME-Version: 1.0\r\n") + inner
    code, reply = await asyncio.to_thread(send, smtp_port, raw, sender="hal@example.com")
    assert code == 250, reply
    response = await desk.http.get("/customers/mail", headers=desk.auth)
    assert "nested too deeply" in response.text
