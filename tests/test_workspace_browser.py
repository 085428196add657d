"""The workspace in Chromium at 1366 and 390 px: bulk results stay through refreshes until dismissed, a
reassignment asks first, the "changed while you were typing" banner only after typing, search by part of an id,
a name, an address and a word of the body, and the customer timeline's toggle."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.test_web_browser import sign_in
from tests.web_support import Agent, make_staff, publish_workspace_sop

WIDTHS = [(1366, 900), (390, 844)]


async def open_concern(desk, subject: str, email: str, name: str = "Casey", body: str = "Please help"):
    concern = await desk.intake.open(email=email, name=name, subject=subject, body=body, channel="web",
                                     category="workspace")
    return await desk.wait_for(concern.id, lambda c: c.level == 1)


def is_poll(response) -> bool:
    request = response.request
    return request.method == "GET" and "/queue" in request.url and request.headers.get("hx-request") == "true"


async def no_horizontal_overflow(page) -> None:
    wide = await page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-scroll, .queue'))
        .map((e) => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')).slice(0, 8)""")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), wide


@pytest.mark.parametrize("size", WIDTHS, ids=["1366", "390"])
async def test_bulk_results_stay_through_refreshes_and_reassignment_asks(desk, live_url, page, artifacts, size):
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    await page.set_viewport_size({"width": size[0], "height": size[1]})
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "bob@desk.test", "agent", level=1, name="Bob")
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, name="Lee")
    held = await open_concern(desk, "Router keeps rebooting every ten minutes", "r1@example.com")
    free = await open_concern(desk, "Invoice shows the wrong amount", "r2@example.com")
    async with Agent(desk, "bob@desk.test") as bob:
        await bob.act(held.id, "claim")

    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill("lee@desk.test")
    await page.get_by_label("Password").fill("workspace-password")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/queue")
    # Setting the priority they already have is refused for each: the result lists them under "Not done".
    for cid in (held.id, free.id):
        await page.get_by_label(f"Pick {cid}").check()
    await page.get_by_label("set priority").check()
    await page.locator("#bulk select[name=priority]").select_option("normal")
    await page.get_by_role("button", name="Apply").click()
    result = page.locator("#bulk-result .result")
    await expect(result).to_contain_text("Set 0 to normal priority.")
    await expect(result.locator("ul.not-done li")).to_have_count(2)
    await expect(result).to_contain_text("the priority is already normal")
    for _ in range(2):  # two refreshes of the table later, the result is still there
        async with page.expect_response(is_poll):
            pass
    await expect(result.locator("ul.not-done li")).to_have_count(2)
    await page.screenshot(path=str(artifacts / f"queue-bulk-result-{size[0]}.png"), full_page=True)
    await no_horizontal_overflow(page)
    await result.get_by_role("link", name="Dismiss").click()
    await expect(page.locator("#bulk-result")).to_be_empty()

    # Assigning a concern Bob holds asks first; the rows stay ticked (and the refresh paused) meanwhile.
    for cid in (held.id, free.id):
        await page.get_by_label(f"Pick {cid}").check()
    await page.get_by_label("assign to").check()
    await page.locator("#bulk select[name=assignee_id]").select_option(label="Ada (L1)")
    await page.get_by_role("button", name="Apply").click()
    question = page.locator("#bulk-result .confirm")
    await expect(question).to_contain_text(f"{held.id} is held by Bob")
    await expect(question).to_contain_text("to Ada?")
    await page.screenshot(path=str(artifacts / f"queue-reassign-question-{size[0]}.png"), full_page=True)
    assert (await desk.concern(held.id)).assignee_name == "Bob"
    await question.get_by_role("button", name="Reassign to Ada").click()
    await expect(page.locator("#bulk-result .result")).to_contain_text("Assigned 2 to Ada.")
    await expect(page.locator(f"#row-{held.id}")).to_contain_text("claimed by Ada")
    async with page.expect_response(is_poll):
        pass
    await expect(page.locator("#bulk-result .result")).to_contain_text("Assigned 2 to Ada.")

    # Bob's queue tells him, until he dismisses it.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/login")
    await sign_in(page, live_url, "bob@desk.test")
    notice = page.locator("#agent-notices .agent-notice")
    await expect(notice).to_contain_text(f"Lee reassigned {held.id}")
    await expect(notice).to_contain_text("from you to Ada.")
    await page.screenshot(path=str(artifacts / f"queue-reassigned-notice-{size[0]}.png"), full_page=True)
    await no_horizontal_overflow(page)
    await notice.get_by_role("button", name="Dismiss this notice").click()
    await expect(notice).to_have_count(0)
    await page.reload()
    await expect(page.locator("#agent-notices .agent-notice")).to_have_count(0)


async def test_the_changed_banner_appears_only_after_typing_or_a_canned_response(desk, live_url, page, artifacts):
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    bob_staff = make_staff(desk.sessions, "bob@desk.test", "agent", level=1, name="Bob")
    concern = await open_concern(desk, "Parcel arrived damaged", "p@example.com", name="Pia")
    banner = page.locator("#actions-stale")
    await sign_in(page, live_url, "ada@desk.test")
    await page.goto(f"{live_url}/concerns/{concern.id}")
    # The category box holds the concern's category: the desk filled it in, the agent typed nothing.
    await expect(page.locator("#form-set_category input[name=category]")).to_have_value("workspace")
    async with Agent(desk, "bob@desk.test") as bob:
        await bob.act(concern.id, "claim")
        await expect(page.locator("#actions")).to_contain_text("Claimed by Bob: only they can reply")
        await expect(banner).to_be_empty()
        await bob.act(concern.id, "release")
        await expect(page.locator("#form-claim")).to_be_visible()
        await expect(banner).to_be_empty()
        await page.screenshot(path=str(artifacts / "concern-refreshed-without-banner.png"), full_page=True)

        await page.locator("#text-note").fill("Photos of the box are on the way")
        await bob.act(concern.id, "claim")
        await expect(banner).to_contain_text("This concern changed while you were typing")
        await expect(page.locator("#text-note")).to_have_value("Photos of the box are on the way")
        await page.screenshot(path=str(artifacts / "concern-changed-while-typing.png"), full_page=True)
        await banner.get_by_role("button", name="Show the actions allowed now").click()
        await expect(banner).to_be_empty()
        await bob.act(concern.id, "release")

    # Ada claims; a canned response in the reply box counts as work in progress too.
    await page.locator("#form-claim").get_by_role("button", name="Claim").click()
    await expect(page.locator("#concern-assignee")).to_contain_text("claimed by you")
    await page.locator("#box-reply").get_by_label("Canned response").select_option("acknowledge")
    await expect(page.locator("#text-reply")).not_to_have_value("")
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, name="Lee")
    async with Agent(desk, "lee@desk.test") as lee:  # a lead hands it to Bob
        done = await lee.act(concern.id, "assign", assignee_id=str(bob_staff["id"]), confirm="1")
        assert done.status_code == 303
    await expect(banner).to_contain_text("This concern changed while you were typing")


@pytest.mark.parametrize("size", WIDTHS, ids=["1366", "390"])
async def test_queue_search_by_part_of_an_id_a_name_an_address_and_a_body_word(desk, live_url, page, artifacts,
                                                                               size):
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    await page.set_viewport_size({"width": size[0], "height": size[1]})
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    rita = await open_concern(desk, "Internet drops", "rita.router@example.com", name="Rita Router",
                              body="The fibre modem loses its connection every ten minutes.")
    sam = await open_concern(desk, "Cannot sign in", "sam@brightmail.test", name="Sam Smith",
                             body="The two-factor code never arrives.")
    await sign_in(page, live_url, "ada@desk.test")
    search = page.get_by_label("Search")
    rows = page.locator("#queue-table tbody tr")
    for query, expected in ((rita.id[5:9].lower(), rita), ("sam smith", sam), ("brightmail", sam),
                            ("fibre", rita), ("two-factor", sam)):
        await search.fill("")
        await search.press_sequentially(query)  # typing: the table follows after a pause, without a reload
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_id(f"row-{expected.id}")
        assert "q=" in page.url  # the search is in the URL, so it can be bookmarked
    await search.fill("rita")
    await search.press("Enter")
    await expect(rows).to_have_count(1)
    await page.screenshot(path=str(artifacts / f"queue-search-{size[0]}.png"), full_page=True)
    await no_horizontal_overflow(page)
    await search.fill("printer")
    await search.press("Enter")
    await expect(page.locator("#queue-table .empty")).to_contain_text("with these filters")


@pytest.mark.parametrize("size", WIDTHS, ids=["1366", "390"])
async def test_the_customer_page_hides_system_rows_and_opens_each_mail(desk, live_url, page, artifacts, size):
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    await page.set_viewport_size({"width": size[0], "height": size[1]})
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    concern = await open_concern(desk, "Router keeps rebooting", "rita@example.com", name="Rita")
    async with Agent(desk, "ada@desk.test") as ada:
        await ada.act(concern.id, "claim")
        await ada.act(concern.id, "reply", text="We reset the router remotely.")
    await sign_in(page, live_url, "ada@desk.test")
    await page.goto(f"{live_url}/customers/{concern.customer_id}")
    steps = page.locator('#timeline article[data-kind="step"]')
    await expect(steps.first).to_be_visible()
    await page.get_by_role("link", name="Hide system rows").click()
    await expect(steps).to_have_count(0)
    await expect(page.locator('#timeline article[data-kind="reply"]')).to_have_count(1)
    assert "system=hide" in page.url
    mail = page.locator("table.outbox tbody tr").filter(has_text="We reset").or_(
        page.locator("table.outbox tbody tr").first)
    await expect(page.locator("table.outbox")).to_contain_text("kept in the local outbox")
    await page.screenshot(path=str(artifacts / f"customer-page-quiet-{size[0]}.png"), full_page=True)
    await no_horizontal_overflow(page)
    await page.get_by_role("link", name="Show system rows").click()
    await expect(steps.first).to_be_visible()
    await mail.first.get_by_role("link").click()
    await expect(page.locator("dl.mail-headers")).to_contain_text("Message-ID")
    await expect(page.locator(".mail-html")).to_contain_text("We reset the router")  # the HTML part, cleaned
    await page.screenshot(path=str(artifacts / f"outbox-mail-{size[0]}.png"), full_page=True)
    await no_horizontal_overflow(page)
