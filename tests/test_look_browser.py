"""The pages in Chromium on a laptop (1366 px) and a phone (390 px): styled, never wider than the window, one
staff bar with what the role may open, errors as pages, and the API docs with the network cut off."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from playwright.async_api import expect

from registry.knowledge import create_article, publish_article
from tests.intake_kit import act, staff_headers
from web.access import RULES
from web.nav import STAFF_PAGES
from tests.web_support import PASSWORD, make_staff, publish_workspace_sop, signed_in_cookie

SIZES = [(1366, 900), (390, 844)]
LONG_SUBJECT = ("The refund for invoice INV-2026-000123456789012345678901234567890 was promised last Tuesday "
                "and has still not arrived on my card, although the chat said three working days at most")
LONG_EMAIL = "maximiliane.mustermann-schmidt.customer-relations@an-extremely-long-subdomain.example-company.com"

# What a button looks like before any stylesheet: a fresh document's own, compared property by property.
UA_BUTTONS = """async () => {
  const frame = document.createElement("iframe");
  frame.srcdoc = "<button>x</button>";
  const loaded = new Promise((done) => { frame.onload = done; });
  document.body.append(frame);
  await loaded;
  const keys = ["backgroundColor", "borderTopLeftRadius", "paddingLeft", "borderTopStyle", "fontWeight"];
  const plain = frame.contentWindow.getComputedStyle(frame.contentDocument.querySelector("button"));
  const ua = Object.fromEntries(keys.map((k) => [k, plain[k]]));
  frame.remove();
  return [...document.querySelectorAll("button")].filter((b) => b.getClientRects().length).map((b) => {
    const style = getComputedStyle(b);
    return {text: b.textContent.trim(), like_ua: keys.filter((k) => style[k] === ua[k])};
  });
}"""


async def fits(page, artifacts, name: str, width: int) -> None:
    """Keep a screenshot, and check the page is no wider than the window and its buttons are styled."""
    await page.screenshot(path=str(artifacts / f"look-{name}-{width}.png"), full_page=True)
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = await page.evaluate("""[...document.querySelectorAll('body *')].filter(
        e => e.getBoundingClientRect().right > window.innerWidth + 0.5 && !e.closest('.table-wrap, .queue, .flow'))
        .map(e => e.tagName + '.' + e.className).slice(0, 5)""")
    assert overflow <= 0, f"the {name} page is {overflow}px wider than the window at {width}px: {wide}"
    buttons = await page.evaluate(UA_BUTTONS)
    assert buttons, f"no button on the {name} page"
    plain = [b for b in buttons if {"borderTopLeftRadius", "paddingLeft"} & set(b["like_ua"])]
    assert not plain, f"buttons on the {name} page look like the browser's default: {plain}"


async def nav_links(page) -> list[str]:
    return [t.strip() for t in await page.get_by_role("navigation").get_by_role("link").all_inner_texts()]


def offered_to(role: str) -> list[str]:
    """The staff bar's labels the role matrix gives `role`, in the bar's order."""
    return [p.label for p in STAFF_PAGES if role in RULES.get(f"GET {p.href}", ())]


async def sign_in(page, live_url: str, email: str) -> None:
    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/queue")


@pytest.mark.parametrize("width, height", SIZES, ids=["laptop", "phone"])
async def test_portal_and_staff_pages_fit_and_look_designed(desk, live_url, page, browser, artifacts, width, height):
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "lee@desk.test", "lead", level=2, name="Lee Lead")
    _, agent = staff_headers(desk, level=1)
    with desk.sessions.begin() as session:
        article = create_article(session=session, title="How refunds reach your card", owner_email="lee@desk.test",
                                 body="Refunds reach your card within **three working days**.", category="billing")
        publish_article(session=session, article_id=article.id)
    concern = await desk.intake.open(email=LONG_EMAIL, name="Maximiliane Mustermann-Schmidt", subject=LONG_SUBJECT,
                                     body="Please check where my refund is.\n\nThank you!", channel="web",
                                     category="workspace")
    done = await desk.intake.open(email=LONG_EMAIL, subject="Password reset mail never came", channel="web",
                                  body="I asked twice.", category="workspace")
    # A queue with something of everything in it, as a desk has.
    for subject, priority in (("Cannot sign in since this morning's update", "urgent"),
                              ("Parcel arrived with the box torn open", "high"),
                              ("Please send invoices to accounts@example.org from now on", "low")):
        await desk.intake.open(email=f"{priority}@example.org", name=f"{priority.title()} Customer", subject=subject,
                               body="Details follow.", channel="email", priority=priority, category="workspace")
    for c in (concern, done):
        await desk.wait_for(c.id, lambda row: row.step == "level1")
        await act(desk, c.id, "claim", agent)
    await act(desk, concern.id, "reply", agent, text="We are looking into it with the bank and write again today.")
    await act(desk, done.id, "resolve", agent, text="Sent a new reset link; it works for an hour.")
    await desk.wait_for(done.id, lambda row: row.status == "resolved")

    # A visitor, then the customer, on the portal.
    await page.set_viewport_size({"width": width, "height": height})
    await page.goto(f"{live_url}/portal")
    await page.get_by_role("heading", name="How can we help?").wait_for()
    await fits(page, artifacts, "portal-home", width)
    await page.context.add_cookies([{"name": "ccr_session", "url": live_url, "value": signed_in_cookie(
        desk, customer_id=concern.customer_id)}])
    await page.goto(f"{live_url}/portal/concerns")
    await page.get_by_role("heading", name="My concerns").wait_for()
    await fits(page, artifacts, "portal-concerns", width)
    await page.goto(f"{live_url}/portal/concerns/new")
    await page.get_by_label("Subject").fill("refund card")
    await page.locator("#kb-results").get_by_text("How refunds reach your card").wait_for()
    await fits(page, artifacts, "portal-new-concern", width)
    await page.goto(f"{live_url}/portal/concerns/{concern.id}")
    await page.get_by_text("We are looking into it with the bank").wait_for()
    await fits(page, artifacts, "portal-concern", width)
    await page.goto(f"{live_url}/portal/concerns/{done.id}")
    rating = page.get_by_role("group", name=re.compile("How satisfied"))
    await rating.get_by_label("4").check()
    # The answers of a scale sit on one line, each a square of the same size, the chosen one filled.
    boxes = [await rating.locator("label").nth(i).bounding_box() for i in range(5)]
    assert len({round(b["y"]) for b in boxes}) == 1 and len({round(b["height"]) for b in boxes}) == 1
    chosen = await rating.locator("label").nth(3).evaluate("e => getComputedStyle(e).backgroundColor")
    other = await rating.locator("label").nth(0).evaluate("e => getComputedStyle(e).backgroundColor")
    assert chosen != other
    await fits(page, artifacts, "portal-rating", width)
    await page.context.clear_cookies()

    # A lead, in the workspace.
    await sign_in(page, live_url, "lee@desk.test")
    await page.goto(f"{live_url}/queue?scope=all")
    row = page.locator(f"#row-{concern.id}")
    await row.wait_for()
    subject = row.locator("a.subject")
    assert await subject.get_attribute("title") == LONG_SUBJECT  # the whole subject on hover
    assert (await subject.bounding_box())["height"] < 3 * 24  # at most two lines of it in the row
    await fits(page, artifacts, "queue", width)
    assert await nav_links(page) == offered_to("lead")
    await expect(page.get_by_role("navigation").get_by_role("link", name="Queue")).to_have_attribute(
        "aria-current", "page")
    await expect(page.locator("header.top .who")).to_contain_text("Lee Lead")

    await row.get_by_role("link").click()
    await page.wait_for_url(f"**/concerns/{concern.id}")
    card = page.locator(".customer-card")
    await expect(card).to_contain_text(LONG_EMAIL)
    card_box, text_box = await card.bounding_box(), await card.get_by_text(LONG_EMAIL).bounding_box()
    assert text_box["x"] + text_box["width"] <= card_box["x"] + card_box["width"] + 0.5  # wraps inside its card
    await fits(page, artifacts, "concern", width)
    assert await nav_links(page) == offered_to("lead")

    await card.get_by_role("link", name="Full customer timeline").click()
    await page.get_by_role("heading", name=re.compile("Maximiliane")).wait_for()
    await fits(page, artifacts, "customer", width)
    await expect(page.get_by_role("navigation").get_by_role("link", name="Customers")).to_have_attribute(
        "aria-current", "page")

    await page.get_by_role("navigation").get_by_role("link", name="Knowledge base").click()
    await page.get_by_role("link", name="How refunds reach your card").wait_for()
    await fits(page, artifacts, "kb-list", width)
    await page.get_by_role("navigation").get_by_role("link", name="Inbound mail").click()
    await page.get_by_role("heading", name="Inbound mail").wait_for()
    await fits(page, artifacts, "inbound-mail", width)

    # The same pages in a dark system theme: dark surfaces, light text, nothing left white.
    await page.emulate_media(color_scheme="dark")
    for name, path in (("queue", "/queue?scope=all"), ("concern", f"/concerns/{concern.id}")):
        await page.goto(f"{live_url}{path}")
        await page.locator("main h1").first.wait_for()
        await fits(page, artifacts, f"{name}-dark", width)
        colours = await page.evaluate("""() => [document.body, document.querySelector('header.top'),
            document.querySelector('.queue, .card')].map((e) => getComputedStyle(e).backgroundColor)""")
        assert not any(c in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)") for c in colours), colours
        text = await page.evaluate("getComputedStyle(document.querySelector('main h1')).color")
        assert sum(int(v) for v in re.findall(r"\d+", text)[:3]) > 600, text  # light text on the dark page


async def test_error_pages_in_the_browser(desk, live_url, page, artifacts):
    page.set_default_timeout(20_000)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    concern = await desk.intake.open(email="bob@example.com", subject="Bob's own", body="Private", channel="web")
    alices = await desk.intake.open(email="alice@example.com", subject="Alice's", body="Mine", channel="web")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.context.add_cookies([{"name": "ccr_session", "url": live_url, "value": signed_in_cookie(
        desk, customer_id=alices.customer_id)}])
    response = await page.goto(f"{live_url}/portal/concerns/{concern.id}")
    assert response.status == 404
    await page.get_by_role("heading", name="Nothing here").wait_for()
    assert "Bob's own" not in await page.content()
    assert await nav_links(page) == ["Help articles", "My concerns", "New concern"]
    await fits(page, artifacts, "error-portal", 390)
    await page.context.clear_cookies()

    await sign_in(page, live_url, "ada@desk.test")
    response = await page.goto(f"{live_url}/customers/mail/424242")
    assert response.status == 404
    await page.get_by_text("no inbound mail 424242").wait_for()
    assert await nav_links(page) == offered_to("agent")
    await fits(page, artifacts, "error-staff", 390)
    # The same address fetched as a program would stays JSON.
    answer = await page.request.get(f"{live_url}/customers/mail/424242", headers={"Accept": "application/json"})
    assert answer.status == 404 and await answer.json() == {"detail": "no inbound mail 424242"}


async def test_the_api_docs_render_with_the_network_cut_off(desk, live_url, page, artifacts):
    page.set_default_timeout(20_000)
    outside = []

    async def only_this_machine(route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await page.context.route("**/*", only_this_machine)
    await page.goto(f"{live_url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Customer Care Registry")
    await page.locator(".swagger-ui .opblock-summary-path", has_text="/api/concerns").first.wait_for()
    icon = await page.locator("link[rel*=icon]").first.get_attribute("href")
    assert icon.startswith("/static/")
    await page.screenshot(path=str(artifacts / "look-docs-offline.png"), full_page=False)
    assert outside == []  # nothing on the page even tried to reach another host
    assert (await page.request.get(f"{live_url}/static/favicon.svg")).headers["content-type"].startswith("image/svg")
