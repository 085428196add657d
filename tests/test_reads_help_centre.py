"""The help centre: search by the words that carry meaning, browse by topic, popular articles, and "was this
helpful?" counted per article for the knowledge owners; on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

from registry.knowledge import create_article, publish_article, search_articles
from registry.knowledge_feedback import feedback_for
from tests.intake_kit import csrf_of, portal_client
from tests.web_support import make_staff, sign_in

ARTICLES = [
    ("Where is my order?", "Orders ship within two working days. The tracking link is in your confirmation mail.",
     "orders"),
    ("How to reset your password", "Use **Forgot password** on the sign-in page; the link works for one hour.",
     "account-access"),
    ("Changing your invoice address", "Open **Account → Billing** and edit the invoice address.", "billing"),
]


def publish_articles(desk, articles=ARTICLES) -> dict[str, int]:
    ids = {}
    with desk.sessions.begin() as session:
        for title, body, category in articles:
            article = create_article(session=session, title=title, body=body, owner_email="owner@desk.test",
                                     category=category)
            publish_article(session=session, article_id=article.id)
            ids[title] = article.id
    return ids


def section(page_html: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}".*?</section>', page_html, re.S)
    return html.unescape(found.group(0)) if found else ""


async def test_a_search_for_a_weak_word_finds_nothing_and_offers_a_concern(desk_on_both):
    desk = desk_on_both
    publish_articles(desk)
    with desk.sessions.begin() as session:
        assert search_articles(session=session, query="wifi not working") == []
        assert search_articles(session=session, query="my order is not working")[0].title == "Where is my order?"
        assert [h.title for h in search_articles(session=session, query="reset password")][:1] == [
            "How to reset your password"]
    page = await desk.http.get("/portal/kb", params={"q": "wifi not working"})
    results = section(page.text, "kb-results")
    assert "Where is my order?" not in results
    assert "Nothing found for “wifi not working”" in results and "Open a concern" in results
    assert 'href="/portal/concerns/new?q=wifi%20not%20working"' in page.text

    publish_articles(desk, [("Wifi drops every few minutes", "Restart the router and move it away from walls.",
                             "technical")])
    page = await desk.http.get("/portal/kb", params={"q": "wifi not working"})
    results = section(page.text, "kb-results")
    assert "Wifi drops every few minutes" in results and "Where is my order?" not in results
    assert "Nothing found" not in results


async def test_customers_browse_by_topic_and_see_what_others_found_helpful(desk_on_both):
    desk = desk_on_both
    ids = publish_articles(desk)
    front = await desk.http.get("/portal/kb")
    topics = section(front.text, "kb-categories")
    assert all(label in topics for label in ("Account access", "Billing", "Orders"))
    assert 'id="kb-popular"' not in front.text  # nobody has read anything yet

    orders = await desk.http.get("/portal/kb", params={"category": "orders"})
    listed = section(orders.text, "kb-category")
    assert "Orders" in listed and "Where is my order?" in listed and "reset your password" not in listed

    alice, bob = portal_client(desk), portal_client(desk)
    order_id = ids["Where is my order?"]
    for client, answer in ((alice, "yes"), (bob, "yes"), (alice, "no"), (alice, "no")):
        article = await client.get(f"/portal/kb/{order_id}")
        assert "Was this article helpful?" in article.text or "Change your answer" in article.text
        voted = await client.post(f"/portal/kb/{order_id}/helpful",
                                  data={"csrf_token": await csrf_of(client, f"/portal/kb/{order_id}"),
                                        "helpful": answer})
        assert voted.status_code == 303
    fragment = await bob.post(f"/portal/kb/{order_id}/helpful", headers={"HX-Request": "true"},
                              data={"csrf_token": await csrf_of(bob, f"/portal/kb/{order_id}"), "helpful": "yes"})
    assert fragment.text.lstrip().startswith('<section id="helpful"') and "Thank you for telling us" in fragment.text
    with desk.sessions.begin() as session:
        counted = feedback_for(session=session, article_ids=[order_id])[order_id]
    # Alice changed her mind once (her second "no" changes nothing), Bob said yes twice: one yes, one no.
    assert (counted.helpful, counted.not_helpful) == (1, 1) and counted.views >= 6

    front = await desk.http.get("/portal/kb")
    popular = section(front.text, "kb-popular")
    assert "Where is my order?" in popular and "Changing your invoice address" not in popular

    # The knowledge owners read the counts on the staff pages.
    make_staff(desk.sessions, "olive@desk.test", "process_owner", name="Olive")
    await sign_in(desk.http, "olive@desk.test")
    page = html.unescape((await desk.http.get(f"/kb/articles/{order_id}")).text)
    assert re.search(r"Customers: \d+ views · 1 found it helpful, 1 did not", page), page
    listing = html.unescape((await desk.http.get("/kb/articles")).text)
    assert "1 yes · 1 no" in listing


async def test_only_a_published_article_can_be_rated(desk):
    with desk.sessions.begin() as session:
        draft = create_article(session=session, title="Secret plan", body="Not yet.", owner_email="o@desk.test")
    client = portal_client(desk)
    token = await csrf_of(client, "/portal/login")
    refused = await client.post(f"/portal/kb/{draft.id}/helpful", data={"csrf_token": token, "helpful": "yes"})
    assert refused.status_code == 404
    with desk.sessions.begin() as session:
        assert feedback_for(session=session, article_ids=[draft.id])[draft.id].votes == 0
