"""A lead's reassignment asks first and tells both agents; bulk results stay outside the refreshing table."""

from __future__ import annotations

import re

from sqlmodel import select

from registry.models import Interaction
from tests.web_support import Agent, make_staff, publish_workspace_sop

HX = {"HX-Request": "true", "HX-Current-URL": "http://desk/queue?scope=all"}


async def open_concern(desk, subject: str, email: str):
    concern = await desk.intake.open(email=email, name="Casey", subject=subject, body="Please help", channel="web",
                                     category="workspace")
    return await desk.wait_for(concern.id, lambda c: c.level == 1)


def notes(desk, concern_id: str) -> list[str]:
    with desk.sessions.begin() as session:
        return [i.body for i in session.exec(select(Interaction).where(
            Interaction.concern_id == concern_id, Interaction.kind == "assigned"))]


async def test_bulk_reassignment_asks_then_tells_both_agents(desk):
    publish_workspace_sop(desk.sessions)
    ada = make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "bob@desk.test", "agent", level=1, name="Bob")
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, name="Lee")
    held = await open_concern(desk, "Router reboots", "r1@example.com")
    free = await open_concern(desk, "Invoice wrong", "r2@example.com")
    async with Agent(desk, "bob@desk.test") as bob, Agent(desk, "ada@desk.test") as ada_tab, \
            Agent(desk, "lee@desk.test") as lee:
        assert (await bob.act(held.id, "claim")).status_code == 303
        form = {"csrf_token": lee.token, "ids": [held.id, free.id], "bulk_action": "assign",
                "assignee_id": str(ada["id"])}
        asked = await lee.http.post("/queue/bulk", data=form, headers=HX)
        assert asked.status_code == 200 and asked.headers["HX-Retarget"] == "#bulk-result"
        question = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", asked.text))
        assert f"{held.id} is held by Bob; reassign all 2 to Ada?" in question
        assert (await desk.concern(held.id)).assignee_name == "Bob"  # nothing happened yet

        done = await lee.http.post("/queue/bulk", data={**form, "confirm": "1"}, headers=HX)
        assert done.status_code == 200 and "Assigned 2 to Ada." in done.text
        assert 'id="bulk-result" class="bulk-result" hx-swap-oob="true"' in done.text
        assert {(await desk.concern(i)).assignee_name for i in (held.id, free.id)} == {"Ada"}
        assert notes(desk, held.id) == ["Reassigned from Bob to Ada by Lee"]
        assert notes(desk, free.id) == ["Assigned to Ada by Lee"]
        # The refresh answers the table and the notices, never the bulk result (which is outside the table).
        poll = await lee.http.get("/queue?scope=all", headers={"HX-Request": "true"})
        assert "Assigned 2 to Ada." not in poll.text and 'id="queue-table"' in poll.text

        bob_page = (await bob.http.get("/queue")).text
        assert f"Lee reassigned {held.id} “Router reboots” from you to Ada." in bob_page
        ada_poll = (await ada_tab.http.get("/queue", headers={"HX-Request": "true"})).text
        assert 'id="agent-notices" class="agent-notices" hx-swap-oob="true"' in ada_poll
        assert f"Lee assigned {held.id} “Router reboots” to you, which Bob held until now." in ada_poll
        assert f"Lee assigned {free.id} “Invoice wrong” to you." in ada_poll

        notice_id = re.search(r'data-notice="(\d+)"', bob_page).group(1)
        refused = await ada_tab.http.post(f"/queue/notices/{notice_id}/dismiss", data={"csrf_token": ada_tab.token})
        assert refused.status_code == 404  # not hers
        gone = await bob.http.post(f"/queue/notices/{notice_id}/dismiss", data={"csrf_token": bob.token})
        assert gone.status_code == 303
        assert "from you to Ada" not in (await bob.http.get("/queue")).text
        assert "which Bob held until now" in (await ada_tab.http.get("/queue")).text


async def test_reassigning_on_the_concern_page_asks_first(desk):
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    bob = make_staff(desk.sessions, "bob@desk.test", "agent", level=1, name="Bob")
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, name="Lee")
    concern = await open_concern(desk, "Parcel late", "p1@example.com")
    async with Agent(desk, "ada@desk.test") as ada, Agent(desk, "lee@desk.test") as lee, \
            Agent(desk, "bob@desk.test") as bob_tab:
        await ada.act(concern.id, "claim")
        asked = await lee.act(concern.id, "assign", htmx=True, assignee_id=str(bob["id"]))
        assert asked.status_code == 200 and "Held by Ada; reassign to Bob?" in asked.text
        assert 'name="confirm" value="1"' in asked.text and ">Reassign</button>" in asked.text
        assert (await desk.concern(concern.id)).assignee_name == "Ada"
        without_js = await lee.act(concern.id, "assign", assignee_id=str(bob["id"]))
        assert without_js.status_code == 200 and "Held by Ada; reassign to Bob?" in without_js.text
        done = await lee.act(concern.id, "assign", assignee_id=str(bob["id"]), confirm="1")
        assert done.status_code == 303
        assert (await desk.concern(concern.id)).assignee_name == "Bob"
        assert "Reassigned from Ada to Bob by Lee" in notes(desk, concern.id)
        assert f"Lee reassigned {concern.id} “Parcel late” from you to Bob." in (await ada.http.get("/queue")).text
        assert "which Ada held until now" in (await bob_tab.http.get("/queue")).text
        assert "reassigned" not in (await lee.http.get("/queue")).text  # the lead did it and needs no notice
