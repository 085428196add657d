"""The customer portal in a real browser: sign up by mailed link, open a concern, follow it, confirm and rate."""

from __future__ import annotations

import re

from sqlmodel import select

from registry.models import OutboxMail
from tests.intake_kit import act, staff_headers

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


async def test_a_customer_signs_up_opens_a_concern_follows_it_confirms_and_rates(desk, live_url, page):
    page.set_default_timeout(20_000)
    await page.goto(f"{live_url}/portal/signup")
    await page.get_by_label("Your name").fill("Alice Example")
    await page.get_by_label("E-mail address").fill("alice@example.com")
    await page.get_by_role("button", name="Send me the link").click()
    await page.get_by_text("Check your mail").wait_for()
    with desk.sessions.begin() as session:
        [mail] = session.exec(select(OutboxMail).where(OutboxMail.to_address == "alice@example.com")).all()
    path = re.search(r"/portal/reset/\S+", mail.text).group(0)

    await page.goto(f"{live_url}{path}")
    await page.get_by_label("New password").fill("correct horse battery")
    await page.get_by_label("The same again").fill("correct horse battery")
    await page.get_by_role("button", name="Save and sign in").click()
    await page.get_by_role("heading", name="My concerns").wait_for()
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("navigation").get_by_role("link", name="Sign in").click()
    await page.get_by_label("E-mail address").fill("alice@example.com")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="My concerns").wait_for()

    await page.get_by_role("link", name="Open a new concern").click()
    await page.get_by_label("Subject").fill("Printer jams on every page")
    await page.get_by_label("Category").select_option("ladder")
    await page.get_by_label("Description").fill("Since Monday the office printer jams after one sheet.")
    await page.get_by_label("Attachments").set_input_files(
        [{"name": "jam.png", "mimeType": "image/png", "buffer": PNG}])
    await page.get_by_role("button", name="Open the concern").click()
    await page.get_by_role("heading", name="Printer jams on every page").wait_for()
    concern_id = re.search(r"CCR-[0-9A-Z]{8}", page.url).group(0)
    await page.get_by_role("link", name="jam.png").wait_for()

    # An agent answers through the workflow; the page picks the reply up by itself. The ladder SOP climbs
    # to level 3 within seconds and stays there, so a level 3 agent's claim cannot be undone by a timer.
    _, agent = staff_headers(desk, level=3)
    await desk.wait_for(concern_id, lambda c: c.level == 3, timeout=30)
    await act(desk, concern_id, "claim", agent)
    await act(desk, concern_id, "reply", agent, text="Please open tray 2 and remove the torn sheet.")
    await page.get_by_text("Please open tray 2 and remove the torn sheet.").wait_for()
    await act(desk, concern_id, "resolve", agent, text="Replaced the worn pickup roller.")
    await page.get_by_role("heading", name="Did this solve your concern?").wait_for()
    await page.get_by_text("Replaced the worn pickup roller.").wait_for()

    await page.get_by_role("button", name="Yes, this solved it").click()
    await page.locator("#history").get_by_text("This solved it.").wait_for()
    await page.get_by_role("group", name=re.compile("How satisfied")).get_by_label("5").check()
    await page.get_by_role("group", name=re.compile("recommend")).get_by_label("9", exact=True).check()
    await page.get_by_label("Anything we should do better?").fill("Quick and friendly.")
    await page.get_by_role("button", name="Send my rating").click()
    await page.get_by_text("Thank you for rating our service (5/5).").wait_for()
    rated = await desk.wait_for(concern_id, lambda c: c.csat == 5)
    assert (rated.nps, rated.status) == (9, "resolved")
    assert await page.get_by_role("button", name="Send my rating").count() == 0
