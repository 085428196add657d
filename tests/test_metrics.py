"""/metrics as Prometheus meets it: 401 without credentials, a scrape token, what the desk counts after portal,
mail, phone and page actions, and one sum across the processes of `ccr web --workers 2`."""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from registry.models import Customer
from tests.conftest import free_port
from tests.ops_support import RefusingRelay
from tests.web_support import as_session, make_staff

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def samples(text: str) -> dict[tuple, float]:
    """(name, sorted labels) → value of every sample of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(desk) -> dict:
    response = await desk.http.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert response.status_code == 200, response.text
    return samples(response.text)


@pytest.fixture
def relay():
    relay = RefusingRelay()
    relay.refusing = False
    relay.controller.start()
    yield relay
    relay.controller.stop()


async def test_an_unauthenticated_scraper_gets_401_and_the_scrape_token_is_let_in(desk):
    anonymous = await desk.http.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert "location" not in anonymous.headers
    assert (await desk.http.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})).status_code == 401
    desk.settings.metrics_token = SecretStr("scrape-secret")
    let_in = await desk.http.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert let_in.status_code == 200 and "ccr_concerns_by_level" in let_in.text and "ccr_attention" in let_in.text
    assert (await desk.http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
    assert (await desk.http.get("/metrics", headers=desk.auth)).status_code == 200  # an admin's token still works
    agent = make_staff(desk.sessions, "a1@desk.test", "agent", level=1, token=True)
    assert (await desk.http.get("/metrics", headers={"Authorization": f"Bearer {agent['token']}"})).status_code == 403


async def test_metrics_after_portal_mail_phone_and_page_actions(desk, smtp_port, relay):
    desk.settings.metrics_token = SecretStr("scrape-secret")
    desk.settings.relay_host, desk.settings.relay_port = "127.0.0.1", relay.port
    before = await scrape(desk)
    agent = make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada", token=True)

    # Portal: a signed-in customer opens a concern whose SLA (the breach SOP, 4 s) breaches during the test.
    with desk.sessions.begin() as session:
        customer = Customer(email="pia@example.com", name="Pia")
        session.add(customer)
        session.flush()
        customer_id = customer.id
    portal = as_session(desk, customer_id=customer_id)
    opened = await desk.http.post("/portal/concerns/new", headers=portal, data={
        "subject": "Portal concern", "body": "Opened on the portal", "category": "breach",
        "csrf_token": portal["X-CSRF-Token"]})
    assert opened.status_code in (200, 303), opened.text
    with desk.sessions.read() as session:
        from sqlmodel import select

        from registry.models import Concern
        breach = session.exec(select(Concern).where(Concern.customer_id == customer_id)).one()

    # Mail: a customer writes in; the general SOP classifies it (an e-level outcome) and answers by the relay.
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "max@example.com", desk.settings.support_address, "Hello"
    message["Message-ID"] = "<metrics-1@example.com>"
    message.set_content("My invoice is wrong, I was charged twice.")
    await asyncio.to_thread(_send, smtp_port, message)

    # Phone: an agent logs a call; a page action: the agent claims the portal concern from its page.
    call = await desk.http.post(f"/api/customers/{customer_id}/calls", headers={
        "Authorization": f"Bearer {agent['token']}"}, json={"channel": "phone", "text": "Calling about it",
                                                            "concern_id": breach.id})
    assert call.status_code == 201, call.text
    await desk.wait_for(breach.id, lambda c: c.step == "level1")
    page = as_session(desk, user_id=agent["id"])
    claimed = await desk.http.post(f"/concerns/{breach.id}/actions/claim", headers=page,
                                   data={"csrf_token": page["X-CSRF-Token"]})
    assert claimed.status_code in (200, 303), claimed.text

    deadline = time.monotonic() + 60
    while True:
        after = await scrape(desk)
        breaches = value(after, "ccr_sla_events_total", kind="breach", clock="first_response", policy="fast") - \
            value(before, "ccr_sla_events_total", kind="breach", clock="first_response", policy="fast")
        sent = value(after, "ccr_mail_total", result="sent") - value(before, "ccr_mail_total", result="sent")
        classified = sum(v - before.get(k, 0) for k, v in after.items()
                         if k[0] == "ccr_elevel_outcomes_total" and ("action", "classify") in k[1])
        if (breaches >= 1 and sent >= 1 and classified >= 1) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert breaches >= 1 and sent >= 1 and classified >= 1, (breaches, sent, classified)
    assert value(after, "ccr_sla_events_total", kind="warn", clock="first_response", policy="fast") > \
        value(before, "ccr_sla_events_total", kind="warn", clock="first_response", policy="fast")
    assert value(after, "ccr_sla_timer_lateness_seconds_count") > value(before, "ccr_sla_timer_lateness_seconds_count")
    assert value(after, "ccr_registry_write_seconds_count") > value(before, "ccr_registry_write_seconds_count")
    assert value(after, "ccr_concerns_by_level", status="open", level="1") >= 1
    assert value(after, "ccr_mail_outbox", status="failed") == 0
    assert value(after, "ccr_attention", kind="pollers") >= 1 and value(after, "ccr_temporal_up") == 1
    assert relay.taken, "the relay received the answers"


def _send(port: int, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)


def test_two_web_processes_export_one_sum(tmp_path, temporal_server):
    """`ccr web --workers 2`: each scrape, whichever process answers, counts every process's intake."""
    port = free_port()
    env = {**os.environ, "CCR_DATA_DIR": str(tmp_path / "var"), "CCR_TEMPORAL_ADDRESS": temporal_server.address,
           "CCR_TEMPORAL_TASK_QUEUE": f"multi-{port}", "CCR_METRICS_TOKEN": "scrape-secret",
           "CCR_WORKFLOW_ID_PREFIX": f"multi{port}-"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    subprocess.run([sys.executable, "-m", "ccr", "sop", "publish", "--data", str(tmp_path / "var"),
                    *(os.path.join(ROOT, "sops", "definitions", f) for f in ("general-inquiry.yaml",))],
                   check=True, env=env, cwd=ROOT, capture_output=True)
    token = _admin_token(tmp_path, env)
    proc = subprocess.Popen([sys.executable, "-m", "ccr", "web", "--port", str(port), "--workers", "2"], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/healthz", proc)
        pids = set()
        # A new connection per request, so the kernel hands requests to either process.
        for n in range(6):
            created = httpx.post(f"{base}/api/concerns", headers={"Authorization": f"Bearer {token}"}, json={
                "customer": {"email": f"c{n}@example.com"}, "subject": f"Multi {n}", "body": "x",
                "channel": "api"}, timeout=30)
            assert created.status_code in (201, 202), created.text
        for _ in range(200):
            response = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer scrape-secret"}, timeout=30)
            assert response.status_code == 200
            found = samples(response.text)
            assert value(found, "ccr_concerns_opened_total", channel="api") == 6, response.text[:2000]
            pids.add(response.headers["x-ccr-process"])
            if len(pids) == 2:
                break
        assert len(pids) == 2, "both processes answered scrapes"
    finally:
        proc.terminate()
        proc.wait(30)


def _admin_token(tmp_path, env) -> str:
    data = str(tmp_path / "var")
    subprocess.run([sys.executable, "-m", "ccr", "user", "add", "--email", "admin@multi.test", "--password",
                    "admin-password", "--role", "admin", "--data", data], check=True, env=env, cwd=ROOT,
                   capture_output=True)
    done = subprocess.run([sys.executable, "-m", "ccr", "token", "create", "--email", "admin@multi.test", "--data",
                           data], check=True, env=env, cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip()


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered")

