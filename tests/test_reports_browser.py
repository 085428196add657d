"""The overview and a drill-down in Chromium at a laptop's and a phone's width, with screenshots to look at."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.overview_fixture import END, START, build
from tests.test_look_browser import sign_in
from tests.web_support import make_staff

SIZES = [(1366, 900), (390, 844)]


@pytest.mark.parametrize("width, height", SIZES, ids=["laptop", "phone"])
async def test_overview_reads_at_both_widths_and_drills_down(desk, live_url, page, artifacts, width, height):
    page.set_default_timeout(20_000)
    build(desk.sessions)
    make_staff(desk.sessions, "lena@desk.test", "lead", level=3, name="Lena Lead")
    await page.set_viewport_size({"width": width, "height": height})
    await sign_in(page, live_url, "lena@desk.test")
    await page.get_by_role("navigation").get_by_role("link", name="Reports").click()
    await expect(page.get_by_role("heading", name="How the desk did")).to_be_visible()
    # Filters go through the URL: a custom period and a channel.
    await page.get_by_label("From", exact=True).fill(str(START))
    await page.get_by_label("To", exact=True).fill(str(END))
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url(f"**from={START}**")
    created = page.locator("article.figure", has=page.get_by_role("heading", name="Created", exact=True))
    await expect(created.locator(".value")).to_have_text("4")
    await expect(page.locator("svg.chart title").first).to_contain_text("created per day")
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the overview is {overflow}px wider than the window at {width}px"
    await page.screenshot(path=str(artifacts / f"reports-overview-{width}.png"), full_page=True)
    await page.locator("select[name=channel]").select_option("email")
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url("**channel=email**")
    await expect(created.locator(".value")).to_have_text("1")
    await created.get_by_role("link", name="1").click()
    await expect(page.get_by_role("heading", name="1 concern behind")).to_be_visible()
    await expect(page.get_by_role("link", name="C2")).to_be_visible()
    await page.screenshot(path=str(artifacts / f"reports-drilldown-{width}.png"), full_page=True)
