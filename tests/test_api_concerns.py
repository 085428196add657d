"""The JSON API on SQLite and PostgreSQL: open idempotently, read, act with clear refusals."""

from __future__ import annotations

import asyncio

from sqlmodel import func, select

from api.security import create_token, create_user
from registry.models import Concern, Interaction, User
from tests.web_support import as_session


def _agent(desk, email, level, role="agent"):
    with desk.sessions.begin() as session:
        user = create_user(session=session, email=email, password="agent-password", role=role, level=level,
                           skills=["general"], name=email.split("@")[0].title())
        return {"Authorization": f"Bearer {create_token(session=session, user=user)}"}


BODY = {"customer": {"email": "Jo@Example.com", "name": "Jo"}, "subject": "Broken login",
        "body": "The app says my password is wrong", "channel": "api", "category": "ladder"}


async def test_open_is_idempotent_and_answers_with_the_pinned_sop(desk_on_both):
    desk = desk_on_both
    headers = {**desk.auth, "Idempotency-Key": "order-42"}
    first = await desk.http.post("/api/concerns", json=BODY, headers=headers)
    again = await desk.http.post("/api/concerns", json=BODY, headers=headers)
    assert first.status_code == 201 and again.status_code == 201
    body = first.json()
    assert again.json()["id"] == body["id"]
    assert body["sop"] == {"id": "ladder", "version": 1} and body["workflow_id"].endswith(body["id"])
    assert first.headers["location"] == f"/api/concerns/{body['id']}"
    with desk.sessions.begin() as session:
        assert session.exec(select(func.count()).select_from(Concern)).one() == 1
    await desk.wait_for(body["id"], lambda c: c.step == "level1")
    got = (await desk.http.get(f"/api/concerns/{body['id']}", headers=desk.auth)).json()
    assert got["status"] == "open" and got["level"] == 1 and got["assignee_id"] is None
    assert {c["name"] for c in got["clocks"]} >= {"first_response", "resolution"}
    assert got["timeline"][0]["kind"] == "customer_message"
    assert got["timeline"][0]["body"] == "The app says my password is wrong"


async def test_actions_answer_200_409_and_422_with_messages(desk_on_both):
    desk = desk_on_both
    ada, bob = _agent(desk, "ada@desk.test", 1), _agent(desk, "bob@desk.test", 1)
    created = (await desk.http.post("/api/concerns", json=BODY, headers=desk.auth)).json()
    await desk.wait_for(created["id"], lambda c: c.step == "level1")
    url = f"/api/concerns/{created['id']}/actions"
    ok = await desk.http.post(url, json={"type": "claim"}, headers=ada)
    assert ok.status_code == 200 and ok.json()["assignee_name"] == "Ada"
    taken = await desk.http.post(url, json={"type": "claim"}, headers=bob)
    assert taken.status_code == 409 and taken.json()["detail"] == "already claimed by Ada"
    invalid = await desk.http.post(url, json={"type": "teleport"}, headers=ada)
    assert invalid.status_code == 422 and "type" in str(invalid.json()["detail"])
    reply = await desk.http.post(url, json={"type": "reply", "text": "We are on it"}, headers=ada)
    assert reply.status_code == 200
    assert any(t["kind"] == "reply" and t["body"] == "We are on it" for t in reply.json()["timeline"])


async def test_bad_input_is_refused_and_nothing_is_written(desk):
    missing = await desk.http.post("/api/concerns", json={"subject": "x"}, headers=desk.auth)
    assert missing.status_code == 422
    no_contact = await desk.http.post("/api/concerns", json={**BODY, "customer": {"name": "Nobody"}},
                                      headers=desk.auth)
    assert no_contact.status_code == 422 and "e-mail or phone" in no_contact.json()["detail"]
    not_json = await desk.http.post("/api/concerns", content=b"{nope", headers={**desk.auth,
                                                                                "content-type": "application/json"})
    assert not_json.status_code == 422
    anonymous = await desk.http.post("/api/concerns", json=BODY)
    assert anonymous.status_code == 401
    with desk.sessions.begin() as session:
        assert session.exec(select(func.count()).select_from(Concern)).one() == 0
        assert session.exec(select(func.count()).select_from(Interaction)).one() == 0


async def test_customer_messages_and_listing_with_cursor(desk):
    ids = []
    for i in range(3):
        r = await desk.http.post("/api/concerns", json={**BODY, "subject": f"Issue {i}"}, headers=desk.auth)
        ids.append(r.json()["id"])
    page1 = (await desk.http.get("/api/concerns?limit=2", headers=desk.auth)).json()
    page2 = (await desk.http.get(f"/api/concerns?limit=2&cursor={page1['next_cursor']}", headers=desk.auth)).json()
    assert [c["id"] for c in page1["items"] + page2["items"]] == ids[::-1] and page2["next_cursor"] is None
    await desk.wait_for(ids[0], lambda c: c.step == "level1")
    sent = await desk.http.post(f"/api/concerns/{ids[0]}/messages", json={"text": "Any news?"}, headers=desk.auth)
    assert sent.status_code == 202
    await desk.wait_for(ids[0], lambda c: any(k["name"] == "next_response" for k in c.clocks))
    unknown = await desk.http.post("/api/concerns/CCR-NOPE0000/messages", json={"text": "hi"}, headers=desk.auth)
    assert unknown.status_code == 404


async def test_history_is_for_sres_and_shows_the_workflow_events(desk):
    created = (await desk.http.post("/api/concerns", json=BODY, headers=desk.auth)).json()
    await desk.wait_for(created["id"], lambda c: c.step == "level1")
    ada = _agent(desk, "ada@desk.test", 1)
    denied = await desk.http.get(f"/api/concerns/{created['id']}/history", headers=ada)
    assert denied.status_code == 403
    raw = (await desk.http.get(f"/api/concerns/{created['id']}/history", params={"raw": 1}, headers=desk.auth)).json()
    assert raw["runs"][0]["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"


async def test_readyz_reports_database_temporal_and_worker(desk):
    ready = await desk.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["worker"]["pollers"] >= 1
    assert (await desk.http.get("/healthz")).json() == {"status": "ok"}
    queue = desk.settings.temporal_task_queue
    desk.app.state.settings.temporal_task_queue = "nobody-polls-this"
    try:
        not_ready = await desk.http.get("/readyz")
    finally:
        desk.app.state.settings.temporal_task_queue = queue
    assert not_ready.status_code == 503
    assert "no worker polls" in not_ready.json()["checks"]["worker"]["error"]


async def test_metrics_count_intake_actions_and_the_projection(desk):
    ada = _agent(desk, "ada@desk.test", 1)
    created = (await desk.http.post("/api/concerns", json=BODY, headers=desk.auth)).json()
    await desk.wait_for(created["id"], lambda c: c.step == "level1")
    url = f"/api/concerns/{created['id']}/actions"
    await desk.http.post(url, json={"type": "resolve", "text": "x"}, headers=ada)
    await desk.http.post(url, json={"type": "claim"}, headers=ada)
    assert (await desk.http.get("/metrics", headers=ada)).status_code == 403
    text = (await desk.http.get("/metrics", headers=desk.auth)).text
    assert 'ccr_concerns_opened_total{channel="api"} 1.0' in text
    assert 'ccr_agent_actions_total{result="rejected",type="resolve"} 1.0' in text
    assert 'ccr_agent_actions_total{result="accepted",type="claim"} 1.0' in text
    assert 'ccr_concerns{sla_state="ok",status="open"} 1.0' in text


async def test_worker_exports_temporal_sdk_metrics(tmp_path, temporal_server):
    import httpx

    from registry.settings import Settings
    from tests.conftest import free_port
    from worker import build_worker
    from workflows.client import make_client, worker_runtime

    port = free_port()
    settings = Settings(temporal_address=temporal_server.address, worker_metrics_address=f"127.0.0.1:{port}",
                        data_dir=tmp_path)
    runtime = worker_runtime(settings)
    client = await make_client(settings, runtime=runtime)
    async with build_worker(client, settings, None, task_queue=f"metrics-{port}"):
        async with httpx.AsyncClient() as http:
            for _ in range(50):  # the exporter starts in the background
                try:
                    response = await http.get(f"http://127.0.0.1:{port}/metrics")
                    if "temporal_" in response.text:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
    assert response.status_code == 200 and "temporal_" in response.text


ROLES = [("agent", 1), ("lead", 2), ("admin", None), ("integration", None), ("process_owner", None), ("sre", None),
         ("auditor", None)]
MAY_WRITE_FOR_CUSTOMERS = {"agent", "lead", "admin", "integration"}


async def test_only_desk_staff_and_integrations_write_as_a_customer_and_the_message_names_them(desk):
    opened = (await desk.http.post("/api/concerns", json=BODY, headers=desk.auth)).json()
    await desk.wait_for(opened["id"], lambda c: c.step == "level1")
    for role, level in ROLES:
        headers = _agent(desk, f"{role}@roles.test", level, role=role)
        new = await desk.http.post("/api/concerns", json={**BODY, "subject": f"By {role}"}, headers=headers)
        message = await desk.http.post(f"/api/concerns/{opened['id']}/messages", json={"text": f"From {role}"},
                                       headers=headers)
        if role in MAY_WRITE_FOR_CUSTOMERS:
            assert new.status_code == 201 and message.status_code == 202, (role, new.text, message.text)
        else:
            assert new.status_code == 403 and message.status_code == 403, role
            assert "this is not open to" in message.json()["detail"]
    with desk.sessions.begin() as session:
        lead_id = session.exec(select(User.id).where(User.email == "lead@roles.test")).one()
    timeline = (await desk.http.get(f"/api/concerns/{opened['id']}", headers=desk.auth)).json()["timeline"]
    written = {t["body"]: t["meta"] for t in timeline if t["kind"] == "customer_message"}
    assert set(written) == {BODY["body"]} | {f"From {r}" for r in MAY_WRITE_FOR_CUSTOMERS}
    assert (written["From lead"]["posted_by"], written["From lead"]["posted_by_id"]) == ("Lead", lead_id)
    for role in MAY_WRITE_FOR_CUSTOMERS:
        assert written[f"From {role}"]["posted_by_role"] == role
    assert written[BODY["body"]]["posted_by_role"] == "admin"  # the concern opened with the desk's admin token
    with desk.sessions.begin() as session:
        subjects = set(session.exec(select(Concern.subject)))
    assert subjects == {BODY["subject"]} | {f"By {r}" for r in MAY_WRITE_FOR_CUSTOMERS}
    # Agents see who wrote it on the concern page.
    page = await desk.http.get(f"/concerns/{opened['id']}", headers=as_session(desk, user_id=lead_id))
    assert "posted by Lead for the customer" in page.text

