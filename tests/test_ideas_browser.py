"""The ideas page in Chromium at a laptop's and a phone's width: figures, quotes, and shipping a theme."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.ideas_kit import build
from tests.test_look_browser import sign_in
from tests.web_support import make_staff

SIZES = [(1366, 900), (390, 844)]


@pytest.mark.parametrize("width, height", SIZES, ids=["laptop", "phone"])
async def test_ideas_read_at_both_widths_and_a_theme_ships(desk, live_url, page, artifacts, width, height):
    page.set_default_timeout(20_000)
    build(desk.sessions)
    make_staff(desk.sessions, "olive@desk.test", "process_owner", name="Olive Owner")
    await page.set_viewport_size({"width": width, "height": height})
    await sign_in(page, live_url, "olive@desk.test")
    await page.goto(f"{live_url}/ideas?period=30d")
    await expect(page.get_by_role("heading", name="What customers tell us")).to_be_visible()
    export = page.locator("tbody tr").first
    await expect(export.locator("th")).to_have_text("Shop app")
    await expect(export.locator("td").nth(2)).to_have_text("3")
    await expect(page.get_by_text("The export button does nothing on Safari.")).to_be_visible()
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the ideas page is {overflow}px wider than the window at {width}px"
    await page.screenshot(path=str(artifacts / f"ideas-{width}.png"), full_page=True)
    group = page.get_by_role("region", name="Shop app · Export")
    await group.get_by_label("Status").select_option("shipped")
    await group.get_by_role("button", name="Set status").click()
    await expect(page.get_by_role("status")).to_contain_text("The customers of 4 concerns were told")
    await expect(export.locator(".pill")).to_have_text("Shipped")
    await page.screenshot(path=str(artifacts / f"ideas-shipped-{width}.png"), full_page=True)


@pytest.mark.parametrize("width, height", SIZES, ids=["laptop", "phone"])
async def test_an_agent_quotes_the_customer_on_the_concern_page(desk, live_url, page, artifacts, width, height):
    page.set_default_timeout(20_000)
    build(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", name="Ada", level=1)
    await page.set_viewport_size({"width": width, "height": height})
    await sign_in(page, live_url, "ada@desk.test")
    await page.goto(f"{live_url}/concerns/CCR-IDEA0004")
    form = page.get_by_role("region", name="Product feedback")
    await expect(form.get_by_text("The app is lovely, thank you!").first).to_be_visible()
    await form.get_by_label("Product or service").fill("Shop app")
    await form.get_by_label("Usability problem").check()
    await form.get_by_role("radio", name="The app is lovely, thank you!").check()
    await form.get_by_role("button", name="Record feedback").click()
    await expect(form.get_by_role("alert")).to_contain_text("quoted as feedback on this concern already")
    await expect(form.get_by_label("Product or service")).to_have_value("Shop app")
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the concern page is {overflow}px wider than the window at {width}px"
    await form.screenshot(path=str(artifacts / f"ideas-concern-form-{width}.png"))
