"""A customer sees only their own concerns (and their organisation's when staff allow it), by page or by API."""

from __future__ import annotations

from sqlmodel import select

from registry.attachments import Attachment
from registry.models import Customer, Interaction
from tests.intake_kit import act, csrf_of, open_in_portal, signed_in, staff_headers


async def test_customer_a_cannot_see_or_write_to_customer_bs_concern(desk):
    alice = await signed_in(desk, "alice@example.com")
    bob = await signed_in(desk, "bob@example.com")
    opened = await open_in_portal(bob, subject="Bob's salary slip", body="Private",
                                  files=[("attachments", ("slip.pdf", b"%PDF-1.4 private", "application/pdf"))])
    bobs = opened.headers["location"].rsplit("/", 1)[-1]
    with desk.sessions.begin() as session:
        [slip] = session.exec(select(Attachment)).all()
        before = len(session.exec(select(Interaction).where(Interaction.direction == "in")).all())
    assert (await bob.get(f"/portal/concerns/{bobs}")).status_code == 200
    assert (await bob.get(f"/portal/attachments/{slip.id}")).content == b"%PDF-1.4 private"

    token = await csrf_of(alice, "/portal/concerns")
    assert (await alice.get(f"/portal/concerns/{bobs}")).status_code == 404
    assert (await alice.get("/portal/concerns/CCR-00000000")).status_code == 404  # same answer as a missing one
    assert (await alice.get(f"/portal/attachments/{slip.id}")).status_code == 404
    reply = await alice.post(f"/portal/concerns/{bobs}/messages", data={"text": "hi", "csrf_token": token})
    assert reply.status_code == 404
    rate = await alice.post(f"/portal/concerns/{bobs}/rating", data={"csat": "1", "csrf_token": token})
    assert rate.status_code == 404
    mine = await alice.get("/portal/concerns")
    assert bobs not in mine.text and "salary" not in mine.text
    # The JSON API, with the same session, answers the same way.
    token = await csrf_of(alice, "/portal/concerns")
    api = {"X-CSRF-Token": token}
    assert (await alice.get(f"/api/concerns/{bobs}")).status_code == 404
    assert (await alice.post(f"/api/concerns/{bobs}/messages", json={"text": "hi"}, headers=api)).status_code == 404
    assert bobs not in (await alice.get("/api/concerns")).text
    with desk.sessions.begin() as session:
        assert len(session.exec(select(Interaction).where(Interaction.direction == "in")).all()) == before


async def test_internal_notes_never_reach_the_portal(desk):
    bob = await signed_in(desk, "bob@example.com")
    opened = await open_in_portal(bob, subject="Refund", body="Please refund order 7.")
    cid = opened.headers["location"].rsplit("/", 1)[-1]
    _, agent = staff_headers(desk, level=3)
    await desk.wait_for(cid, lambda c: c.level == 3, timeout=30)
    await act(desk, cid, "note", agent, text="Customer is on the fraud watch list")
    await act(desk, cid, "claim", agent)
    await act(desk, cid, "reply", agent, text="Your refund is on its way.")
    page = await bob.get(f"/portal/concerns/{cid}")
    assert "Your refund is on its way." in page.text
    assert "fraud watch" not in page.text and "level 1 queue" not in page.text
    polled = await bob.get(f"/portal/concerns/{cid}", params={"seen": "open"}, headers={"HX-Request": "true"})
    assert polled.text.lstrip().startswith('<section id="history"') and "fraud watch" not in polled.text
    changed = await bob.get(f"/portal/concerns/{cid}", params={"seen": "waiting_customer"},
                            headers={"HX-Request": "true"})
    assert changed.headers.get("HX-Refresh") == "true"


async def test_colleagues_read_each_others_concerns_only_when_staff_allow_it(desk):
    alice = await signed_in(desk, "alice@acme.example")
    bob = await signed_in(desk, "bob@acme.example")
    bobs = (await open_in_portal(bob, subject="Acme printer", body="Jams")).headers["location"].rsplit("/", 1)[-1]
    with desk.sessions.begin() as session:
        ids = {c.email: c.id for c in session.exec(select(Customer))}
    headers, _ = staff_headers(desk)
    for email in ids:
        await desk.http.patch(f"/api/customers/{ids[email]}", json={"organisation": "Acme"}, headers=headers)
    assert (await alice.get(f"/portal/concerns/{bobs}")).status_code == 404
    await desk.http.patch(f"/api/customers/{ids['alice@acme.example']}", headers=headers,
                          json={"preferences": {"organisation_access": True}})
    page = await alice.get(f"/portal/concerns/{bobs}")
    assert page.status_code == 200 and "a colleague" in page.text and 'name="text"' not in page.text
    assert "opened by" in (await alice.get("/portal/concerns")).text
    token = await csrf_of(alice, "/portal/concerns")
    write = await alice.post(f"/portal/concerns/{bobs}/messages", data={"text": "me too", "csrf_token": token})
    assert write.status_code == 403
    # Bob was not given the right, so Alice's concerns stay hers.
    alices = (await open_in_portal(alice, subject="Alice only", body="x")).headers["location"].rsplit("/", 1)[-1]
    assert (await bob.get(f"/portal/concerns/{alices}")).status_code == 404
