"""The SLA report against a hand-computed fixture: figures, drill-down, CSV, JSON and who may read it."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date

from sqlalchemy import select

from registry.clock_cycles import ClockCycle, rebuild_cycles
from registry.sla_clock import clock_detail
from registry.sla_report import parse_query, sla_report
from tests.sla_support import EXPECTED_CYCLES, seed_fixture
from tests.web_support import as_session, make_staff

SPRING = {"from": ["2026-04-01"], "to": ["2026-05-31"]}


def _cycles(sessions) -> list[tuple]:
    with sessions.read() as session:
        rows = session.execute(select(ClockCycle)).scalars().all()
        return sorted([(r.concern_id, r.clock, r.outcome, r.elapsed_seconds, r.used_permille) for r in rows], key=str)


def _figures(row) -> tuple:
    return (row.started, row.met, row.breached, row.running, row.paused, row.attainment, row.median_used,
            row.p90_used, row.warnings)


def test_figures_match_the_hand_computed_fixture(sessions):
    seed_fixture(sessions)
    # Business time across the 1 May holiday and the weekend, a second cycle after a reopen, a priority change.
    assert _cycles(sessions) == EXPECTED_CYCLES
    with sessions.read() as session:
        report = sla_report(session=session, query=parse_query(SPRING))
        by_priority = {r.key["priority"]: _figures(r) for r in report.rows}
        assert [r.key for r in report.rows] == [{"policy": "standard", "priority": p} for p in ("urgent", "high", "normal")]
        # started, met, breached, running, paused, attainment, median % used, p90 % used, warnings
        assert by_priority == {
            "urgent": (3, 1, 2, 0, 0, 0.3333, 200.0, 250.0, 2),   # D after its change: 888, 2000, 2500 per mille
            "high": (3, 1, 2, 0, 0, 0.3333, 200.0, 250.0, 2),     # B: 555, 2000, 2500
            "normal": (13, 8, 1, 2, 2, 0.8889, 25.0, 150.0, 1),   # 55 74 125 222 250 250 444 500 1500
        }
        assert _figures(report.total) == (19, 10, 5, 2, 2, 0.6667, 50.0, 250.0, 5)

        premium = sla_report(session=session, query=parse_query({**SPRING, "group": ["tier"], "tier": ["premium"]}))
        assert [(r.key, r.started, r.met, r.breached) for r in premium.rows] == [({"tier": "premium"}, 7, 4, 3)]

        # A started on 30 April: May by start leaves out its first response, resolution and OLA, not its
        # next response (4 May); by stop, A's first response (stopped 30 April) and the open cycles drop out.
        may = {"from": ["2026-05-01"], "to": ["2026-05-31"], "group": []}
        assert _figures(sla_report(session=session, query=parse_query(may)).total)[:5] == (16, 8, 4, 2, 2)
        stopped = sla_report(session=session, query=parse_query({**may, "basis": ["stopped"]})).total
        assert _figures(stopped)[:5] == (14, 9, 5, 0, 0)

        by_clock = sla_report(session=session, query=parse_query({**SPRING, "group": ["clock"]}))
        assert {r.key["clock"]: (r.started, r.met, r.breached) for r in by_clock.rows} == {
            "first_response": (5, 3, 2), "next_response": (2, 2, 0), "resolution": (6, 4, 0), "ola_l1": (6, 1, 3)}

        a_resolution = session.execute(select(ClockCycle.id).where(
            ClockCycle.concern_id == "CCR-FIXA", ClockCycle.clock == "resolution")).scalar_one()
        detail = clock_detail(session=session, cycle_id=a_resolution, warn_at=0.75)
        assert [(e.kind, e.elapsed_seconds) for e in detail.events] == [
            ("start", 0), ("pause", 7200), ("resume", 7200), ("stop", 21600)]
        b_first = session.execute(select(ClockCycle.id).where(
            ClockCycle.concern_id == "CCR-FIXB", ClockCycle.clock == "first_response")).scalar_one()
        detail = clock_detail(session=session, cycle_id=b_first, warn_at=0.75)
        assert [(e.kind, e.elapsed_seconds) for e in detail.events] == [
            ("start", 0), ("warn", 5400), ("breach", 7200), ("stop", 14400)]
        # B breached at 11:00 in the level 1 queue before Ada claimed it at 13:30.
        assert (detail.breach.step, detail.breach.holder) == ("level1", None)
        a_ola = session.execute(select(ClockCycle.id).where(
            ClockCycle.concern_id == "CCR-FIXA", ClockCycle.clock == "ola_l1")).scalar_one()
        assert clock_detail(session=session, cycle_id=a_ola).breach.holder == "Ada"

    # The cycles derive again from the clock events alone, to the same states and business times.
    with sessions.begin() as session:
        assert rebuild_cycles(session.connection()) == 19
    assert _cycles(sessions) == EXPECTED_CYCLES


NUMBER_LINK = re.compile(r'<td class="num[^"]*"><a href="([^"]+)">(\d+)</a></td>')
TILE_LINK = re.compile(r'<p class="tile-value"><a href="([^"]+)">(\d+)</a>')


async def _auditor(desk) -> dict:
    person = make_staff(desk.sessions, "audrey@desk.test", "auditor", name="Audrey")
    return as_session(desk, user_id=person["id"])


async def test_every_number_links_to_exactly_the_clocks_it_counts(desk_on_both):
    desk = desk_on_both
    seed_fixture(desk.sessions)
    headers = await _auditor(desk)
    page = await desk.http.get("/reports/sla?from=2026-04-01&to=2026-05-31&group=priority&group=clock",
                               headers=headers)
    assert page.status_code == 200
    links = NUMBER_LINK.findall(page.text) + TILE_LINK.findall(page.text)
    assert len(links) > 40
    seen_ids: set[int] = set()
    for href, number in links:
        href = html.unescape(href)
        listing = await desk.http.get(href, headers=headers)
        assert listing.status_code == 200, href
        title = re.search(r'<h1 class="report-title">(\d+) clocks?', listing.text)
        assert title and title.group(1) == number, (href, number)
        ids = {int(i) for i in re.findall(r'href="/reports/sla/clocks/(\d+)"', listing.text)}
        assert len(ids) == int(number), (href, number)
        api = await desk.http.get(href.replace("/reports/sla/clocks?", "/api/reports/sla/clocks?"), headers=headers)
        assert {r["id"] for r in api.json()["rows"]} == ids
        seen_ids |= ids
    assert len(seen_ids) == 19  # the total links reach every cycle

    # One figure checked by hand: urgent first-response breaches are exactly D's.
    page = await desk.http.get("/api/reports/sla/clocks?from=2026-04-01&to=2026-05-31&priority=urgent"
                               "&clock=first_response&measure=breached", headers=headers)
    assert [(r["concern_id"], r["clock"], r["state"]) for r in page.json()["rows"]] == [
        ("CCR-FIXD", "first_response", "breached")]


async def test_csv_and_json_say_what_the_page_says(desk_on_both):
    desk = desk_on_both
    seed_fixture(desk.sessions)
    headers = await _auditor(desk)
    query = "from=2026-04-01&to=2026-05-31&group=policy&group=priority"
    page = (await desk.http.get(f"/reports/sla?{query}", headers=headers)).text
    report = (await desk.http.get(f"/api/reports/sla?{query}", headers=headers)).json()
    response = await desk.http.get(f"/api/reports/sla.csv?{query}", headers=headers)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["priority"] for r in rows] == ["urgent", "high", "normal", ""]
    # The export is in the staff audit log: who took which figures of which period.
    audited = (await desk.http.get("/api/audit", params={"action": "report.exported"}, headers=desk.auth)).json()
    assert [(e["target"], e["detail"]["from"], e["detail"]["to"]) for e in audited["items"]] == [
        ("report:sla", "2026-04-01", "2026-05-31")]
    for line, figures in zip(rows, [*report["rows"], report["total"]]):
        for name in ("started", "met", "breached", "running", "paused", "warnings"):
            assert int(line[name]) == figures[name]
        assert (float(line["attainment"]) if line["attainment"] else None) == figures["attainment"]
        assert float(line["median_used_pct"]) == figures["median_used"]
        assert float(line["p90_used_pct"]) == figures["p90_used"]
    # The page shows the same numbers, row by row.
    table = page[page.index('<tbody>'):]
    for figures in [*report["rows"], report["total"]]:
        shown = re.search(r"<tr[^>]*>\s*(?:<th[^>]*>[^<]*</th>\s*)+(.*?)</tr>", table, re.S)
        numbers = re.findall(r">(\d+|[\d.]+ %|–)</a>|<td class=\"num\">(–)</td>", shown.group(1))
        numbers = [a or b for a, b in numbers]
        assert numbers == [str(figures[k]) for k in ("started", "met", "breached", "running", "paused")] + [
            f"{figures['attainment'] * 100:.1f} %", f"{figures['median_used']:.1f} %", f"{figures['p90_used']:.1f} %",
            str(figures["warnings"])]
        table = table[shown.end():]
    for name in ("met", "attainment", "median_used"):
        assert report["definitions"][name] in html.unescape(page)  # each figure's definition shown

    clocks = await desk.http.get("/api/reports/sla/clocks.csv?from=2026-04-01&to=2026-05-31", headers=headers)
    lines = list(csv.DictReader(io.StringIO(clocks.text)))
    assert len(lines) == report["total"]["started"] == 19
    b = next(r for r in lines if r["concern_id"] == "CCR-FIXB" and r["clock"] == "first_response")
    assert (b["state"], b["elapsed_seconds"], b["target_seconds"]) == ("breached", "14400", "7200")
    assert b["start_event_id"] and b["warn_event_id"] and b["breach_event_id"] and b["stop_event_id"]


async def test_only_auditors_admins_leads_and_process_owners_read_it(desk):
    seed_fixture(desk.sessions)
    routes = ["/reports/sla", "/reports/sla/clocks", "/api/reports/sla", "/api/reports/sla.csv",
              "/api/reports/sla/clocks.csv"]
    for role in ("auditor", "admin", "lead", "process_owner"):
        person = make_staff(desk.sessions, f"{role}@roles.test", role, level=2 if role == "lead" else None)
        for route in routes:
            assert (await desk.http.get(route, headers=as_session(desk, user_id=person["id"]))).status_code == 200
    for role in ("agent", "sre"):
        person = make_staff(desk.sessions, f"{role}@roles.test", role, level=1 if role == "agent" else None)
        for route in routes:
            response = await desk.http.get(route, headers=as_session(desk, user_id=person["id"]))
            assert response.status_code == 403, (role, route)
    integration = make_staff(desk.sessions, "shop@roles.test", "integration", token=True)
    assert (await desk.http.get("/api/reports/sla", headers={"Authorization": f"Bearer {integration['token']}"})
            ).status_code == 403
    assert (await desk.http.get("/api/reports/sla")).status_code == 401
    assert (await desk.http.get("/reports/sla", follow_redirects=False)).status_code == 302


async def test_a_bad_period_is_refused_with_what_to_fix(desk):
    headers = await _auditor(desk)
    response = await desk.http.get("/api/reports/sla?from=2026-05-31&to=2026-05-01", headers=headers)
    assert response.status_code == 422 and "`from` must not be after `to`" in response.json()["detail"]
    page = await desk.http.get("/reports/sla?from=yesterday", headers=headers)
    assert page.status_code == 422 and "give `from` and `to` as dates" in page.text
    assert parse_query({}, today=date(2026, 5, 20)).date_from == date(2026, 5, 1)


def test_the_command_line_prints_the_same_figures(database_url, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from registry.db import Sessions, make_engine
    from registry.sla_report import report_csv_lines

    sessions = Sessions(make_engine(database_url))
    seed_fixture(sessions)
    env = {**os.environ, "CCR_DATABASE_URL": database_url, "CCR_DATA_DIR": str(tmp_path / "var")}
    root = Path(__file__).parent.parent

    def ccr(*args):
        done = subprocess.run([sys.executable, "-m", "ccr", "report", "sla", "--from", "2026-04-01", "--to",
                               "2026-05-31", *args], capture_output=True, text=True, env=env, cwd=root, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    printed = ccr("--group-by", "tier", "--filter", "tier=premium")
    with sessions.read() as session:
        query = parse_query({**SPRING, "group": ["tier"], "tier": ["premium"]})
        assert printed == "".join(report_csv_lines(session=session, query=query)).replace("\r\n", "\n")
    figures = json.loads(ccr("--format", "json"))
    assert (figures["total"]["started"], figures["total"]["attainment"]) == (19, 0.6667)
    assert len(ccr("--clocks").splitlines()) == 1 + 19
    sessions.engine.dispose()
