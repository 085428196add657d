"""A process owner reviews a carried-forward draft in Chromium, on a laptop and on a phone, without overflow."""

from __future__ import annotations

import pytest

from registry.knowledge import create_article, update_article
from registry.models import Customer
from registry.concerns import register_concern
from tests.web_support import PASSWORD, make_staff

LONG = "https://help.example/a-very-long-address-without-any-break-" + "x" * 80


@pytest.mark.parametrize("width", [1366, 390])
async def test_a_process_owner_reviews_compares_and_publishes_a_draft(desk, live_url, page, artifacts, width):
    make_staff(desk.sessions, "olga@desk.test", "process_owner", name="Olga")
    with desk.sessions.begin() as session:
        customer = Customer(email="nia@example.com", name="Nia")
        session.add(customer)
        session.flush()
        concern = register_concern(session=session, customer=customer, subject="Parcel lost", body="Where is it?",
                                   channel="web", priority="normal", category=None, workflow_id_prefix="kb-")
        article = create_article(
            session=session, title="When the carrier loses a parcel", owner_email="carol@desk.test",
            body=f"**Question**\n\nMy order [order number removed] never came.\n\n**Answer**\n\nWe re-send it. {LONG}",
            source_concern_id=concern.id, redactions={"name": 2, "order number": 1})
        update_article(session=session, article_id=article.id, edited_by="carol@desk.test",
                       body=article.body + "\n\nAsk the carrier for a trace first.")
    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill("olga@desk.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{live_url}/kb/articles/{article.id}")
    await page.get_by_text("Removed before review: 2 names, 1 order number").wait_for()

    async def fits(name: str) -> None:
        await page.screenshot(path=str(artifacts / f"kb-{name}-{width}.png"), full_page=True)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        wide = await page.evaluate("""[...document.querySelectorAll('body *')].filter(
            e => e.getBoundingClientRect().right > window.innerWidth + 0.5).map(e => e.tagName + '.' + e.className)
            .slice(0, 5)""")
        assert overflow <= 0, f"the {name} page is {overflow}px wider than the window: {wide}"

    await fits("article")
    await page.get_by_role("link", name="changes from v1").click()
    await page.locator(".kb-diff .add", has_text="Ask the carrier for a trace first.").wait_for()
    await fits("compare")
    await page.goto(f"{live_url}/kb/articles/{article.id}/revisions/1")
    await page.get_by_role("button", name="Restore this version").wait_for()
    await fits("revision")
    await page.goto(f"{live_url}/kb/articles/{article.id}")
    await page.get_by_role("button", name="Publish").click()
    await page.locator(".badge.status-published").wait_for()
    await page.get_by_text("Reviewed and published by olga@desk.test").wait_for()
    await fits("published")
    await page.goto(f"{live_url}/kb/articles")
    await fits("list")
