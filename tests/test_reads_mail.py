"""What the customer reads in mail: every customer-facing template, delivered through a real SMTP relay, has one
greeting, one sign-off, the agent's plain name, flowing paragraphs and none of the desk's internal text."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from activities.mail_out import TEMPLATES, render_mail, render_message, split_salutations
from api.security import create_user
from registry.expectations import answer_promise, describe_due
from registry.knowledge import create_article, publish_article
from registry.models import Interaction
from tests.conftest import _desk, free_port, fresh_database_url
from tests.engine_support import say
from web.canned import fill, load_canned
from workflows.payloads import AgentRef

GREETING = re.compile(r"^(hello|hi|hey|dear)\b", re.I | re.M)
SIGN_OFF = re.compile(r"^(kind regards|best regards|regards)\b", re.I | re.M)
TEMPLATE_ID = re.compile(r"\b(" + "|".join(t for t in TEMPLATES if "_" in t) + r")\b|'acknowledge'|\(acknowledge\)")
BERLIN = "Europe/Berlin"


def hard_wraps(text: str) -> list[str]:
    """Lines broken in the middle of a sentence: a line that does not end a sentence, followed by one that is
    neither a list item, a link, a signature line nor the start of a new block."""
    body = text.split("\n-- \n")[0]
    sign_off = SIGN_OFF.search(body)
    lines = body[:sign_off.start() if sign_off else None].split("\n")
    found = []
    for line, after in zip(lines, lines[1:]):
        if not line.strip() or not after.strip():
            continue
        if line.rstrip().endswith((".", ":", "?", "!", ",")):
            continue
        if after.lstrip().startswith(("-", "http", "Yes,", "No,")) or re.match(r"\s*\d+\.", after):
            continue
        found.append(f"{line!r} / {after!r}")
    return found


def assert_reads_well(text: str, *, agent: str | None = None) -> None:
    """One greeting, one sign-off, no internal text, the agent's plain name, and paragraphs that flow."""
    assert len(GREETING.findall(text)) == 1, text
    assert len(SIGN_OFF.findall(text)) == 1, text
    assert "Sent '" not in text and "Asked the customer" not in text, text
    assert not TEMPLATE_ID.search(text), text
    assert not re.search(r"\((L[123]|lead|agent|customer)\)", text), text
    assert hard_wraps(text) == [], text
    if agent:
        body = text.split("\n-- \n")[0]
        assert agent in body[SIGN_OFF.search(body).start():].split("\n")[1:3], text


# ---- the templates and texts, one by one ------------------------------------------------------------


WRITERS_OWN = "Hi Alice,\n\nPlease clean the rollers, then print a test page.\n\nBest regards,\nAda"


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_has_one_greeting_and_one_sign_off_whoever_wrote_the_text(template):
    for text in ("", "Please clean the rollers, then print a test page.", WRITERS_OWN):
        _, plain, html = render_mail(template, {"concern_id": "CCR-7K3M9Q2X", "subject": "Printer jams",
                                                "customer_name": "Alice", "text": text, "agent_name": "Ada"})
        assert_reads_well(plain)
        assert len(re.findall(r"<p>(Hello|Hi) ", html)) == 1 and len(re.findall(r"regards,", html)) == 1, html


def test_a_writers_own_greeting_and_sign_off_replace_the_desks():
    _, plain, _ = render_mail("resolution", {"concern_id": "CCR-7K3M9Q2X", "customer_name": "Alice",
                                             "text": WRITERS_OWN, "agent_name": "Ada"})
    assert plain.startswith("Hi Alice,\n\nWe believe your request is resolved:")
    assert plain.split("\n-- \n")[0].rstrip().endswith("Best regards,\nAda")
    assert split_salutations("Thanks for the photo, that helps.") == ("", "Thanks for the photo, that helps.", "")


def test_a_person_signs_with_their_name_and_the_desk_as_customer_care():
    _, plain, html = render_mail("reply", {"concern_id": "CCR-7K3M9Q2X", "text": "Done.", "agent_name": "Ada"})
    assert "Kind regards,\nAda\nCustomer Care" in plain and "Kind regards,<br>\nAda<br>\nCustomer Care" in html
    _, plain, _ = render_mail("acknowledge", {"concern_id": "CCR-7K3M9Q2X"})
    assert "Kind regards,\nCustomer Care\n" in plain


@pytest.mark.parametrize("key", sorted(load_canned()))
def test_canned_responses_flow_and_carry_one_greeting_and_one_sign_off_into_the_mail(key):
    canned = load_canned()[key]
    paragraphs = [p for p in canned.text.strip().split("\n\n")]
    assert all("\n" not in p for p in paragraphs[:-1]), canned.text  # the sign-off keeps its name on a line
    text = fill(canned.text, {"customer_name": "Alice", "concern_id": "CCR-7K3M9Q2X", "subject": "Printer jams",
                              "agent_name": "Ada"})
    for template in ("reply", "question", "resolution"):
        _, plain, _ = render_mail(template, {"concern_id": "CCR-7K3M9Q2X", "customer_name": "Alice", "text": text,
                                             "agent_name": "Ada"})
        assert_reads_well(plain, agent="Ada")


def test_the_portal_reads_a_template_in_portal_words_without_mail_wording_or_credentials():
    context = {"concern_id": "CCR-7K3M9Q2X", "subject": "Printer jams", "customer_name": "Alice",
               "text": "Use Forgot password.", "reset_url": "https://desk/portal/reset/secret",
               "reset_valid_until": "14:00 UTC"}
    for template in TEMPLATES:
        shown = render_message(template, context)
        assert not GREETING.search(shown) and not SIGN_OFF.search(shown), shown
        assert "reply to this e-mail" not in shown.lower() and 'Reply "solved"' not in shown, shown
        assert "secret" not in shown and "Did this solve it?" not in shown, shown
    assert "e-mailed you a link" in render_message("password_reset", context)


def test_the_promise_of_an_answer_reads_as_a_customer_would_say_it():
    now = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)  # a Tuesday, 10:00 in Berlin
    assert describe_due(now + timedelta(minutes=25), now, BERLIN) == "within 25 minutes"
    assert describe_due(now + timedelta(hours=1, minutes=10), now, BERLIN) == "within 2 hours"
    assert describe_due(now + timedelta(hours=5), now, BERLIN) == "today by 15:00 (Berlin time)"
    assert describe_due(now + timedelta(days=1), now, BERLIN) == "tomorrow by 10:00 (Berlin time)"
    assert describe_due(now + timedelta(days=2, hours=2), now, BERLIN) == "by Thursday 12:00 (Berlin time)"
    assert describe_due(now + timedelta(days=9), now, "UTC") == "by 10 December 09:00 (UTC)"
    clocks = [{"name": "resolution", "state": "running", "due_at": (now + timedelta(hours=1)).isoformat()},
              {"name": "first_response", "state": "running", "due_at": (now + timedelta(hours=5)).isoformat()},
              {"name": "next_response", "state": "stopped", "due_at": (now + timedelta(hours=4)).isoformat()}]
    assert answer_promise(clocks, now, BERLIN) == "today by 15:00 (Berlin time)"
    clocks[1]["state"] = "paused"
    assert answer_promise(clocks, now, BERLIN) is None


# ---- delivered through a real relay, from the running desk --------------------------------------------


class Relay:
    """An SMTP relay on a real socket that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 2.0.0 Ok: queued"


@pytest.fixture
async def relayed_desk(tmp_path, temporal_server, temporal_client):
    """The desk on SQLite with its mail handed to a real SMTP relay, and that relay."""
    relay = Relay()
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async for desk in _desk(tmp_path, fresh_database_url("sqlite", tmp_path), temporal_server, temporal_client,
                                relay_host="127.0.0.1", relay_port=port):
            yield desk, relay
    finally:
        controller.stop()


async def delivered(relay: Relay, concern_id: str, subject_part: str, timeout: float = 30):
    """The delivered mail of `concern_id` whose subject contains `subject_part`, once the relay has it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in relay.messages:
            if concern_id in message["Subject"] and subject_part in message["Subject"]:
                return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail '{subject_part}' for {concern_id}; got {[m['Subject'] for m in relay.messages]}")


def plain_and_html(message) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    return text, message.get_body(("html",)).get_content()


async def test_every_customer_facing_mail_reads_like_a_person_wrote_it(relayed_desk):
    desk, relay = relayed_desk
    from tests.intake_kit import act

    with desk.sessions.begin() as session:
        ada = create_user(session=session, email="ada@desk.test", password="staff-password", role="agent",
                          name="Ada", level=1, skills=["general", "complaints", "accounts"])
        agent = AgentRef(id=ada.id, name=ada.name, level=1, skills=ada.skills)
        article = create_article(session=session, title="How to reset your password", owner_email="o@desk.test",
                                 body="Use **Forgot password** on the sign-in page; the link works\nfor one hour.",
                                 category="account-access")
        publish_article(session=session, article_id=article.id)
    canned = load_canned()

    # General inquiry: acknowledgement, an agent's canned reply, question and resolution, then the survey.
    concern = await desk.intake.open(email="alice@example.com", name="Alice", subject="Invoice is wrong",
                                     body="The invoice shows the wrong amount.", channel="web", category="billing")
    ack = await delivered(relay, concern.id, "We have received your request")
    text, html = plain_and_html(ack)
    assert_reads_well(text)
    assert re.search(r"will answer you (today|tomorrow|by \w+) by \d\d:\d\d \(Berlin time\)|within \d+ (minutes|hours)",
                     text), text
    assert "Berlin time" in html or "within" in html
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern.id, "claim", agent)
    values = {"customer_name": "Alice", "concern_id": concern.id, "subject": concern.subject, "agent_name": "Ada"}
    await act(desk, concern.id, "reply", agent, text=fill(canned["acknowledge"].text, values))
    await act(desk, concern.id, "request_info", agent, text=fill(canned["need_details"].text, values))
    await say(desk, concern, "It started on Monday.")
    await desk.wait_for(concern.id, lambda c: c.status == "open")
    await act(desk, concern.id, "resolve", agent, text=fill(canned["resolved"].text, values))
    for part in ("Re: Invoice", "A question about", "Resolved: Invoice"):
        text, html = plain_and_html(await delivered(relay, concern.id, part))
        assert_reads_well(text, agent="Ada")
        assert "Ada (" not in html and html.count("regards,") == 1
    text, _ = plain_and_html(await delivered(relay, concern.id, "How did we do?"))
    assert_reads_well(text)
    assert "is resolved" in text and "is closed" not in text

    # A complaint: the SOP's notice in its own words, never the staff's note that it was sent.
    complaint = await desk.intake.open(email="bob@example.com", name="Bob", subject="Rude driver",
                                       body="The driver shouted at me.", channel="web", category="complaint")
    text, html = plain_and_html(await delivered(relay, complaint.id, "We are sorry"))
    assert_reads_well(text)
    assert "senior colleague will look into it personally; you will hear from us" in text

    # Account access: the help centre's answer, then the reset link once the customer says it did not help.
    access = await desk.intake.open(email="cara@example.com", name="Cara", subject="Forgot my password",
                                    body="How do I reset my password? I forgot it.", channel="email",
                                    category="account-access")
    text, _ = plain_and_html(await delivered(relay, access.id, "An answer that may help"))
    assert_reads_well(text)
    assert "the link works for one hour" in text
    await say(desk, access, "That did not work", intent="not_solved")
    text, _ = plain_and_html(await delivered(relay, access.id, "Resetting your password"))
    assert_reads_well(text)
    assert "/portal/reset/" in text

    # A question the classifier cannot place: the desk asks for details.
    vague = await desk.intake.open(email="dan@example.com", name="Dan", subject="Hmm",
                                   body="Something is off.", channel="email")
    text, _ = plain_and_html(await delivered(relay, vague.id, "We need a few more details"))
    assert_reads_well(text)

    # Staff still see, on the timeline, that and what the SOP sent.
    with desk.sessions.begin() as session:
        notice = session.exec(select(Interaction).where(Interaction.concern_id == complaint.id,
                                                        Interaction.kind == "notice")).first()
        assert notice.body == "Sent 'complaint_received' to the customer"
        assert notice.meta["template"] == "complaint_received" and "Sent '" not in notice.meta["portal_text"]
        reset = session.exec(select(Interaction).where(Interaction.concern_id == access.id,
                                                       Interaction.kind == "question")).all()[-1]
        assert "/portal/reset/" not in reset.meta["portal_text"]
