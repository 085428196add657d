"""The e-level's password-reset link reaches the customer's mail only: staff see that it was sent, never the link."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from registry.models import Customer
from tests.conftest import free_port
from tests.web_support import as_session, csrf_of, make_staff

LINK = re.compile(r"https?://[^\s\"'<>]+/portal/reset/([\w.-]+)")


class Sink:
    """A relay that keeps every message it is handed."""

    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def relay(desk):
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    # Read when a concern opens (whether its workflow delivers mail) and at each delivery.
    desk.settings.relay_host, desk.settings.relay_port = "127.0.0.1", port
    yield sink
    controller.stop()


async def _mail_with_link(sink: Sink, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sink.messages:
            if LINK.search(message.get_body(("plain",)).get_content()):
                return message
        await asyncio.sleep(0.1)
    raise AssertionError(f"no mail with a reset link among {[m['Subject'] for m in sink.messages]}")


def _decoded(value) -> str:
    """A history answer as text, with every payload's base64 data decoded, so a link inside one shows."""
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "data" and isinstance(item, str):
                    try:
                        found.append(base64.b64decode(item).decode("utf-8", "replace"))
                    except ValueError:
                        pass
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return json.dumps(value) + "\n".join(found)


async def test_staff_see_that_a_reset_link_was_sent_and_only_the_customer_gets_the_link(desk, relay):
    concern = await desk.intake.open(email="nia@example.com", name="Nia", subject="Cannot sign in",
                                     body="I forgot my password.", channel="email", category="account-access")
    await desk.wait_for(concern.id, lambda c: c.step == "confirm_reset")
    mail = await _mail_with_link(relay)
    assert mail["To"] == "nia@example.com"
    text = mail.get_body(("plain",)).get_content()
    token = LINK.search(text).group(1)

    with desk.sessions.begin() as session:
        customer_id = session.get(Customer, concern.customer_id).id
    staff = {role: make_staff(desk.sessions, f"{role}.reader@desk.test", role, level=1 if role in ("agent", "lead") else None,
                              skills=["accounts"], token=True)
             for role in ("agent", "lead", "sre", "auditor", "admin", "process_owner")}
    answers: dict[str, str] = {}
    for role, who in staff.items():
        api = {"Authorization": f"Bearer {who['token']}"}
        for path in (f"/api/concerns/{concern.id}", f"/api/customers/{customer_id}",
                     f"/api/concerns/{concern.id}/history"):
            got = await desk.http.get(path, headers=api)
            if got.status_code == 200:
                answers[f"{role} {path}"] = _decoded(got.json())
        browser = as_session(desk, user_id=who["id"])
        for path in (f"/concerns/{concern.id}", f"/customers/{customer_id}", f"/concerns/{concern.id}/actions"):
            got = await desk.http.get(path, headers=browser)
            if got.status_code == 200:
                answers[f"{role} {path}"] = got.text
    # Every kind of answer was read by someone, so the checks below cover every one of them.
    for path in ("/api/concerns/", "/api/customers/", "/history", "/concerns/", "/customers/"):
        assert any(path in key for key in answers), path
    for where, body in answers.items():
        assert token not in body and "/portal/reset/" not in body, f"the reset link shows in {where}"
    page = answers[f"agent /concerns/{concern.id}"]
    assert re.search(r"Sent a password-reset link \(valid until \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", page)
    timeline = json.loads(answers[f"agent /api/concerns/{concern.id}"].split("\n")[0])["timeline"]
    assert any(e["kind"] == "automated_answer" and e["body"].startswith("Sent a password-reset link")
               for e in timeline)

    assert token in mail.get_body(("html",)).get_content() and "The link works once, until" in text
    assert "Sent a password-reset link" not in text  # the staff's line is not the customer's mail

    # The customer's link works: it opens the form and sets the password, once.
    desk.http.cookies.clear()
    form = await desk.http.get(f"/portal/reset/{token}")
    assert form.status_code == 200 and "not valid" not in form.text
    chosen = await desk.http.post(f"/portal/reset/{token}", data={
        "csrf_token": csrf_of(form.text), "password": "a-new-password-1", "password_repeat": "a-new-password-1"})
    assert chosen.status_code == 303
    assert "already used" in (await desk.http.get(f"/portal/reset/{token}")).text


async def test_a_customer_who_wrote_signed_in_is_not_sent_a_reset_link(desk, relay):
    with desk.sessions.begin() as session:
        customer = Customer(email="sam@example.com", name="Sam", password_hash="$argon2id$known")
        session.add(customer)
        session.flush()
        customer_id = customer.id
    headers = as_session(desk, customer_id=customer_id, epoch=0)
    form = await desk.http.get("/portal/concerns/new", headers=headers)
    assert form.status_code == 200
    opened = await desk.http.post("/portal/concerns/new", headers=headers, data={
        "csrf_token": headers["X-CSRF-Token"], "subject": "Cannot change my password",
        "body": "The settings page fails when I save a new password.", "category": "account-access",
        "form_token": "f" * 24})
    assert opened.status_code == 303, opened.text
    concern_id = opened.headers["location"].rsplit("/", 1)[-1]
    concern = await desk.wait_for(concern_id, lambda c: c.step == "level1")
    assert concern.status == "open"
    api = await desk.http.get(f"/api/concerns/{concern_id}", headers=desk.auth)
    automated = [e for e in api.json()["timeline"] if e["kind"] == "automated"]
    assert any(e["meta"].get("action") == "password_reset" and e["meta"].get("outcome") == "not_eligible"
               for e in automated)
    assert not any(LINK.search(m.get_body(("plain",)).get_content()) for m in relay.messages)
