"""The overview's page, drill-down, CSV, JSON and command line agree with each other and with the store."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from registry.db import Sessions, make_engine
from registry.overview import OverviewFilters, figure_sets
from tests.overview_fixture import END, START, build
from tests.web_support import as_session, make_staff

WEEK = f"from={START}&to={END}"
ROOT = Path(__file__).parent.parent
CCR = [sys.executable, "-m", "ccr"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("CCR_")}
ROW = re.compile(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", re.S)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
TAG = re.compile(r"<[^>]+>")


def _text(fragment: str) -> str:
    return html.unescape(TAG.sub("", fragment)).strip()


def _table_after(page: str, heading_id: str) -> list[list[str]]:
    section = page[page.index(f'id="{heading_id}"'):]
    section = section[:section.index("</table>")]
    return [[_text(head)] + [_text(c) for c in CELL.findall(cells)] for head, cells in ROW.findall(section)]


async def test_the_link_behind_each_figure_lists_exactly_the_concerns_it_counted(desk):
    build(desk.sessions)
    lead = make_staff(desk.sessions, "lena@desk.test", "lead", name="Lena", level=3)
    headers = as_session(desk, user_id=lead["id"])
    page = (await desk.http.get(f"/reports?{WEEK}", headers=headers)).text
    with desk.sessions.begin() as session:
        sets = figure_sets(session=session, filters=OverviewFilters(start=START, end=END))
    links = {html.unescape(h) for h in re.findall(r'href="(/reports/concerns\?[^"]+)"', page)}
    figures = {parse_qs(urlsplit(link).query)["figure"][0] for link in links if "key=" not in link}
    assert {"created", "resolved", "backlog", "first_reply", "resolution_time", "deflected", "rejected_answers",
            "first_contact_resolution", "satisfied", "promoters", "detractors", "escalations"} <= figures
    for link in links:
        query = parse_qs(urlsplit(link).query)
        listed = await desk.http.get(link, headers=headers)
        assert listed.status_code == 200, link
        shown = set(re.findall(r'<td><a href="/concerns/([^"]+)">', listed.text))
        expected = sets.concerns_of(query["figure"][0], query.get("key", [None])[0])
        if "channel" in query:
            expected = {c for c in expected if sets.facts[c].concern.channel == query["channel"][0]}
        assert shown == expected, link
    deflected = (await desk.http.get(f"/reports/concerns?{WEEK}&figure=deflected", headers=headers)).text
    assert "1 concern behind" in deflected and "/concerns/C3" in deflected and "KCS" in deflected


async def test_csv_equals_the_tables_on_the_page_and_json_the_figures(desk):
    build(desk.sessions)
    lead = make_staff(desk.sessions, "lena@desk.test", "lead", name="Lena", level=3)
    headers = as_session(desk, user_id=lead["id"])
    page = (await desk.http.get(f"/reports?{WEEK}", headers=headers)).text
    for heading, table in (("per-day", "per_day"), ("by_channel", "by_channel"), ("by_category", "by_category")):
        got = await desk.http.get(f"/reports/overview.csv?{WEEK}&table={table}", headers=headers)
        assert got.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(got.text)))[1:]
        shown = _table_after(page, heading)
        width = len(rows[0]) - (1 if table != "per_day" else 0)  # the deflection rate shows as a percentage
        assert [r[:width] for r in shown] == [r[:width] for r in rows], table
    api = (await desk.http.get(f"/api/reports/overview?{WEEK}", headers=desk.auth)).json()
    assert (api["figures"]["created"], api["figures"]["deflected"]["count"], api["figures"]["nps"]) == (4, 1, 0.0)
    assert api["previous"]["created"] == 2 and api["filters"]["start"] == str(START)
    # The page shows the same headline figures, each with its definition.
    assert re.search(r"<h2>Created</h2>\s*<p class=\"value\"><a [^>]+>4</a>", page)
    assert "66.7 %" in page and "How is" not in page and page.count('class="def"') >= 15


async def test_who_may_read_the_overview_and_an_agent_sees_only_their_own(desk):
    ids = build(desk.sessions)
    sre = make_staff(desk.sessions, "sam@desk.test", "sre")
    for path in ("/reports", "/api/reports/overview", "/reports/overview.csv", "/reports/concerns"):
        assert (await desk.http.get(path, headers=as_session(desk, user_id=sre["id"]))).status_code == 403, path
        assert (await desk.http.get(path, headers=as_session(desk, customer_id=ids["gold"]))).status_code in (401, 403)
    ada = as_session(desk, user_id=ids["ada"])
    # Ada asks for Bob's figures; she gets her own.
    mine = (await desk.http.get(f"/api/reports/overview?{WEEK}&agent={ids['bob']}", headers=ada)).json()
    assert mine["filters"]["agent"] == ids["ada"] and mine["figures"]["created"] == 2
    assert [r["agent"] for r in mine["tables"]["workload"]] == ["Ada"]
    page = (await desk.http.get(f"/reports?{WEEK}", headers=ada)).text
    assert "My figures" in page and "Bob" not in page
    listed = (await desk.http.get(f"/reports/concerns?{WEEK}&figure=created", headers=ada)).text
    assert set(re.findall(r'<td><a href="/concerns/([^"]+)">', listed)) == {"C1", "C4"}
    bad = await desk.http.get("/api/reports/overview?from=2026-03-09&to=2026-03-01", headers=desk.auth)
    assert bad.status_code == 422 and "from" in bad.json()["detail"]


def test_ccr_report_overview_prints_the_same_figures(tmp_path):
    data = tmp_path / "var"
    done = subprocess.run([*CCR, "db", "upgrade", "--data", str(data)], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert done.returncode == 0, done.stderr
    engine = make_engine(f"sqlite:///{data / 'registry.db'}")
    build(Sessions(engine))
    engine.dispose()
    done = subprocess.run([*CCR, "report", "overview", "--from", str(START), "--to", str(END),
                           "--data", str(data)], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["figures"]
    assert (figures["created"], figures["resolved"], figures["resolution_time"]["p90_seconds"]) == (4, 3, 10800)
    done = subprocess.run([*CCR, "report", "overview", "--from", str(START), "--to", str(END),
                           "--table", "by_channel", "--channel", "email", "--data", str(data)],
                          capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert done.stdout.splitlines()[1].startswith("email,1,1,0")


async def test_a_real_concern_through_the_workflow_counts_at_once(desk):
    from tests.web_support import publish_workspace_sop

    publish_workspace_sop(desk.sessions)
    ada = make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada", token=True)
    auth = {"Authorization": f"Bearer {ada['token']}"}
    body = {"customer": {"email": "jo@example.com", "name": "Jo"}, "subject": "Cannot print invoices",
            "body": "The print button does nothing", "channel": "api", "category": "workspace"}
    created = (await desk.http.post("/api/concerns", json=body, headers=desk.auth)).json()
    await desk.wait_for(created["id"], lambda c: c.step == "level1")
    url = f"/api/concerns/{created['id']}/actions"
    assert (await desk.http.post(url, json={"type": "claim"}, headers=auth)).status_code == 200
    assert (await desk.http.post(url, json={"type": "resolve", "text": "Cleared the printer queue"},
                                 headers=auth)).status_code == 200
    await desk.wait_for(created["id"], lambda c: c.resolved_at is not None)
    figures = (await desk.http.get("/api/reports/overview?period=7d&category=workspace", headers=desk.auth)).json()
    f = figures["figures"]
    assert (f["created"], f["resolved"], f["backlog"]) == (1, 1, 0)
    assert f["first_reply"]["count"] == 1 and f["resolution_time"]["count"] == 1
    assert (f["first_level_resolution"]["count"], f["one_touch"]["count"], f["first_contact_resolution"]["count"]) \
        == (1, 1, 1)
    mine = (await desk.http.get("/api/reports/overview?period=7d", headers=auth)).json()
    assert mine["figures"]["resolved"] == 1 and mine["tables"]["workload"][0]["agent"] == "Ada"
