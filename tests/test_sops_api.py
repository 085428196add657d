"""The SOP lifecycle over the JSON API: list, versions, validation that knows the desk, publish, drafts, retire."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import event

from sops.source import MAX_SOP_BYTES
from tests.web_support import make_staff

SIMPLE = """\
id: returns
title: Returns
applies_to: {categories: [returns]}
sla: slow
start: level1
steps:
  level1:
    type: human
    title: Returns desk
    level: 1
    skills: [general]
    outcomes: {resolved: close}
  close: {type: end}
"""


def _staff(desk):
    owner = make_staff(desk.sessions, "olive@desk.test", "process_owner", name="Olive", token=True)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=2, skills=("general", "accounts"), name="Ada")
    agent = make_staff(desk.sessions, "bo@desk.test", "agent", level=1, name="Bo", token=True)
    return {"Authorization": f"Bearer {owner['token']}"}, {"Authorization": f"Bearer {agent['token']}"}


async def _validate(desk, headers, text):
    response = await desk.http.post("/api/sops/validate", json={"yaml": text}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_list_shows_every_sop_with_its_latest_version_and_what_runs_on_it(desk):
    owner, _ = _staff(desk)
    concern = await desk.intake.open(email="cy@example.com", name="Cy", subject="Locked out", body="Help",
                                     channel="web", category="account-access")
    await desk.wait_for(concern.id, lambda c: c.sop_version is not None)
    listed = (await desk.http.get("/api/sops", headers=owner)).json()
    by_id = {s["id"]: s for s in listed}
    assert {"general-inquiry", "account-access", "complaint"} <= set(by_id)
    access = by_id["account-access"]
    assert access["applies_to"]["categories"] == ["account-access"] and access["latest_version"] == 1
    assert access["published_by"] == "tests" and access["running"] == [{"version": 1, "concerns": 1}]
    assert access["retired"] is False and access["open_drafts"] == 0
    versions = (await desk.http.get("/api/sops/account-access/versions", headers=owner)).json()
    assert [(v["version"], v["running"]) for v in versions] == [(1, 1)]
    detail = (await desk.http.get("/api/sops/account-access/versions/1", headers=owner)).json()
    assert detail["definition"]["steps"]["kb"]["action"] == "kb_answer"
    assert "kb_answer" in detail["yaml"] and len(detail["hash"]) == 64 and detail["running"] == 1
    missing = await desk.http.get("/api/sops/account-access/versions/9", headers=owner)
    assert missing.status_code == 404 and "the latest is 1" in missing.json()["detail"]


BROKEN = {
    "unparsable YAML": ("id: x\ntitle: [unclosed\nsla: slow\n", None, 3, "not valid YAML"),
    "duplicate step": (SIMPLE + "  level1: {type: end}\n", "level1", 14, "a second step named 'level1'"),
    "duplicate field": (SIMPLE.replace("    level: 1\n", "    level: 1\n    level: 2\n"), "level1", 11,
                        "'level' is given twice"),
    "unknown action": (SIMPLE.replace("start: level1", "start: robot") + "  robot: {type: automate, action: "
                       "ask_robot, outcomes: {done: level1}}\n", "robot", 14, "unknown action 'ask_robot'"),
    "unknown template": (SIMPLE.replace("start: level1", "start: tell") + "  tell: {type: notify, template: "
                         "postcard, next: level1}\n", "tell", 14, "unknown template 'postcard'"),
    "unknown SLA policy": (SIMPLE.replace("sla: slow", "sla: glacial"), None, 4, "unknown SLA policy 'glacial'"),
    "missing target": (SIMPLE.replace("resolved: close", "resolved: closed"), "level1", 12,
                       "target 'closed' does not exist"),
    "bad duration": (SIMPLE.replace("    level: 1\n", "    level: 1\n    escalate_after: soon\n"), "level1", 11,
                     "'soon' is not a duration"),
    "unknown step type": (SIMPLE.replace("close: {type: end}", "close: {type: finish}"), "close", 13,
                          "unknown step type 'finish'"),
    "unreachable step": (SIMPLE + "  orphan: {type: end}\n", "orphan", 14, "unreachable"),
    "loop without a person": (
        SIMPLE.replace("start: level1", "start: ask") + "  ask: {type: ask_customer, message: question, wait: 1h, "
        "outcomes: {replied: again, no_reply: level1}}\n  again: {type: notify, template: question, next: ask}\n",
        "ask", 14, "can repeat forever without a person"),
}


@pytest.mark.parametrize("case", list(BROKEN))
async def test_validation_names_the_step_and_line_of_every_error(desk, case):
    owner, _ = _staff(desk)
    text, step, line, needle = BROKEN[case]
    result = await _validate(desk, owner, text)
    assert result["ok"] is False
    hits = [e for e in result["errors"] if needle in e["message"]]
    assert hits, result["errors"]
    assert (hits[0]["step"], hits[0]["line"]) == (step, line), hits[0]


WARNED = {
    "a skill no agent has": (SIMPLE.replace("skills: [general]", "skills: [general, welsh]"), 11,
                             "no active agent has the skill 'welsh'"),
    "a level above the highest staffed": (SIMPLE.replace("level: 1\n", "level: 3\n"), 10,
                                          "needs a level 3 agent, but the highest staffed level is 2"),
    "no agent with both level and skills": (SIMPLE.replace("level: 1\n", "level: 2\n").replace(
        "[general]", "[accounts, general]"), 7, "needs an agent of level 2 with the skills accounts, general"),
}


@pytest.mark.parametrize("case", list(WARNED))
async def test_validation_warns_about_steps_the_staff_cannot_work(desk, case):
    owner, _ = _staff(desk)
    text, line, needle = WARNED[case]
    if case == "no agent with both level and skills":
        make_staff(desk.sessions, "cy@desk.test", "agent", level=1, skills=("accounts",))
        make_staff(desk.sessions, "di@desk.test", "agent", level=2, skills=("general",))
        # Ada (L2, general and accounts) would take it: deactivate her for this case.
        from registry.models import User
        from sqlmodel import select

        with desk.sessions.begin() as session:
            ada = session.exec(select(User).where(User.email == "ada@desk.test")).one()
            ada.active = False
    result = await _validate(desk, owner, text)
    assert result["ok"] is True and result["errors"] == []
    assert [(w["step"], w["line"]) for w in result["warnings"]] == [("level1", line)], result["warnings"]
    assert needle in result["warnings"][0]["message"], result["warnings"]


async def test_publishing_needs_a_note_refuses_errors_and_asks_to_confirm_warnings(desk):
    owner, _ = _staff(desk)
    no_note = await desk.http.post("/api/sops/returns/versions", json={"yaml": SIMPLE}, headers=owner)
    assert no_note.status_code == 422 and "write a note" in no_note.json()["detail"]["message"]
    broken = await desk.http.post("/api/sops/returns/versions", headers=owner,
                                  json={"yaml": BROKEN["missing target"][0], "note": "first"})
    assert broken.status_code == 422
    assert broken.json()["detail"]["errors"][0] == {"step": "level1", "line": 12,
                                                    "message": "target 'closed' does not exist"}
    warned_text = WARNED["a skill no agent has"][0]
    warned = await desk.http.post("/api/sops/returns/versions", headers=owner, json={"yaml": warned_text, "note": "x"})
    assert warned.status_code == 422 and warned.json()["detail"]["needs_confirmation"] is True
    wrong_id = await desk.http.post("/api/sops/refunds/versions", headers=owner, json={"yaml": SIMPLE, "note": "x"})
    assert wrong_id.status_code == 422 and "does not match the SOP 'refunds'" in wrong_id.text
    assert (await desk.http.get("/api/sops/returns/versions", headers=owner)).status_code == 404  # nothing stored

    confirmed = await desk.http.post("/api/sops/returns/versions", headers=owner,
                                     json={"yaml": warned_text, "note": "Returns get their own desk",
                                           "confirm_warnings": True})
    assert confirmed.status_code == 201, confirmed.text
    body = confirmed.json()
    assert (body["id"], body["version"], body["created"]) == ("returns", 1, True) and len(body["hash"]) == 64
    assert "welsh" in body["warnings"][0]["message"]
    second = await desk.http.post("/api/sops/returns/versions", headers=owner,
                                  json={"yaml": SIMPLE, "note": "Nobody speaks Welsh here"})
    assert (second.status_code, second.json()["version"]) == (201, 2)
    # The same definition in other words (flow style, a comment) has the same hash: nothing is published.
    same = SIMPLE.replace("  close: {type: end}\n", "  close:\n    type: end   # done\n")
    unchanged = await desk.http.post("/api/sops/returns/versions", headers=owner, json={"yaml": same, "note": "again"})
    assert unchanged.status_code == 200
    assert unchanged.json() == {**second.json(), "created": False}
    detail = (await desk.http.get("/api/sops/returns/versions/2", headers=owner)).json()
    assert detail["note"] == "Nobody speaks Welsh here" and detail["author"] == "olive@desk.test"
    assert detail["yaml"] == SIMPLE  # exactly as written
    history = (await desk.http.get("/api/sops/returns/history", headers=owner)).json()
    assert [(h["action"], h["version"], h["by"], h["note"]) for h in history] == [
        ("published", 2, "olive@desk.test", "Nobody speaks Welsh here"),
        ("published", 1, "olive@desk.test", "Returns get their own desk")]
    # Each publish is in the staff audit log too, with who and why.
    audited = (await desk.http.get("/api/audit", params={"action": "sop.published"}, headers=desk.auth)).json()
    assert [(e["actor"], e["target"], e["detail"]["note"]) for e in audited["items"]][:2] == [
        ("olive@desk.test", "sop:returns@2", "Nobody speaks Welsh here"),
        ("olive@desk.test", "sop:returns@1", "Returns get their own desk")]


async def test_only_process_owners_and_admins_write(desk):
    owner, agent = _staff(desk)
    body = {"yaml": SIMPLE, "note": "mine"}
    refused = await desk.http.post("/api/sops/returns/versions", json=body, headers=agent)
    assert refused.status_code == 403 and "process_owner" in refused.json()["detail"]
    assert (await desk.http.post("/api/sops/returns/versions", json=body)).status_code == 401
    assert (await desk.http.post("/api/sops/returns/drafts", json={"yaml": SIMPLE}, headers=agent)).status_code == 403
    assert (await desk.http.post("/api/sops/complaint/retire", json={"note": "x"}, headers=agent)).status_code == 403
    assert (await _validate(desk, agent, SIMPLE))["ok"] is True  # reading and checking is open to staff
    assert (await desk.http.get("/api/sops/returns/versions", headers=owner)).status_code == 404  # nothing changed
    admin = await desk.http.post("/api/sops/returns/versions", json={**body, "confirm_warnings": True},
                                 headers=desk.auth)
    assert admin.status_code == 201


async def test_a_huge_document_is_refused_with_the_limit(desk):
    owner, _ = _staff(desk)
    huge = SIMPLE + "#" * (MAX_SOP_BYTES + 10) + "\n"
    for url, body in (("/api/sops/validate", {"yaml": huge}), ("/api/sops/returns/versions", {"yaml": huge,
                                                                                               "note": "big"})):
        response = await desk.http.post(url, json=body, headers=owner)
        assert response.status_code == 413 and f"{MAX_SOP_BYTES:,} bytes" in response.json()["detail"], url
    assert (await desk.http.get("/api/sops/returns/versions", headers=owner)).status_code == 404


async def test_concurrent_publishes_of_one_sop_have_exactly_one_winner(desk_on_both):
    desk = desk_on_both
    owner, _ = _staff(desk)
    # Hold both publishes after they read the latest version, so both pick the same next number.
    barrier, hits = threading.Barrier(2, timeout=20), []

    def hold(_conn, _cursor, statement, *_):
        if "FROM sopversion" in statement and "ORDER BY sopversion.version DESC" in statement and len(hits) < 2:
            hits.append(statement)
            barrier.wait()

    engine = desk.app.state.sessions.engine
    event.listen(engine, "after_cursor_execute", hold)
    try:
        first, second = await asyncio.gather(*(
            desk.http.post("/api/sops/returns/versions", headers=owner,
                           json={"yaml": SIMPLE.replace("Returns desk", title), "note": title})
            for title in ("Returns desk A", "Returns desk B")))
    finally:
        event.remove(engine, "after_cursor_execute", hold)
    assert sorted([first.status_code, second.status_code]) == [201, 409], (first.text, second.text)
    loser = first if first.status_code == 409 else second
    assert loser.json()["detail"]["version"] == 1
    assert "version 1 of returns was published by olive@desk.test" in loser.json()["detail"]["message"]
    versions = (await desk.http.get("/api/sops/returns/versions", headers=owner)).json()
    assert [v["version"] for v in versions] == [1]
    assert len((await desk.http.get("/api/sops/returns/history", headers=owner)).json()) == 1


async def test_drafts_belong_to_their_author_until_shared_and_publish_through_the_same_path(desk):
    owner, _ = _staff(desk)
    other = make_staff(desk.sessions, "pat@desk.test", "process_owner", name="Pat", token=True)
    pat = {"Authorization": f"Bearer {other['token']}"}
    created = await desk.http.post("/api/sops/complaint/drafts", json={}, headers=owner)
    assert created.status_code == 201 and created.json()["base_version"] == 1
    draft = created.json()
    assert "complaint_received" in draft["yaml"]  # starts from the latest version's YAML
    url = f"/api/sops/complaint/drafts/{draft['id']}"
    assert (await desk.http.get(url, headers=pat)).status_code == 404
    assert (await desk.http.get("/api/sops/complaint/drafts", headers=pat)).json() == []
    edited = draft["yaml"].replace("title: Complaints", "title: Complaints and praise")
    saved = await desk.http.put(url, json={"yaml": edited + "  x: {type: end}\n"}, headers=owner)
    assert saved.status_code == 200 and saved.json()["check"]["ok"] is False  # an unreachable step
    saved = await desk.http.put(url, json={"yaml": edited}, headers=owner)
    assert saved.json()["check"]["ok"] is True
    shared = await desk.http.post(f"{url}/share", json={"note": "Please review the title"}, headers=owner)
    assert shared.status_code == 200 and shared.json()["shared"] is True
    assert (await desk.http.get(url, headers=pat)).json()["yaml"] == edited
    taken = await desk.http.put(url, json={"yaml": "id: complaint\n"}, headers=pat)
    assert taken.status_code == 409 and "belongs to Olive" in taken.json()["detail"]
    published = await desk.http.post(f"{url}/publish", headers=owner,
                                     json={"note": "Praise is welcome too", "confirm_warnings": True})
    assert published.status_code == 201 and published.json()["version"] == 2, published.text
    assert (await desk.http.get(url, headers=owner)).json()["published_version"] == 2
    again = await desk.http.put(url, json={"yaml": edited}, headers=owner)
    assert again.status_code == 409 and "published as version 2" in again.json()["detail"]
    history = (await desk.http.get("/api/sops/complaint/history", headers=pat)).json()
    assert [(h["action"], h["by"], h["note"]) for h in history[:2]] == [
        ("published", "olive@desk.test", "Praise is welcome too"),
        ("draft_shared", "olive@desk.test", "Please review the title")]


async def test_a_retired_sop_takes_no_new_concerns_and_keeps_its_running_ones(desk):
    owner, _ = _staff(desk)
    running = await desk.intake.open(email="ed@example.com", name="Ed", subject="Rude", body="Very rude",
                                     channel="web", category="complaint")
    running = await desk.wait_for(running.id, lambda c: c.sop_id == "complaint" and c.step is not None)
    refused = await desk.http.post("/api/sops/complaint/retire", json={"note": ""}, headers=owner)
    assert refused.status_code == 422
    retired = await desk.http.post("/api/sops/complaint/retire", json={"note": "Complaints go to the general flow"},
                                   headers=owner)
    assert retired.status_code == 200 and retired.json()["retired"] is True
    later = await desk.intake.open(email="flo@example.com", name="Flo", subject="Rude", body="Also rude",
                                   channel="web", category="complaint")
    assert (await desk.concern(later.id)).sop_id == "general-inquiry"
    assert (await desk.concern(running.id)).sop_id == "complaint"
    listed = {s["id"]: s for s in (await desk.http.get("/api/sops", headers=owner)).json()}
    assert listed["complaint"]["retired"] is True and listed["complaint"]["running"] == [{"version": 1, "concerns": 1}]
    last = await desk.http.post("/api/sops/general-inquiry/retire", json={"note": "all of them"}, headers=owner)
    assert last.status_code == 409 and "without a matching category" in last.json()["detail"]
    back = await desk.http.post("/api/sops/complaint/reinstate", json={"note": "Back"}, headers=owner)
    assert back.json()["retired"] is False
    history = (await desk.http.get("/api/sops/complaint/history", headers=owner)).json()
    assert [h["action"] for h in history] == ["reinstated", "retired", "published"]
