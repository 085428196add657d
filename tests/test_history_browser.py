"""In Chromium, at a desktop and a phone width: an SRE opens a concern's history at one event and filters it."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.engine_support import ADA, act, open_concern
from tests.web_support import PASSWORD, make_staff


@pytest.mark.parametrize("width, height", [(1366, 900), (390, 844)], ids=["desktop", "phone"])
async def test_an_sre_reads_a_concern_history_at_an_event_and_filters_it(desk, live_url, page, artifacts, width,
                                                                         height):
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    await page.set_viewport_size({"width": width, "height": height})
    make_staff(desk.sessions, "sam@desk.test", "sre", name="Sam")
    concern = await open_concern(desk, category="ladder", priority="low", subject="Cannot print invoices")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", ADA)
    await desk.intake.message(concern_id=concern.id, text="Still broken", channel="email", author="Cust")
    await desk.wait_for(concern.id, lambda c: c.step == "level2", timeout=30)

    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill("sam@desk.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{live_url}/concerns/{concern.id}")
    await page.get_by_role("link", name="Workflow history").click()
    await expect(page.locator("h1")).to_contain_text("Cannot print invoices")
    claim = page.locator(".history-row", has_text="update act: claim by Ada — accepted")
    await expect(claim).to_be_visible()
    event_id = await claim.locator(".eid").first.inner_text()

    # A link from elsewhere (the ops view, the SLA report) lands on the event, highlighted.
    await page.goto(f"{live_url}/concerns/{concern.id}/history#event-{event_id}")
    await expect(page.locator(f"#event-{event_id}")).to_be_in_viewport()
    await page.screenshot(path=str(artifacts / f"history-at-event-{width}.png"), full_page=False)
    assert await page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen

    await page.get_by_label("Timers").check()
    await expect(page.locator(".history-row.kind-timers").first).to_be_visible()
    await expect(page.locator(".history-row:not(.kind-timers)")).to_have_count(0)
    await expect(page.locator(".history-row", has_text="timer fired: escalation of level1")).to_be_visible()
    assert "kind=timers" in page.url  # the filter is in the address, to bookmark or share
    await page.locator(".history-row.kind-timers .row-events summary").first.click()
    await page.screenshot(path=str(artifacts / f"history-timers-{width}.png"), full_page=True)

    await page.get_by_label("Timers").uncheck()
    await page.get_by_placeholder("Text in events").fill("Still broken")
    await expect(page.locator(".history-row")).to_have_count(1)
    await expect(page.locator(".history-row")).to_contain_text("signal customer_message via email")
    assert "q=Still%20broken" in page.url or "q=Still+broken" in page.url
    await page.goto(f"{live_url}/concerns/{concern.id}/history")
    await page.screenshot(path=str(artifacts / f"history-{width}.png"), full_page=True)
