"""The workspace's pages: they render at any size, escape every text, and show refusals where they happen."""

from __future__ import annotations

import re

from bench.seed import seed_projection
from registry.models import Concern
from tests.web_support import Agent, make_staff, publish_workspace_sop

ROWS = re.compile(r'<tr id="row-')


async def open_concern(desk, subject="Printer on fire", **kw):
    concern = await desk.intake.open(email=kw.pop("email", "casey@example.com"), name=kw.pop("name", "Casey"),
                                     subject=subject, body=kw.pop("body", "Please help"), channel="web",
                                     category=kw.pop("category", "workspace"), **kw)
    return await desk.wait_for(concern.id, lambda c: c.level == 1)


async def test_pages_render_with_no_data_one_concern_and_100_000(desk_on_both):
    desk = desk_on_both
    publish_workspace_sop(desk.sessions)
    ada = make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, name="Lee")
    make_staff(desk.sessions, "aud@desk.test", "auditor", name="Aud")
    async with Agent(desk, "ada@desk.test") as a, Agent(desk, "lee@desk.test") as lee, \
            Agent(desk, "aud@desk.test") as aud:
        for who in (a, lee, aud):
            page = await who.http.get("/queue")
            assert page.status_code == 200 and "Nothing waiting here" in page.text

        concern = await open_concern(desk)
        page = await a.http.get("/queue")
        assert len(ROWS.findall(page.text)) == 1 and "Printer on fire" in page.text
        page = await a.http.get(f"/concerns/{concern.id}")
        assert page.status_code == 200 and 'class="step type-human visited current" data-step="level1"' in page.text
        assert "Claim" in page.text and "Full customer timeline" in page.text
        page = await aud.http.get(f"/concerns/{concern.id}")
        assert "only agents and leads act on it" in page.text and 'id="form-claim"' not in page.text

        ids = seed_projection(desk.sessions, 100_000, agent_ids=(ada["id"],), seed=3)
        page = await a.http.get("/queue")
        assert len(ROWS.findall(page.text)) == 50 and "Show more" in page.text
        for query in ["scope=all", "scope=all&status=closed", "status=waiting_customer", "priority=urgent",
                      "sla=breached", "channel=email", "category=billing", "q=refund", "q=" + ids[10],
                      "sort=newest", "scope=all&level=2&limit=500", "status=bogus&limit=7"]:
            page = await lee.http.get(f"/queue?{query}")
            assert page.status_code == 200, query
            fragment = await lee.http.get(f"/queue?{query}", headers={"HX-Request": "true"})
            assert fragment.status_code == 200 and fragment.text.lstrip().startswith('<div id="queue-table"')
        page = await lee.http.get("/queue?scope=all&limit=500")
        assert len(ROWS.findall(page.text)) == 500
        page = await lee.http.get(f"/queue?scope=all&q={ids[10]}")
        assert len(ROWS.findall(page.text)) <= 1
        for cid in ids[:3]:
            page = await a.http.get(f"/concerns/{cid}")
            assert page.status_code == 200 and cid in page.text and 'class="sop-chart-data"' in page.text
        assert (await a.http.get("/concerns/CCR-NOSUCH00")).status_code == 404


XSS = '<script>alert("x")</script>'
IMG = '"><img src=x onerror=alert(1)>'


async def test_every_text_field_renders_escaped(desk):
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    concern = await open_concern(desk, subject="Sub " + XSS, name="Name " + IMG, body="Body " + XSS,
                                 email="xss@example.com")
    async with Agent(desk, "ada@desk.test") as a:
        assert (await a.act(concern.id, "claim")).status_code == 303
        for name, form in [("note", {"text": "Note " + XSS}), ("reply", {"text": "Reply " + IMG}),
                           ("set_category", {"category": "cat" + IMG[:40]}),
                           ("escalate", {"reason": "Reason " + XSS})]:
            assert (await a.act(concern.id, name, **form)).status_code == 303, name
        await desk.wait_for(concern.id, lambda c: c.level == 2)
        pages = [(await a.http.get("/queue?scope=all")).text, (await a.http.get(f"/concerns/{concern.id}")).text,
                 (await a.http.get(f"/concerns/{concern.id}?v=0", headers={"HX-Request": "true"})).text,
                 (await a.act(concern.id, "reply", text="Again " + XSS)).text]
    for text in pages:
        assert XSS not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
    concern_page = pages[1]
    for shown in ("Sub &lt;script&gt;", "Name &#34;&gt;&lt;img", "Body &lt;script&gt;", "Note &lt;script&gt;",
                  "Reply &#34;&gt;&lt;img", "Reason &lt;script&gt;"):
        assert shown in concern_page, shown


async def test_a_refused_action_shows_its_reason_inline_and_keeps_what_was_typed(desk):
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "bo@desk.test", "agent", level=1, name="Bo")
    concern = await open_concern(desk)
    async with Agent(desk, "ada@desk.test") as a, Agent(desk, "bo@desk.test") as b:
        assert (await b.act(concern.id, "claim")).status_code == 303
        page = await a.act(concern.id, "reply", text="My careful answer\nwith two lines")
        assert page.status_code == 409
        assert "claimed by Bo; only they can reply" in page.text
        assert ">My careful answer\nwith two lines</textarea>" in page.text
        fragment = await a.act(concern.id, "claim", htmx=True)
        assert fragment.status_code == 409 and fragment.text.lstrip().startswith('<form id="form-claim"')
        assert "already claimed by Bo" in fragment.text
        fragment = await b.act(concern.id, "escalate", htmx=True, reason="")
        assert fragment.status_code == 409 and "give a reason for the escalation" in fragment.text
        done = await b.act(concern.id, "escalate", htmx=True, reason="needs L2")
        assert done.status_code == 200 and done.headers["HX-Retarget"] == "#actions"
        assert 'hx-swap-oob="true"' in done.text
        await desk.wait_for(concern.id, lambda c: c.level == 2)
        refused = await a.act(concern.id, "claim")
        assert refused.status_code == 409
        assert "this step needs a level 2 agent; Ada is level 1" in refused.text
    assert (await desk.concern(concern.id)).assignee_id is None


async def test_canned_responses_fill_their_placeholders(desk):
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    concern = await open_concern(desk, name="Casey <Jones>")
    async with Agent(desk, "ada@desk.test") as a:
        await a.act(concern.id, "claim")
        box = await a.http.get(f"/concerns/{concern.id}/canned?key=acknowledge&action=reply",
                               headers={"HX-Request": "true"})
        assert box.text.lstrip().startswith('<textarea id="text-reply"')
        assert "Hello Casey &lt;Jones&gt;," in box.text and f"reference is {concern.id}" in box.text
        assert '"Printer on fire"' in box.text.replace("&#34;", '"') and "Ada" in box.text
        page = await a.http.get(f"/concerns/{concern.id}/canned?key=acknowledge&action=reply", follow_redirects=True)
        assert "Hello Casey &lt;Jones&gt;," in page.text and 'id="box-reply" open' in page.text


async def test_colleagues_see_who_else_is_viewing_and_typing(desk):
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "bo@desk.test", "agent", level=1, name="Bo")
    concern = await open_concern(desk)
    async with Agent(desk, "ada@desk.test") as a, Agent(desk, "bo@desk.test") as b:
        first = await a.http.get(f"/concerns/{concern.id}")
        assert "is viewing this concern" not in first.text
        page = await b.http.get(f"/concerns/{concern.id}")
        assert "<strong>Ada</strong> is viewing this concern" in page.text
        typing = await a.http.post(f"/concerns/{concern.id}/presence", data={"typing": "1"},
                                   headers={"X-CSRF-Token": a.token, "HX-Request": "true"})
        assert "<strong>Bo</strong> is viewing" in typing.text
        poll = await b.http.get(f"/concerns/{concern.id}/presence", headers={"HX-Request": "true"})
        assert "<strong>Ada</strong> is typing on this concern" in poll.text


async def test_polling_answers_204_until_something_changes(desk):
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "bo@desk.test", "agent", level=1, name="Bo")
    concern = await open_concern(desk)
    async with Agent(desk, "ada@desk.test") as a, Agent(desk, "bo@desk.test") as b:
        page = (await a.http.get(f"/concerns/{concern.id}")).text
        version = re.search(r'\?v=([^"]+)"', page).group(1)
        key = re.search(r'id="actions-key" name="k" value="([^"]+)"', page).group(1)
        poll = {"HX-Request": "true"}
        assert (await a.http.get(f"/concerns/{concern.id}?v={version}&k={key}", headers=poll)).status_code == 204
        await b.act(concern.id, "claim")
        changed = await a.http.get(f"/concerns/{concern.id}?v={version}&k={key}&typed=1", headers=poll)
        assert changed.status_code == 200 and "claimed by <strong>Bo</strong>" in changed.text
        assert "This concern changed while you were typing" in changed.text and 'id="form-claim"' not in changed.text
        fresh = await a.http.get(f"/concerns/{concern.id}?v={version}&k={key}&typed=0", headers=poll)
        assert '<section id="actions"' in fresh.text and "Claimed by Bo: only they can reply" in fresh.text


async def test_a_lead_assigns_and_reprioritises_in_bulk(desk):
    publish_workspace_sop(desk.sessions)
    ada = make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, name="Lee")
    concerns = [await open_concern(desk, subject=f"Bulk {n}", email=f"bulk{n}@example.com") for n in range(3)]
    ids = [c.id for c in concerns]
    async with Agent(desk, "lee@desk.test") as lee:
        form = {"csrf_token": lee.token, "ids": ids, "bulk_action": "assign", "assignee_id": str(ada["id"])}
        table = await lee.http.post("/queue/bulk", data=form, headers={"HX-Request": "true",
                                                                      "HX-Current-URL": "http://desk/queue?scope=all"})
        assert table.status_code == 200 and "Assigned 3 to Ada." in table.text
        assert table.text.count("claimed by Ada") == 3
        form = {"csrf_token": lee.token, "ids": ids[:2], "bulk_action": "priority", "priority": "urgent"}
        response = await lee.http.post("/queue/bulk", data=form)
        assert response.status_code == 303
        page = await lee.http.get("/queue?scope=all")
        assert "Set 2 to urgent priority." in page.text
    with desk.sessions.begin() as session:
        rows = {c.id: session.get(Concern, c.id) for c in concerns}
    assert {r.assignee_id for r in rows.values()} == {ada["id"]}
    assert [rows[i].priority for i in ids] == ["urgent", "urgent", "normal"]
