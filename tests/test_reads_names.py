"""An agent is their name: towards the customer nothing else, and for staff the role and level once."""

from __future__ import annotations

import html
import re

from api.demo import STAFF
from tests.intake_kit import open_in_portal, signed_in
from tests.test_reads_portal import concern_id_of, page_text
from tests.web_support import Agent, make_staff

TAG = re.compile(r"\((L[123]|lead|agent|customer|SRE|auditor|process owner)\)")


def test_demo_staff_have_plain_names():
    assert all(not TAG.search(name) and "(" not in name for _, name, *_ in STAFF)


async def test_role_and_level_tags_appear_once_and_never_towards_the_customer(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, skills=["general"], name="Ada")
    client = await signed_in(desk, "alice@example.com", name="Alice")
    opened = await open_in_portal(client, subject="Invoice is wrong", body="The amount is wrong.", category="billing")
    concern_id = concern_id_of(opened)
    await desk.wait_for(concern_id, lambda c: c.step == "level1")
    async with Agent(desk, "ada@desk.test") as ada:
        assert (await ada.act(concern_id, "claim")).status_code in (200, 303)
        assert (await ada.act(concern_id, "reply", text="We are on it.")).status_code in (200, 303)
        page = html.unescape((await ada.http.get(f"/concerns/{concern_id}")).text)
        assert "Claimed by Ada" in page and "Claimed by Ada (Ada)" not in page
        # The header names the person once, with their role and level once, as a badge.
        assert re.search(r'class="who"><span class="name"[^>]*>Ada</span> <span class="badge role">agent · L1</span>', page)
        queue = html.unescape((await ada.http.get("/queue")).text)
        assert "(L1) (L1)" not in queue and "Ada (agent, L1) (" not in queue

    text = await page_text(client, concern_id, until=lambda t: "We are on it." in t)
    assert "Customer Care replied · Ada" in text
    assert not TAG.search(text) and "(agent" not in text, text
    assert "Alice (customer)" not in text and re.search(r"Alice\s*<button", text)
