"""In Chromium, at a desktop and a phone width: a lead finds a concern nobody can take and moves it."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web_support import PASSWORD, make_staff


@pytest.mark.parametrize("width, height", [(1366, 900), (390, 844)], ids=["desktop", "phone"])
async def test_a_lead_sees_an_unstaffed_concern_and_moves_it_into_a_queue(desk, live_url, page, artifacts, width,
                                                                          height):
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    await page.set_viewport_size({"width": width, "height": height})
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, skills=["general"], name="Lee")
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, skills=["general", "complaints"], name="Ada")
    concern = await desk.intake.open(email="cal@example.com", name="Cal", subject="Rude driver",
                                     body="The driver threw my parcel over the fence.", channel="web",
                                     category="complaint", priority="high")
    await desk.wait_for(concern.id, lambda c: c.step == "level2")

    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill("lee@desk.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    row = page.locator(f"#row-{concern.id}")
    await expect(row).to_contain_text("no agent can take this step")
    await page.screenshot(path=str(artifacts / f"stuck-queue-{width}.png"), full_page=True)

    await row.get_by_role("link").click()
    await expect(page.locator(".notice.unstaffed")).to_contain_text("No active agent can take this step")
    await page.locator("#box-move summary").click()
    form = page.locator("#form-move")
    await form.get_by_label("Step").select_option("level1")
    await form.get_by_label("Reason").fill("Ada handles complaints this week")
    await page.screenshot(path=str(artifacts / f"stuck-move-{width}.png"), full_page=True)
    await form.get_by_role("button", name="Move").click()
    await expect(page.locator(".node.current")).to_have_attribute("data-step", "level1")
    await expect(page.locator(".conversation")).to_contain_text(
        "Moved from 'level2' to 'level1' by Lee: Ada handles complaints this week")
    await expect(page.locator(".notice.unstaffed")).to_have_count(0)
    await page.screenshot(path=str(artifacts / f"stuck-moved-{width}.png"), full_page=True)


async def test_a_customer_asks_for_a_person_in_the_portal(desk, live_url, page, artifacts):
    from api.security import hash_password
    from registry.customers import find_or_create_customer

    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    await page.set_viewport_size({"width": 390, "height": 844})
    with desk.sessions.begin() as session:
        customer, _ = find_or_create_customer(session=session, email="pat@example.com", name="Pat")
        customer.password_hash = hash_password("a good password")
    concern = await desk.intake.open(email="pat@example.com", name="Pat", subject="Printer jams",
                                     body="The printer pulls two sheets and jams.", channel="web")
    await desk.wait_for(concern.id, lambda c: c.step == "ask_details")
    await page.goto(f"{live_url}/portal/login")
    await page.get_by_label("E-mail").fill("pat@example.com")
    await page.get_by_label("Password").fill("a good password")
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{live_url}/portal/concerns/{concern.id}")
    await page.screenshot(path=str(artifacts / "stuck-portal-before.png"), full_page=True)
    await page.get_by_role("button", name="Talk to a person").click()
    await expect(page.locator("#person")).to_contain_text("You asked to talk to a person")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await page.screenshot(path=str(artifacts / "stuck-portal-after.png"), full_page=True)

