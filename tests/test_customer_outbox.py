"""The customer page and the outbox say what became of each mail; each mail opens; sign-in links for admins only;
the customer timeline hides the workflow's own rows with one toggle."""

from __future__ import annotations

import html
import logging
import re

from sqlmodel import select

from registry.models import Customer, OutboxMail
from tests.intake_kit import csrf_of, portal_client
from tests.web_support import Agent, make_staff, publish_workspace_sop

REPLY = "We have reset the router remotely; it should be stable now."


async def _replied_concern(desk):
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "root@desk.test", "admin", name="Root")
    concern = await desk.intake.open(email="rita@example.com", name="Rita", subject="Router keeps rebooting",
                                     body="Every ten minutes.", channel="web", category="workspace")
    await desk.wait_for(concern.id, lambda c: c.level == 1)
    async with Agent(desk, "ada@desk.test") as ada:
        await ada.act(concern.id, "claim")
        assert (await ada.act(concern.id, "reply", text=REPLY)).status_code == 303
    for _ in range(200):
        with desk.sessions.begin() as session:
            mail = next((m for m in session.exec(select(OutboxMail).where(OutboxMail.concern_id == concern.id))
                         if REPLY in m.text), None)
            customer = session.exec(select(Customer).where(Customer.email == "rita@example.com")).one()
        if mail is not None:
            return concern, mail, customer
        import asyncio
        await asyncio.sleep(0.1)
    raise AssertionError("no reply mail in the outbox")


async def test_delivered_mail_shows_its_true_state_and_opens_with_headers_and_body(desk):
    concern, mail, customer = await _replied_concern(desk)
    with desk.sessions.begin() as session:
        session.add(OutboxMail(concern_id=None, to_address="rita@example.com", subject="Bounced <b>notice</b>",
                               message_id="<failed.1@ccr.localhost>", status="failed", attempts=3,
                               last_error="550 5.1.1 mailbox unavailable",
                               text="Hello", html='<p onclick="x()">Hi <script>alert(1)</script><b>there</b></p>'))
    async with Agent(desk, "ada@desk.test") as ada:
        page = (await ada.http.get(f"/customers/{customer.id}")).text
        assert "queued · 0" not in page and ">queued<" not in page
        assert "kept in the local outbox (no relay is configured)" in page
        assert "failed: 550 5.1.1 mailbox unavailable" in page
        assert f'href="/customers/outbox/{mail.id}"' in page
        opened = (await ada.http.get(f"/customers/outbox/{mail.id}")).text
        assert REPLY in opened and html.escape(mail.message_id) in opened and "rita@example.com" in opened
        assert "support@ccr.localhost" in opened and '<div class="mail-html">' in opened
        failed_id = re.search(r'href="/customers/outbox/(\d+)">Bounced', page).group(1)
        bounced = (await ada.http.get(f"/customers/outbox/{failed_id}")).text
        assert "550 5.1.1 mailbox unavailable" in bounced and "<b>notice</b>" not in bounced
        assert "alert(1)" not in bounced and "onclick" not in bounced and "<b>there</b>" in bounced
        assert (await ada.http.get("/customers/outbox/999999")).status_code == 404


async def test_the_local_outbox_finds_a_sign_up_link_for_admins_only_and_records_each_opening(desk, caplog):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "root@desk.test", "admin", name="Root")
    visitor = portal_client(desk)
    token = await csrf_of(visitor, "/portal/signup")
    await visitor.post("/portal/signup", data={"name": "Judy", "email": "judy@example.com", "csrf_token": token})
    token = await csrf_of(visitor, "/portal/signup")
    await visitor.post("/portal/signup", data={"name": "Karl", "email": "karl@example.org", "csrf_token": token})
    with desk.sessions.begin() as session:
        judy = session.exec(select(OutboxMail).where(OutboxMail.to_address == "judy@example.com")).one()
    link = re.search(r"https?://\S+/portal/reset/\S+", judy.text).group(0)

    async with Agent(desk, "ada@desk.test") as ada, Agent(desk, "root@desk.test") as root:
        listing = (await ada.http.get("/customers/outbox")).text
        assert listing.index("karl@example.org") < listing.index("judy@example.com")  # newest first
        assert "sign-in link" in listing and "kept in the local outbox" in listing and link not in listing
        found = (await ada.http.get("/customers/outbox", params={"to": "JUDY@"})).text
        assert "judy@example.com" in found and "karl@example.org" not in found
        refused = (await ada.http.get(f"/customers/outbox/{judy.id}")).text
        assert link not in refused and "Only an admin can read it" in refused
        with caplog.at_level(logging.WARNING, logger="ccr.outbox"):
            shown = (await root.http.get(f"/customers/outbox/{judy.id}")).text
        assert link in shown and "opening it was recorded (Root" in shown
        assert any("opened by root@desk.test" in r.getMessage() and str(judy.id) in r.getMessage()
                   for r in caplog.records)


async def test_the_customer_timeline_hides_system_rows_with_one_toggle(desk):
    concern, _, customer = await _replied_concern(desk)
    async with Agent(desk, "ada@desk.test") as ada:
        everything = (await ada.http.get(f"/customers/{customer.id}")).text
        assert 'data-kind="step"' in everything and "Hide system rows" in everything
        quiet = (await ada.http.get(f"/customers/{customer.id}", params={"system": "hide"})).text
        for kind in ("step", "decided", "automated", "opened"):
            assert f'data-kind="{kind}"' not in quiet
        assert 'data-kind="customer_message"' in quiet and 'data-kind="reply"' in quiet
        assert 'data-kind="claimed"' in quiet  # what people did stays
        assert "Show system rows" in quiet and "hidden" in quiet
