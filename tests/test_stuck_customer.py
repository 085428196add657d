"""A customer can always ask for a person: the portal's button and a mail saying so, in English or German."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlmodel import select

from api.mail_intake import asks_for_person
from registry.models import Interaction, OutboxMail
from tests.intake_kit import csrf_of, customer_mail, open_in_portal, send, signed_in


def _entries(desk, concern_id: str, kind: str) -> list[Interaction]:
    with desk.sessions.begin() as session:
        return list(session.exec(select(Interaction).where(Interaction.concern_id == concern_id,
                                                           Interaction.kind == kind).order_by(Interaction.id)))


@pytest.mark.parametrize("text", [
    "Can I talk to a person please?", "I want to speak with a human.", "Agent please!", "Please let me talk to a "
    "real person", "Ich möchte mit einem Menschen sprechen.", "Bitte einen echten Mitarbeiter!",
    "Ich hätte gern einen persönlichen Ansprechpartner.",
])
def test_phrases_that_ask_for_a_person(text):
    assert asks_for_person(text)


@pytest.mark.parametrize("text", [
    "The printer jams on every page.", "The courier's agent left the parcel outside.",
    "My personal account is locked.", "Ich habe eine Frage zur Rechnung.",
])
def test_ordinary_words_do_not_ask_for_a_person(text):
    assert not asks_for_person(text)


async def test_the_portal_button_takes_the_concern_to_a_person(desk):
    client = await signed_in(desk, "pat@example.com", name="Pat")
    opened = await open_in_portal(client, subject="Printer jams", body="The printer pulls two sheets and jams.",
                                  category="")
    assert opened.status_code == 303, opened.text
    concern_id = opened.headers["location"].rsplit("/", 1)[-1].split("#")[0]
    await desk.wait_for(concern_id, lambda c: c.step == "ask_details")
    page = await client.get(f"/portal/concerns/{concern_id}")
    assert "Talk to a person" in page.text
    token = await csrf_of(client, f"/portal/concerns/{concern_id}")
    sent = await client.post(f"/portal/concerns/{concern_id}/messages", data={"csrf_token": token, "intent": "human"})
    assert sent.status_code == 303
    c = await desk.wait_for(concern_id, lambda c: c.step == "level1")
    assert c.status == "open"
    [message] = [m for m in _entries(desk, concern_id, "customer_message") if m.meta.get("intent") == "human"]
    assert message.body == "I would like to talk to a person."
    page = await client.get(f"/portal/concerns/{concern_id}")
    assert "You asked to talk to a person" in page.text and 'value="human"' not in page.text
    await client.aclose()


async def _question(desk, concern_id: str) -> OutboxMail:
    for _ in range(200):
        with desk.sessions.begin() as session:
            mail = session.exec(select(OutboxMail).where(OutboxMail.concern_id == concern_id)).first()
        if mail is not None:
            return mail
        await asyncio.sleep(0.1)
    raise AssertionError("the question never went out")


async def test_a_mail_asking_for_a_person_reaches_one_and_a_quoted_request_does_not(desk, smtp_port):
    code, reply = await asyncio.to_thread(send, smtp_port, customer_mail("The printer pulls two sheets and jams."))
    assert code == 250, reply
    concern_id = re.search(r"CCR-[0-9A-Z]{8}", reply).group(0)
    await desk.wait_for(concern_id, lambda c: c.step == "ask_details")
    question = await _question(desk, concern_id)
    german = customer_mail("Ich möchte bitte mit einem Menschen sprechen.", message_id="<second@example.com>",
                           subject=f"Re: {question.subject}", In_Reply_To=question.message_id)
    assert (await asyncio.to_thread(send, smtp_port, german))[0] == 250
    await desk.wait_for(concern_id, lambda c: c.step == "level1")
    [asked] = _entries(desk, concern_id, "person_requested")
    assert asked.body == "The customer asked for a person: to 'level1'"
    [message] = [m for m in _entries(desk, concern_id, "customer_message") if m.source_key == "mail:<second@example.com>"]
    assert message.meta["intent"] == "human"
    # An old request quoted under new text is history, not a new request.
    quoted = customer_mail("It is the one on the second floor.\n\nOn Mon, Alice wrote:\n> talk to a person",
                           message_id="<third@example.com>", subject=f"Re: {question.subject}",
                           In_Reply_To=question.message_id)
    assert (await asyncio.to_thread(send, smtp_port, quoted))[0] == 250
    [later] = [m for m in _entries(desk, concern_id, "customer_message") if m.source_key == "mail:<third@example.com>"]
    assert later.meta["intent"] == "message" and later.body == "It is the one on the second floor."


async def test_a_first_mail_asking_for_a_person_skips_the_automation(desk, smtp_port):
    first = customer_mail("Please let me talk to a person about my invoice.", message_id="<person@example.com>")
    code, reply = await asyncio.to_thread(send, smtp_port, first)
    assert code == 250, reply
    concern_id = re.search(r"CCR-[0-9A-Z]{8}", reply).group(0)
    concern = await desk.wait_for(concern_id, lambda c: c.step is not None)
    assert concern.step_type == "human"
    [asked] = _entries(desk, concern_id, "person_requested")
    assert asked.body == f"The customer asked for a person: to '{concern.step}'"
    assert not _entries(desk, concern_id, "automated")
