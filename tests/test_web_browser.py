"""The agent workspace in Debian's Chromium: the full loop from a new concern to its resolution."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.web_support import PASSWORD, make_staff, publish_workspace_sop, signed_in_cookie

REPLY = "We are replacing your router today; it will be back within the hour."
RESOLUTION = "Replaced the router and checked the line: stable for 30 minutes."


async def sign_in(page, live_url: str, email: str) -> None:
    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="My queue").wait_for()


async def test_l1_claims_replies_escalates_and_l2_resolves(desk, live_url, page, browser, artifacts):
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "bo@desk.test", "agent", level=2, name="Bo")
    dialogs = []
    page.on("dialog", lambda d: dialogs.append(d.message))

    await sign_in(page, live_url, "ada@desk.test")
    await page.evaluate("window.stillTheSamePage = true")
    concern = await desk.intake.open(email="rita@example.com", name="Rita <b>Router</b>",
                                     subject="Router keeps rebooting <script>alert(1)</script>",
                                     body="Every ten minutes the internet drops.", channel="web", category="workspace")
    row = page.locator(f"#row-{concern.id}")
    await row.wait_for()  # arrives by polling, without a reload
    assert await page.evaluate("window.stillTheSamePage") is True
    await expect(row).to_contain_text("Router keeps rebooting <script>alert(1)</script>")
    await page.screenshot(path=str(artifacts / "workspace-queue-l1.png"), full_page=True)

    await row.get_by_role("link").click()
    await page.wait_for_url(f"**/concerns/{concern.id}")
    await expect(page.locator(".node.current")).to_have_attribute("data-step", "level1")
    await page.locator("#form-claim").get_by_role("button", name="Claim").click()
    await expect(page.locator("#concern-assignee")).to_contain_text("claimed by you")

    await page.locator("#box-reply").get_by_label("Canned response").select_option("acknowledge")
    await expect(page.locator("#text-reply")).to_have_value(re.compile(r"^Hello Rita <b>Router</b>,"))
    await page.locator("#text-reply").fill(REPLY)
    await page.get_by_role("button", name="Send reply").click()
    await expect(page.locator(".conversation .entry.public").last).to_contain_text(REPLY)
    await expect(page.locator("#text-reply")).to_have_value("")

    await page.locator("#box-escalate summary").click()
    await page.locator("#form-escalate").get_by_label("Reason").fill("Line fault: needs level 2")
    await page.get_by_role("button", name="Escalate").click()
    await expect(page.locator("#concern-level")).to_contain_text("level 2")
    await expect(page.locator(".node.current")).to_have_attribute("data-step", "level2")
    # Level 1 may still press Claim; the workflow refuses it and the reason appears where the button is.
    await page.locator("#form-claim").get_by_role("button", name="Claim").click()
    await expect(page.locator("#form-claim .error")).to_have_text("this step needs a level 2 agent; Ada is level 1")
    await page.screenshot(path=str(artifacts / "workspace-concern-l1-refused.png"), full_page=True)

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/login")
    await sign_in(page, live_url, "bo@desk.test")
    await page.locator(f"#row-{concern.id}").get_by_role("link").click()
    await page.locator("#form-claim").get_by_role("button", name="Claim").click()
    await expect(page.locator("#concern-assignee")).to_contain_text("claimed by you")
    await page.locator("#text-resolve").fill(RESOLUTION)
    await page.get_by_label("worth a knowledge article").check()
    await page.get_by_role("button", name="Resolve").click()
    await expect(page.locator("#concern-status")).to_have_text("resolved")
    await expect(page.locator(".conversation")).to_contain_text(RESOLUTION)
    await page.screenshot(path=str(artifacts / "workspace-concern-l2-resolved.png"), full_page=True)
    assert dialogs == []  # no injected script ever ran

    response = await desk.http.get(f"/api/concerns/{concern.id}", headers=desk.auth)
    sent = [(t["kind"], t["body"]) for t in response.json()["timeline"] if t["direction"] == "out"]
    assert ("reply", REPLY) in sent and ("resolution", RESOLUTION) in sent
    customer = await browser.new_context()
    await customer.add_cookies([{"name": "ccr_session", "url": live_url,
                                 "value": signed_in_cookie(desk, customer_id=concern.customer_id)}])
    portal = await customer.new_page()
    await portal.goto(f"{live_url}/portal/concerns/{concern.id}")
    await expect(portal.get_by_text(REPLY)).to_be_visible()
    await portal.screenshot(path=str(artifacts / "workspace-customer-sees-reply.png"), full_page=True)
    await customer.close()


async def test_a_control_used_the_moment_its_panel_appears_works(desk, live_url, page):
    """An agent who picks a canned response in the very next moment after claiming gets the text."""
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    concern = await desk.intake.open(email="rita@example.com", name="Rita Router", subject="Router reboots",
                                     body="Every ten minutes.", channel="web", category="workspace")
    await sign_in(page, live_url, "ada@desk.test")
    await page.goto(f"{live_url}/concerns/{concern.id}")
    await expect(page.locator(".node.current")).to_have_attribute("data-step", "level1")
    # As soon as the claim's answer has replaced the action panel, pick a canned response: one task later,
    # sooner than a person could, and sooner than htmx's default settle delay of 20 ms.
    await page.evaluate("""() => document.body.addEventListener("htmx:afterSwap", (event) => {
        if (event.detail.target.id !== "actions") return;
        setTimeout(() => {
            const pick = document.querySelector("#box-reply .canned select");
            pick.value = "acknowledge";
            pick.dispatchEvent(new Event("change", {bubbles: true}));
        }, 0);
    }, {once: true})""")
    await page.locator("#form-claim").get_by_role("button", name="Claim").click()
    await expect(page.locator("#text-reply")).to_have_value(re.compile(r"^Hello Rita Router,"))
