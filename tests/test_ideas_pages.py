"""The ideas page, its CSV and JSON agree; agents mark feedback on a concern page; roles are refused by the matrix."""

from __future__ import annotations

import csv
import html
import io
import re

from sqlmodel import select

from registry.audit import AuditEntry
from registry.ideas import IdeaNotice, ProductFeedback
from registry.models import OutboxMail
from tests.ideas_kit import build, concern
from tests.web_support import as_session, make_staff

ROW = re.compile(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", re.S)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
TAG = re.compile(r"<[^>]+>")


def _text(fragment: str) -> str:
    return " ".join(html.unescape(TAG.sub("", fragment)).split())


async def test_the_csv_and_the_json_say_what_the_page_shows(desk_on_both):
    desk = desk_on_both
    build(desk.sessions)
    pm = make_staff(desk.sessions, "olive@desk.test", "process_owner", name="Olive")
    headers = as_session(desk, user_id=pm["id"])
    page = await desk.http.get("/ideas?period=30d", headers=headers)
    assert page.status_code == 200
    shown = [[_text(head)] + [_text(c) for c in CELL.findall(cells)] for head, cells in ROW.findall(page.text)]
    assert [row[:3] + row[3:6] for row in shown] == [
        ["Shop app", "Export", "New", "3", "2", "+2 (was 1)"],
        ["Billing", "(no theme yet)", "give it a theme first", "1", "1", "+1 (was 0)"]]
    assert "The export button does nothing on Safari." in html.unescape(page.text)
    exported = list(csv.DictReader(io.StringIO((await desk.http.get("/ideas.csv?period=30d", headers=headers)).text)))
    assert [[r["product"], r["theme"], r["concerns"], r["customers"], f"{int(r['trend']):+d} (was {r['previous']})",
             f"{float(r['csat']):.1f}" if r["csat"] else "–"] for r in exported] == \
        [[row[0], row[1], row[3], row[4], row[5], row[6]] for row in shown]
    data = (await desk.http.get("/api/ideas?period=30d", headers=headers)).json()
    assert [(g["product"], g["theme"], g["concerns"], g["customers"], g["trend"], g["csat"]) for g in data["groups"]] \
        == [(r["product"], r["theme"], int(r["concerns"]), int(r["customers"]), int(r["trend"]),
             float(r["csat"]) if r["csat"] else None) for r in exported]


async def test_roles_outside_product_management_are_refused(desk):
    build(desk.sessions)
    for role in ("agent", "sre", "process_owner", "auditor", "lead"):
        user = make_staff(desk.sessions, f"{role}@desk.test", role, level=1 if role in ("agent", "lead") else None)
        headers = as_session(desk, user_id=user["id"])
        allowed = role in ("process_owner", "auditor", "lead")
        for path in ("/ideas", "/ideas.csv", "/api/ideas"):
            status = (await desk.http.get(path, headers=headers)).status_code
            assert (status == 200) == allowed, (role, path, status)
        with desk.sessions.read() as session:
            theme_id = session.exec(select(ProductFeedback.theme_id)
                                    .where(ProductFeedback.theme_id.is_not(None))).first()
        posted = await desk.http.post(f"/ideas/themes/{theme_id}/status", data={"status": "planned"}, headers=headers)
        assert (posted.status_code == 303) == (role in ("process_owner", "lead")), (role, posted.status_code)
        marked = await desk.http.get("/concerns/CCR-IDEA0001/feedback", headers=headers)
        assert (marked.status_code == 200) == (role in ("agent", "lead")), (role, marked.status_code)


async def test_shipping_from_the_page_is_audited_and_tells_each_customer_once(desk):
    kit = build(desk.sessions)
    lead = make_staff(desk.sessions, "lee@desk.test", "lead", name="Lee", level=3)
    headers = as_session(desk, user_id=lead["id"])
    for _ in range(2):
        done = await desk.http.post(f"/ideas/themes/{kit['theme_id']}/status", data={"status": "shipped"},
                                    headers=headers)
        assert done.status_code == 303
    # The flash travels in the session cookie the answer set.
    cookie = {**headers, "Cookie": f"ccr_session={done.cookies['ccr_session']}"}
    page = (await desk.http.get("/ideas", headers=cookie)).text
    assert "Every customer of it had been told already." in html.unescape(page)
    with desk.sessions.read() as session:
        assert len(session.exec(select(IdeaNotice)).all()) == 4
        mails = session.exec(select(OutboxMail).where(OutboxMail.seq < 0)).all()
        # No relay in tests: the local outbox is the delivery.
        assert len(mails) == 4 and {m.status for m in mails} == {"local"}
        audited = session.exec(select(AuditEntry).where(AuditEntry.action == "idea.status")).all()
        assert [(e.actor, e.detail["to"], e.detail["customers_told"]) for e in audited] == [
            ("lee@desk.test", "shipped", 4), ("lee@desk.test", "shipped", 0)]
    portal_text = (await desk.http.get("/concerns/CCR-IDEA0001", headers=headers)).text
    assert "this has now shipped in Shop app" in html.unescape(portal_text)


async def test_an_agent_marks_feedback_quoting_the_customer_from_the_concern_page(desk):
    agent = make_staff(desk.sessions, "ada@desk.test", "agent", name="Ada", level=1)
    with desk.sessions.begin() as session:
        from registry.models import Customer
        cara = Customer(email="cara@shop.test", name="Cara")
        session.add(cara)
        session.flush()
        message_id = concern(session, "CCR-IDEA0009", cara, "Dark mode, please: my eyes hurt at night.")
    headers = as_session(desk, user_id=agent["id"])
    page = (await desk.http.get("/concerns/CCR-IDEA0009", headers=headers)).text
    assert 'hx-get="/concerns/CCR-IDEA0009/feedback"' in page
    form = (await desk.http.get("/concerns/CCR-IDEA0009/feedback", headers={**headers, "HX-Request": "true"})).text
    assert f'value="{message_id}"' in form and "Dark mode, please" in form
    refused = await desk.http.post("/concerns/CCR-IDEA0009/feedback", headers={**headers, "HX-Request": "true"},
                                   data={"product": "Shop app", "kind": "missing_feature", "theme": "Dark mode"})
    assert refused.status_code == 422 and "pick a quote" in refused.text and 'value="Dark mode"' in refused.text
    done = await desk.http.post("/concerns/CCR-IDEA0009/feedback", headers={**headers, "HX-Request": "true"},
                                data={"product": "Shop app", "kind": "missing_feature", "theme": "Dark mode",
                                      "interaction_id": str(message_id)})
    assert done.status_code == 200 and "Recorded as missing feature on Shop app" in done.text
    with desk.sessions.read() as session:
        fb = session.exec(select(ProductFeedback)).one()
        assert (fb.quote, fb.interaction_id, fb.by_name) == ("Dark mode, please: my eyes hurt at night.", message_id,
                                                            "Ada")
