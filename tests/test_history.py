"""The history of a concern, for people: decoded, grouped in SOP terms, filtered, stitched across runs, and a
readable 503 while Temporal is away."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx

from api.security import create_token, create_user
from registry.db import Sessions, make_engine
from tests.conftest import DevServer, fresh_database_url, make_settings, publish_all
from tests.engine_support import ADA, CAROL, act, open_concern, say
from tests.web_support import as_session, make_staff

ROOT = Path(__file__).parent.parent
# Base64 of `{"` (every JSON payload starts so), of "json/plain" and of "binary/null": what raw payloads look like.
BASE64_MARKS = ("eyJ", "anNvbi9wbGFpbg", "YmluYXJ5L251bGw")


def _titles(body: dict) -> list[str]:
    return [g["title"] for g in body["groups"]]


def assert_no_base64(text: str) -> None:
    for mark in BASE64_MARKS:
        assert mark not in text, f"base64 payload ({mark}…) in: {text[max(0, text.find(mark) - 200):][:400]}"


async def test_history_tells_a_concern_in_sop_terms_with_every_payload_decoded(desk):
    ladder = await open_concern(desk, category="ladder", priority="low")
    await desk.wait_for(ladder.id, lambda c: c.step == "level1")
    await act(desk, ladder, "claim", ADA)
    await desk.intake.message(concern_id=ladder.id, text="It still fails after the update", channel="email",
                              author="Cust")
    await desk.wait_for(ladder.id, lambda c: c.step == "level2", timeout=30)  # level1's 2 s timer fired
    await act(desk, ladder, "claim", CAROL)
    automated = await open_concern(desk, category="kb-first", subject="Where is the invoice page?")
    await desk.wait_for(automated.id, lambda c: c.step == "level1")

    response = await desk.http.get(f"/api/concerns/{ladder.id}/history", headers=desk.auth)
    assert response.status_code == 200, response.text
    assert_no_base64(response.text)
    body = response.json()
    titles = _titles(body)
    assert any(t.startswith(f"concern {ladder.id} opened via web") for t in titles)
    assert "step level1 entered: In the level 1 queue" in titles
    assert "update act: claim by Ada — accepted" in titles
    assert "update act: claim by Carol — accepted" in titles
    assert "signal customer_message via email" in titles
    assert "timer fired: escalation of level1" in titles
    assert "step level2 entered: In the level 2 queue" in titles
    signal = next(g for g in body["groups"] if g["kind"] == "signals")
    assert signal["lines"] == ["It still fails after the update"]
    claim = next(g for g in body["groups"] if g["title"] == "update act: claim by Ada — accepted")
    # The update's accepted and completed events are one row, with the action decoded as JSON.
    assert [e["type"] for e in claim["events"]] == ["workflow_execution_update_accepted",
                                                    "workflow_execution_update_completed"]
    assert claim["events"][0]["attributes"]["acceptedRequest"]["input"]["args"][0]["agent"]["name"] == "Ada"
    assert body["runs"][0]["temporal_ui"].endswith(f"/workflows/{ladder.workflow_id}/{body['runs'][0]['run_id']}"
                                                   "/history")

    other = (await desk.http.get(f"/api/concerns/{automated.id}/history", headers=desk.auth)).json()
    activity = next(g for g in other["groups"] if g["kind"] == "activities")
    assert activity["title"] == "activity kb_answer: outcome no_match"
    assert [e["type"] for e in activity["events"]] == ["activity_task_scheduled", "activity_task_started",
                                                       "activity_task_completed"]
    assert activity["events"][0]["attributes"]["input"][0]["subject"] == "Where is the invoice page?"

    raw = await desk.http.get(f"/api/concerns/{ladder.id}/history", params={"raw": 1}, headers=desk.auth)
    assert raw.json()["runs"][0]["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"


async def test_history_page_filters_by_kind_and_text_in_the_url_and_links_every_event(desk):
    auditor = make_staff(desk.sessions, "aud@desk.test", "auditor", name="Audrey")
    concern = await open_concern(desk, category="breach", priority="low")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", ADA)
    await act(desk, concern, "note", ADA, text="Called the customer back")
    await say(desk, concern, "Thanks for calling")
    headers = as_session(desk, user_id=auditor["id"])

    page = await desk.http.get(f"/concerns/{concern.id}/history", headers=headers)
    assert page.status_code == 200, page.text
    assert_no_base64(page.text)
    kinds = re.findall(r'class="history-row kind-(\w+)', page.text)
    assert {"steps", "updates", "signals", "timers", "workflow"} <= set(kinds)
    ids = [int(i) for i in re.findall(r'<a class="eid" id="event-(\d+)" href="#event-\1"', page.text)]
    assert ids[:3] == [1, 2, 3] and len(ids) == len(set(ids))  # every event, once, linkable
    assert "Open run 1 in Temporal&#39;s Web UI" in page.text or "Open run 1 in Temporal's Web UI" in page.text
    assert f'href="/concerns/{concern.id}/history.json"' in page.text

    only = await desk.http.get(f"/concerns/{concern.id}/history?kind=updates&q=note", headers=headers)
    rows = re.findall(r'class="history-row kind-(\w+)', only.text)
    assert rows == ["updates"]
    assert "update act: note by Ada — accepted" in only.text and "Called the customer back" in only.text
    assert 'value="updates" checked' in only.text and 'value="note"' in only.text  # the filters stay in the form
    fragment = await desk.http.get(f"/concerns/{concern.id}/history?kind=signals",
                                   headers={**headers, "HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<section id="history-events"')
    assert re.findall(r'class="history-row kind-(\w+)', fragment.text) == ["signals"]

    concern_page = await desk.http.get(f"/concerns/{concern.id}", headers=headers)
    assert f'href="/concerns/{concern.id}/history"' in concern_page.text
    agent = make_staff(desk.sessions, "ag@desk.test", "agent", level=1, name="Agnes")
    agent_headers = as_session(desk, user_id=agent["id"])
    assert f'href="/concerns/{concern.id}/history"' not in (await desk.http.get(f"/concerns/{concern.id}",
                                                                               headers=agent_headers)).text
    assert (await desk.http.get(f"/concerns/{concern.id}/history", headers=agent_headers)).status_code == 403


async def test_downloaded_raw_history_replays_with_ccr_replay(desk, tmp_path):
    sre = make_staff(desk.sessions, "sre@desk.test", "sre", name="Sam")
    concern = await open_concern(desk, category="breach", priority="low")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", ADA)
    download = await desk.http.get(f"/concerns/{concern.id}/history.json", headers=as_session(desk, user_id=sre["id"]))
    assert download.status_code == 200
    assert f'filename="{concern.workflow_id}.json"' in download.headers["content-disposition"]
    path = tmp_path / f"{concern.workflow_id}.json"
    path.write_bytes(download.content)
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ccr", "replay", str(path)],
                                   capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "replays" in done.stdout


async def test_runs_after_continue_as_new_are_stitched_in_order(desk):
    desk.settings.continue_after_events = 40
    concern = await open_concern(desk, category="breach", priority="low")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", ADA)
    for i in range(12):
        await act(desk, concern, "note", ADA, text=f"note {i}")
    await desk.wait_for(concern.id, lambda c: c.seq > 12)

    body = (await desk.http.get(f"/api/concerns/{concern.id}/history", headers=desk.auth)).json()
    assert len(body["runs"]) >= 2
    assert body["runs"][0]["status"] == "continued_as_new" and body["runs"][-1]["status"] == "running"
    titles = _titles(body)
    assert titles.index("update act: claim by Ada — accepted") < titles.index("continued as new: the history goes on "
                                                                             "in run 2")
    second = [g for g in body["groups"] if g["run"] == 2]
    assert second[0]["title"] == "run 2 continues at step level1 (open)" and second[0]["id"] == 1
    notes = [t for t in titles if t == "update act: note by Ada — accepted"]
    assert len(notes) == 12  # every note, whichever run heard it

    page = await desk.http.get(f"/concerns/{concern.id}/history", headers=desk.auth)
    assert_no_base64(page.text)
    assert 'id="run-2"' in page.text and 'id="run1-event-1"' in page.text
    last = len(body["runs"])
    assert f'id="run{last}-event-1"' not in page.text and 'id="event-1"' in page.text  # the latest run: #event-N
    focused = await desk.http.get(f"/concerns/{concern.id}/history?run=1", headers=desk.auth)
    assert 'id="event-1"' in focused.text and f'id="run{last}-event-1"' in focused.text


async def test_history_answers_503_while_temporal_is_down_and_again_once_it_is_back(tmp_path):
    from web.app import create_site
    from worker import build_worker
    from workflows.client import make_client

    server = DevServer(db_file=tmp_path / "temporal.db").start()
    url = fresh_database_url("sqlite", tmp_path)
    settings = make_settings(tmp_path, url, server.address)
    sessions = Sessions(make_engine(url))
    publish_all(sessions)
    with sessions.begin() as session:
        admin = create_user(session=session, email="admin@desk.test", password="admin-password", role="admin")
        auth = {"Authorization": f"Bearer {create_token(session=session, user=admin)}"}
    from api.intake import Intake
    from tests.conftest import catalog_with_test_policies

    app = create_site(settings)
    try:
        client = None
        for _ in range(50):
            try:
                client = await make_client(settings)
                break
            except Exception:
                await asyncio.sleep(0.2)
        intake = Intake(sessions=sessions, client=client, settings=settings, catalog=catalog_with_test_policies())
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://desk") as http:
            async with build_worker(client, settings, sessions):
                concern = await intake.open(email="c@example.com", name="C", subject="Help", body="Please",
                                            channel="web", category="breach")
                for _ in range(200):
                    if (await http.get(f"/api/concerns/{concern.id}/history", headers=auth)).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
            server.stop()
            api = await http.get(f"/api/concerns/{concern.id}/history", headers=auth)
            assert api.status_code == 503, api.text
            assert "Temporal is unreachable" in api.json()["detail"]
            page = await http.get(f"/concerns/{concern.id}/history", headers=auth | {"Accept": "text/html"})
            assert page.status_code == 503
            assert "cannot be shown now" in page.text and "Temporal is unreachable" in page.text
            server.start()  # same ports, same file: the app's client reconnects by itself
            for _ in range(200):
                again = await http.get(f"/api/concerns/{concern.id}/history", headers=auth)
                if again.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert again.status_code == 200, again.text
            assert any(g["title"].startswith(f"concern {concern.id} opened") for g in again.json()["groups"])
    finally:
        server.stop()
        sessions.engine.dispose()
