"""What the customer reads on the portal: each message once, in portal words, the solved question only where an
answer was proposed, and when to expect the desk's answer."""

from __future__ import annotations

import asyncio
import html
import re
import time

from api.security import create_user
from registry.knowledge import create_article, publish_article
from tests.intake_kit import act, csrf_of, open_in_portal, signed_in
from workflows.payloads import AgentRef

SOLVED_QUESTION = "Did this solve your concern?"
ARTICLE_TEXT = "Use Forgot password on the sign-in page"


def publish_reset_article(desk) -> int:
    with desk.sessions.begin() as session:
        article = create_article(session=session, title="How to reset your password", owner_email="o@desk.test",
                                 body=f"{ARTICLE_TEXT}; the link works for one hour.", category="account-access")
        publish_article(session=session, article_id=article.id)
        return article.id


def make_agent(desk, name: str = "Ada") -> AgentRef:
    with desk.sessions.begin() as session:
        user = create_user(session=session, email=f"{name.lower()}@desk.test", password="staff-password",
                           role="agent", name=name, level=1, skills=["general", "accounts"])
        return AgentRef(id=user.id, name=user.name, level=1, skills=user.skills)


async def page_text(client, concern_id: str, until=None, timeout: float = 20) -> str:
    """The concern's portal page as text, once `until(text)` holds (the workflow writes asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        page = await client.get(f"/portal/concerns/{concern_id}")
        assert page.status_code == 200
        text = html.unescape(re.sub(r"</?(strong|em|span|a)\b[^>]*>", "", page.text))
        if until is None or until(text) or time.monotonic() > deadline:
            return text
        await asyncio.sleep(0.1)


def concern_id_of(response) -> str:
    return re.search(r"CCR-[0-9A-Z]{8}", response.headers["location"]).group(0)


def assert_portal_words(text: str) -> None:
    """No mail wording, no greeting or sign-off, no staff notes about what was sent."""
    for mail_words in ('Reply "solved"', "reply to this e-mail", "Hello ", "Kind regards", "Sent '",
                       "Asked the customer", "Did this solve it?", "(L1)", "(agent"):
        assert mail_words not in text, mail_words


async def test_an_automated_answer_appears_once_with_buttons_to_confirm_it(desk):
    publish_reset_article(desk)
    client = await signed_in(desk, "cara@example.com", name="Cara")
    opened = await open_in_portal(client, subject="Forgot my password", category="account-access",
                                  body="How do I reset my password? I forgot it.")
    concern_id = concern_id_of(opened)
    await desk.wait_for(concern_id, lambda c: c.step == "confirm")
    text = await page_text(client, concern_id, until=lambda t: ARTICLE_TEXT in t)
    assert text.count(ARTICLE_TEXT) == 1, text
    assert "Suggested answer" in text and "Automatic answer" not in text and "Customer Care asked you" not in text
    assert SOLVED_QUESTION in text and "Yes, this solved it" in text and "No, it did not" in text
    assert "This answer from our help centre may solve your request right away" in text
    assert_portal_words(text)

    token = await csrf_of(client, f"/portal/concerns/{concern_id}")
    await client.post(f"/portal/concerns/{concern_id}/messages", data={"csrf_token": token, "intent": "solved"})
    await desk.wait_for(concern_id, lambda c: c.status == "resolved")
    text = await page_text(client, concern_id, until=lambda t: "Rate our service" in t)
    assert SOLVED_QUESTION not in text and "Resolved" in text
    assert "is closed" not in text


async def test_a_question_for_details_asks_for_an_answer_not_whether_it_solved_anything(desk):
    client = await signed_in(desk, "dan@example.com", name="Dan")
    opened = await open_in_portal(client, subject="Hmm", body="Something is off.", category="")
    concern_id = concern_id_of(opened)
    await desk.wait_for(concern_id, lambda c: c.step == "ask_details")
    text = await page_text(client, concern_id, until=lambda t: "few more details" in t)
    assert "Customer Care asked you" in text and "What exactly happened" in text
    assert "Write your answer below" in text and "Answer our question" in text
    assert SOLVED_QUESTION not in text
    assert "We are waiting for your answer" in text
    assert_portal_words(text)


async def test_the_portal_says_when_to_expect_an_answer_until_the_desk_has_answered(desk):
    agent = make_agent(desk)
    client = await signed_in(desk, "alice@example.com", name="Alice")
    opened = await open_in_portal(client, subject="Invoice is wrong", body="The amount is wrong.",
                                  category="billing")
    concern_id = concern_id_of(opened)
    await desk.wait_for(concern_id, lambda c: c.step == "level1")
    text = await page_text(client, concern_id, until=lambda t: "We received your request" in t)
    promise = re.search(r"We will answer you (.+?), here and by e-mail\.", text)
    assert promise, text
    assert re.fullmatch(r"within \d+ (minutes|hours)|(today|tomorrow) by \d\d:\d\d \(Berlin time\)"
                        r"|by \w+day \d\d:\d\d \(Berlin time\)", promise.group(1)), promise.group(1)
    # The acknowledgement says the same, in its own words, without the staff's note that it was sent.
    assert f"will answer you {promise.group(1)}" in text
    assert SOLVED_QUESTION not in text
    assert_portal_words(text)
    # The JSON API tells the customer the same, while staff keep their note of what was sent.
    mine = (await client.get(f"/api/concerns/{concern_id}")).json()["timeline"]
    notice = next(t for t in mine if t["kind"] == "notice")
    assert notice["body"].startswith("Thank you for getting in touch.") and not any("Sent '" in t["body"] for t in mine)
    staff = (await desk.http.get(f"/api/concerns/{concern_id}", headers=desk.auth)).json()["timeline"]
    assert next(t for t in staff if t["kind"] == "notice")["body"] == "Sent 'acknowledge' to the customer"

    await act(desk, concern_id, "claim", agent)
    await act(desk, concern_id, "reply", agent, text="We are checking the invoice with accounting.")
    text = await page_text(client, concern_id, until=lambda t: "checking the invoice" in t)
    assert "We will answer you" not in text
    assert "Customer Care replied · Ada" in text and SOLVED_QUESTION not in text

    await act(desk, concern_id, "resolve", agent, text="The corrected invoice is in your account.")
    await desk.wait_for(concern_id, lambda c: c.status == "resolved")
    text = await page_text(client, concern_id, until=lambda t: "corrected invoice" in t)
    assert SOLVED_QUESTION in text and "Rate our service" in text
    assert "How did we do?" not in text  # the page asks for the rating itself, once

    token = await csrf_of(client, f"/portal/concerns/{concern_id}")
    rated = await client.post(f"/portal/concerns/{concern_id}/rating",
                              data={"csrf_token": token, "csat": "5", "nps": "9", "comment": ""})
    assert rated.status_code == 303
    text = await page_text(client, concern_id, until=lambda t: "Thank you for rating" in t)
    assert SOLVED_QUESTION not in text and "Rate our service" not in text
