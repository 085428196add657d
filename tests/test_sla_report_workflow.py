"""Real concerns run through the workflow produce the report's figures, and an auditor follows one of them in
Chromium from the report to the workflow event that decided it."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.async_api import expect
from sqlalchemy import select

from registry.clock_cycles import ClockCycle, rebuild_cycles
from registry.sla_report import parse_query, sla_report
from registry.types import utcnow
from tests.engine_support import ADA, CAROL, act, open_concern
from tests.web_support import make_staff, signed_in_cookie


async def _two_concerns(desk):
    """One whose first response breaches (4 s on the `fast` policy) and escalates, one answered in time."""
    late = await open_concern(desk, category="breach", email="late@example.com", subject="Invoice twice")
    early = await open_concern(desk, category="breach", priority="low", email="early@example.com",
                               subject="Address change")
    await desk.wait_for(early.id, lambda c: c.step == "level1")
    await act(desk, early, "claim", ADA)
    await act(desk, early, "reply", ADA, text="Changed it.")
    await act(desk, early, "resolve", ADA, text="Done.")
    await desk.wait_for(late.id, lambda c: c.step == "level2", timeout=30)
    await act(desk, late, "claim", CAROL)
    await act(desk, late, "reply", CAROL, text="Refunded the second charge.")
    await act(desk, late, "resolve", CAROL, text="Refunded.")
    for concern in (late, early):
        await desk.wait_for(concern.id, lambda c: c.status in ("resolved", "closed"), timeout=30)
    return late, early


def _cycles(desk) -> list[tuple]:
    with desk.sessions.read() as session:
        return sorted((r.concern_id, r.clock, r.outcome, r.elapsed_seconds, r.start_event_id, r.breach_event_id,
                       r.stop_event_id) for r in session.execute(select(ClockCycle)).scalars())


def _today_params() -> dict:
    today = utcnow().date()
    return {"from": [(today - timedelta(days=1)).isoformat()], "to": [(today + timedelta(days=1)).isoformat()]}


async def test_concerns_run_through_the_workflow_produce_the_figures(desk):
    late, early = await _two_concerns(desk)
    recorded = _cycles(desk)
    with desk.sessions.read() as session:
        report = sla_report(session=session, query=parse_query({**_today_params(), "group": ["clock"]}))
    by_clock = {r.key["clock"]: (r.started, r.met, r.breached, r.warnings) for r in report.rows}
    assert by_clock == {"first_response": (2, 1, 1, 1), "resolution": (2, 2, 0, 0)}
    assert (report.total.attainment, report.total.stopped) == (0.75, 4)
    breached = next(c for c in recorded if c[0] == late.id and c[1] == "first_response")
    assert breached[2] == "breached" and breached[3] >= 4  # the fast policy's 4 s, answered later
    # The cycles the projection kept while the workflow ran are what the clock events alone give again.
    with desk.sessions.begin() as session:
        rebuild_cycles(session.connection())
    assert _cycles(desk) == recorded

    # The breach's workflow event: the timer that fired it is among the events the event page decodes.
    auditor = make_staff(desk.sessions, "audrey@desk.test", "auditor", name="Audrey")
    cookie = {"Cookie": f"ccr_session={signed_in_cookie(desk, user_id=auditor['id'])}"}
    page = await desk.http.get(f"/reports/sla/events/{late.id}/{breached[5]}", headers=cookie)
    assert page.status_code == 200 and "timer fired" in page.text
    concern_page = await desk.http.get(f"/concerns/{late.id}", headers=cookie)
    assert "business time" in concern_page.text and "breached" in concern_page.text
    assert f"/reports/sla/events/{late.id}/{breached[5]}" in concern_page.text


async def test_an_auditor_follows_a_breach_from_the_report_to_its_workflow_event(desk, live_url, browser, artifacts):
    late, _ = await _two_concerns(desk)
    auditor = make_staff(desk.sessions, "audrey@desk.test", "auditor", name="Audrey")
    params = _today_params()
    start = f"{live_url}/reports/sla?from={params['from'][0]}&to={params['to'][0]}&group=clock"
    for name, size in (("desktop", {"width": 1366, "height": 900}), ("phone", {"width": 390, "height": 844})):
        context = await browser.new_context(viewport=size)
        await context.add_cookies([{"name": "ccr_session", "url": live_url,
                                    "value": signed_in_cookie(desk, user_id=auditor["id"])}])
        page = await context.new_page()
        page.set_default_timeout(20_000)
        await page.goto(start)
        await expect(page.get_by_role("heading", name="SLA compliance")).to_be_visible()
        await expect(page.locator("#total-attainment .tile-value")).to_contain_text("75.0 %")
        await expect(page.locator("#total-attainment .def")).to_contain_text("met / (met + breached)")
        await page.screenshot(path=str(artifacts / f"sla-report-{name}.png"), full_page=True)

        row = page.locator("table.figures tbody tr", has_text="First response")
        await row.locator("td").nth(2).get_by_role("link", name="1").click()
        await expect(page.get_by_role("heading", name="1 clock breached")).to_be_visible()
        await page.screenshot(path=str(artifacts / f"sla-clocks-{name}.png"), full_page=True)

        await page.get_by_role("link", name=re.compile(r"First response #\d+")).click()
        await expect(page.locator("h1")).to_contain_text(f"First response of {late.id}")
        await expect(page.locator(".breach")).to_contain_text("level1")
        await page.screenshot(path=str(artifacts / f"sla-clock-{name}.png"), full_page=True)

        breach = page.locator("table.events tr.kind-breach")
        await expect(breach).to_contain_text("reached the target")
        await breach.get_by_role("link", name=re.compile(r"event \d+")).click()
        await expect(page.locator("h1")).to_contain_text("Workflow event")
        await expect(page.locator(".wf-event").filter(has_text="timer fired")).to_have_count(1)
        await page.screenshot(path=str(artifacts / f"sla-event-{name}.png"), full_page=True)
        await context.close()
