"""What the customer reads, in Chromium on a desktop (1366 px) and a phone (390 px): the concern page and the
help centre, with screenshots kept in tests/artifacts."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from api.security import hash_password
from registry.customers import find_or_create_customer
from registry.knowledge import create_article, publish_article
from tests.intake_kit import act
from tests.test_reads_portal import ARTICLE_TEXT, make_agent, publish_reset_article

WIDTHS = [1366, 390]


async def sign_in_customer(desk, page, live_url, email: str, name: str) -> None:
    with desk.sessions.begin() as session:
        customer, _ = find_or_create_customer(session=session, email=email, name=name)
        customer.password_hash = hash_password("a good password")
        session.add(customer)
    await page.goto(f"{live_url}/portal/login")
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill("a good password")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="My concerns").wait_for()


async def no_horizontal_overflow(page) -> None:
    overflow = await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_customer_reads_one_answer_with_buttons_and_when_to_expect_a_person(desk, live_url, page,
                                                                                      artifacts, width):
    page.set_default_timeout(20_000)
    await page.set_viewport_size({"width": width, "height": 900})
    publish_reset_article(desk)
    agent = make_agent(desk)
    await sign_in_customer(desk, page, live_url, "cara@example.com", "Cara")

    # The help centre's answer, once, with the page's own buttons.
    access = await desk.intake.open(email="cara@example.com", name="Cara", subject="Forgot my password",
                                    body="How do I reset my password? I forgot it.", channel="web",
                                    category="account-access", meta={"signed_in": True})
    await desk.wait_for(access.id, lambda c: c.step == "confirm")
    await page.goto(f"{live_url}/portal/concerns/{access.id}")
    history = page.locator("#history")
    await expect(history.get_by_text(re.compile(ARTICLE_TEXT))).to_have_count(1)
    await expect(history.locator("article")).to_have_count(2)  # what Cara wrote, and the suggested answer
    await expect(history).not_to_contain_text("Reply")
    await expect(history).not_to_contain_text("Hello")
    confirm = page.locator("#confirm")
    await expect(confirm.get_by_role("heading", name="Did this solve your concern?")).to_be_visible()
    await expect(confirm.get_by_role("button", name="Yes, this solved it")).to_be_visible()
    await no_horizontal_overflow(page)
    await page.screenshot(path=str(artifacts / f"reads-portal-answer-{width}.png"), full_page=True)
    await confirm.get_by_role("button", name="No, it did not").click()
    await desk.wait_for(access.id, lambda c: c.step == "level1")
    await page.goto(f"{live_url}/portal/concerns/{access.id}")
    await expect(page.locator("#confirm")).to_have_count(0)
    await expect(page.locator("#expect")).to_contain_text(re.compile(r"We will answer you (within|today|tomorrow|by)"))
    await no_horizontal_overflow(page)
    await page.screenshot(path=str(artifacts / f"reads-portal-promise-{width}.png"), full_page=True)

    # A person's reply, signed with their plain name; the promise is kept, so it is no longer shown.
    await act(desk, access.id, "claim", agent)
    await act(desk, access.id, "reply", agent, text="I have unlocked your account; try signing in again.")
    await history.get_by_text("I have unlocked your account").wait_for()
    await expect(history.locator("article").last).to_contain_text("Customer Care replied · Ada")
    await expect(page.locator("#expect")).to_have_count(0)
    await expect(page.locator("header .who")).to_have_text("Cara")
    await no_horizontal_overflow(page)
    await page.screenshot(path=str(artifacts / f"reads-portal-reply-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_help_centre_is_browsed_by_topic_and_asks_whether_an_article_helped(desk, live_url, page,
                                                                                      artifacts, width):
    page.set_default_timeout(20_000)
    await page.set_viewport_size({"width": width, "height": 900})
    with desk.sessions.begin() as session:
        for title, body, category in [
            ("Where is my order?", "Orders ship within two working days.", "orders"),
            ("Returning an order", "Send it back within 30 days with the label from your account.", "orders"),
            ("How to reset your password", "Use **Forgot password** on the sign-in page.", "account-access"),
        ]:
            article = create_article(session=session, title=title, body=body, owner_email="o@desk.test",
                                     category=category)
            publish_article(session=session, article_id=article.id)

    await page.goto(f"{live_url}/portal/kb")
    await page.locator("#kb-categories").get_by_role("link", name="Orders").click()
    topic = page.locator("#kb-category")
    await expect(topic.get_by_role("heading", name="Orders")).to_be_visible()
    await expect(topic.get_by_role("link")).to_have_count(3)  # two articles and "All categories"
    await topic.get_by_role("link", name="Where is my order?").click()
    await page.get_by_role("heading", name="Where is my order?").wait_for()
    helpful = page.locator("#helpful")
    await helpful.get_by_role("button", name="Yes").click()
    await expect(helpful).to_contain_text("Thank you for telling us.")
    await no_horizontal_overflow(page)
    await page.screenshot(path=str(artifacts / f"reads-kb-article-{width}.png"), full_page=True)

    await page.goto(f"{live_url}/portal/kb")
    await expect(page.locator("#kb-popular").get_by_role("link")).to_have_text(["Where is my order?"])
    await no_horizontal_overflow(page)
    await page.screenshot(path=str(artifacts / f"reads-kb-home-{width}.png"), full_page=True)

    await page.get_by_label("Search the help articles").fill("wifi not working")
    await page.get_by_role("button", name="Search").click()
    nothing = page.locator("#kb-nothing")
    await expect(nothing).to_contain_text("Nothing found for “wifi not working”")
    await expect(page.locator("#kb-results")).not_to_contain_text("Where is my order?")
    await expect(nothing.get_by_role("link", name="Open a concern")).to_have_attribute(
        "href", "/portal/concerns/new?q=wifi%20not%20working")
    await no_horizontal_overflow(page)
    await page.screenshot(path=str(artifacts / f"reads-kb-nothing-{width}.png"), full_page=True)
