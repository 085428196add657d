"""`/metrics` counts every concern the web process opens (portal, phone, API and, in `ccr up`, e-mail) and every
agent action taken on a page or through the API, each once."""

from __future__ import annotations

import asyncio
import re

from api.mail_intake import start_listener
from tests.conftest import free_port
from tests.intake_kit import customer_mail, open_in_portal, send, signed_in, staff_headers
from tests.web_support import Agent, make_staff, publish_workspace_sop

API_BODY = {"customer": {"email": "api@example.com", "name": "Api"}, "subject": "Cannot sign in",
            "body": "The app says no.", "channel": "api", "category": "workspace"}


def sample(text: str, name: str, **labels) -> float:
    """The value of one sample in a Prometheus exposition, 0 when it is not there."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    found = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_opened_and_actions_count_every_channel_and_page_once(desk):
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    api_headers, _ = staff_headers(desk, role="agent", level=1, email="api-agent@desk.test")

    # API, twice with the same key: one concern.
    keyed = {**desk.auth, "Idempotency-Key": "metrics-1"}
    first = (await desk.http.post("/api/concerns", json=API_BODY, headers=keyed)).json()
    assert (await desk.http.post("/api/concerns", json=API_BODY, headers=keyed)).json()["id"] == first["id"]
    # The portal's form.
    portal = await signed_in(desk, "pia@example.com", name="Pia")
    assert (await open_in_portal(portal, subject="Parcel late", body="Still waiting.", category="workspace")
            ).status_code == 303
    # A phone call logged by an agent.
    found = await desk.http.post("/api/customers", json={"phone": "+49 30 1234567", "name": "Frank"},
                                 headers=api_headers)
    call = await desk.http.post(f"/api/customers/{found.json()['id']}/calls", headers=api_headers,
                                json={"channel": "phone", "text": "Router blinks red.", "category": "workspace"})
    assert call.status_code == 201, call.text
    # A mail through the SMTP listener that `ccr up` runs in the web process, counting into its metrics.
    desk.settings.smtp_port = free_port()
    controller = await start_listener(desk.settings, client=desk.client, sessions=desk.sessions,
                                      on_opened=desk.app.state.metrics.count_opened)
    try:
        code, _ = await asyncio.to_thread(send, desk.settings.smtp_port, customer_mail("My printer jams."))
        assert code == 250
        again, _ = await asyncio.to_thread(send, desk.settings.smtp_port, customer_mail("My printer jams."))
        assert again == 250  # the same Message-ID again: no second concern
    finally:
        controller.stop()

    await desk.wait_for(first["id"], lambda c: c.step == "level1")
    async with Agent(desk, "ada@desk.test") as ada:
        claimed = await ada.act(first["id"], "claim")                      # a page form, without htmx
        assert claimed.status_code == 303
        refused = await ada.act(first["id"], "claim", htmx=True)           # again, with htmx: refused
        assert refused.status_code == 409
        noted = await ada.act(first["id"], "note", htmx=True, text="Checked the account.")
        assert noted.status_code == 200
    rejected = await desk.http.post(f"/api/concerns/{first['id']}/actions", json={"type": "resolve", "text": "x"},
                                    headers=api_headers)                   # the API: held by Ada
    assert rejected.status_code == 409

    text = (await desk.http.get("/metrics", headers=desk.auth)).text
    opened = {ch: sample(text, "ccr_concerns_opened_total", channel=ch) for ch in ("api", "web", "phone", "email")}
    assert opened == {"api": 1, "web": 1, "phone": 1, "email": 1}
    actions = "ccr_agent_actions_total"
    assert sample(text, actions, type="claim", result="accepted") == 1
    assert sample(text, actions, type="claim", result="rejected") == 1
    assert sample(text, actions, type="note", result="accepted") == 1
    assert sample(text, actions, type="resolve", result="rejected") == 1
