"""E-mail in and out through a real SMTP socket and a running desk: open, thread, duplicates, loops, bad mail."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlmodel import col, select

from api.intake import Intake
from api.mail_in import parse_inbound
from api.mail_intake import MailIntake
from registry.attachments import Attachment
from registry.handover import Handover
from registry.mailbox import RawMail
from registry.models import Concern, Customer, Interaction, OutboxMail
from tests.intake_kit import act, customer_mail, send, staff_headers
from workflows.client import make_client

GENERAL = "Do you sell gift cards? And what are your opening hours on Saturdays?"


@pytest.fixture
def desk(desk_on_both):
    """Every test here runs on SQLite and on PostgreSQL (files, raw mail and ratings use upserts that differ)."""
    return desk_on_both


async def deliver(port, msg, **kw) -> tuple[int, str]:
    return await asyncio.to_thread(send, port, msg, **kw)


def concern_in(reply: str) -> str:
    return re.search(r"CCR-[0-9A-Z]{8}", reply).group(0)


def rows(desk, model, *where):
    with desk.sessions.begin() as session:
        return list(session.exec(select(model).where(*where)))


async def outbox_for(desk, concern_id: str, count: int, timeout: float = 20) -> list[OutboxMail]:
    for _ in range(int(timeout * 10)):
        found = sorted(rows(desk, OutboxMail, OutboxMail.concern_id == concern_id), key=lambda m: m.seq)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} mails for {concern_id}, found {len(found)}")


async def test_a_mail_conversation_stays_one_threaded_concern(desk, smtp_port):
    code, reply = await deliver(smtp_port, customer_mail(GENERAL))
    assert code == 250 and reply.startswith("2.0.0 queued as CCR-")
    cid = concern_in(reply)
    concern = await desk.wait_for(cid, lambda c: c.level == 1)
    assert concern.channel == "email"
    [ack] = await outbox_for(desk, cid, 1)
    assert ack.to_address == "alice@example.com" and ack.in_reply_to == "<first@example.com>"

    # The customer answers our acknowledgement; the quoted history is not part of the stored text.
    quoted = ack.text.splitlines()[0]
    answer = customer_mail(f"Also: do you ship to Norway?\n\nOn Mon, Customer Care wrote:\n> {quoted}",
                           message_id="<second@example.com>", subject=f"Re: {ack.subject}",
                           In_Reply_To=ack.message_id, References=f"<first@example.com> {ack.message_id}")
    assert await deliver(smtp_port, answer) == (250, f"2.0.0 added to {cid}")
    [stored] = rows(desk, Interaction, Interaction.source_key == "mail:<second@example.com>")
    assert stored.concern_id == cid and stored.body == "Also: do you ship to Norway?" and stored.channel == "email"

    # An agent's reply is threaded under the customer's latest message, with the whole thread referenced.
    _, agent = staff_headers(desk)
    await act(desk, cid, "claim", agent)
    await act(desk, cid, "reply", agent, text="Yes to both: gift cards in every shop, and we ship to Norway.")
    mails = await outbox_for(desk, cid, 2)
    assert mails[-1].in_reply_to == "<second@example.com>"
    assert mails[-1].references == ["<first@example.com>", ack.message_id, "<second@example.com>"]

    # A relay delivering the first message again changes nothing.
    assert await deliver(smtp_port, customer_mail(GENERAL)) == (250, "2.0.0 duplicate ignored")
    # An out-of-office answer to our reply is kept but neither opens a concern nor reaches the workflow.
    ooo = customer_mail("I am out of office until Monday.", message_id="<ooo@example.com>",
                        subject=f"Automatic reply: {mails[-1].subject}", In_Reply_To=mails[-1].message_id,
                        Auto_Submitted="auto-replied")
    code, reply = await deliver(smtp_port, ooo)
    assert code == 250 and "ignored" in reply
    assert len(rows(desk, Concern)) == 1
    assert rows(desk, Interaction, Interaction.source_key == "mail:<ooo@example.com>") == []
    [kept] = rows(desk, RawMail, RawMail.message_id == "<ooo@example.com>")
    assert kept.status == "ignored" and kept.concern_id == cid
    messages = rows(desk, Interaction, Interaction.concern_id == cid, Interaction.kind == "customer_message")
    assert len(messages) == 2


async def test_a_malformed_message_is_kept_whole_filed_and_shown_to_agents(desk, smtp_port):
    raw = (b"From: Carol <carol@example.com>\r\nSubject: broken\r\nMessage-ID: <broken-1@example.com>\r\n"
           b"Content-Type: multipart/mixed\r\n\r\n--nobody-knows\r\nMy account is locked.\r\n")
    code, reply = await deliver(smtp_port, raw, sender="carol@example.com")
    assert code == 250
    cid = concern_in(reply)
    [kept] = rows(desk, RawMail, RawMail.message_id == "<broken-1@example.com>")
    assert kept.status == "opened" and kept.concern_id == cid
    assert any("NoBoundaryInMultipartDefect" in p for p in kept.problems)
    headers, _ = staff_headers(desk)
    mailbox = await desk.http.get("/customers/mail", headers=headers)
    assert mailbox.status_code == 200 and "NoBoundaryInMultipartDefect" in mailbox.text
    page = await desk.http.get(f"/customers/mail/{kept.id}", headers=headers)
    assert "--nobody-knows" in page.text and "My account is locked." in page.text
    eml = await desk.http.get(f"/customers/mail/{kept.id}/message.eml", headers=headers)
    assert eml.content == raw
    customer = await desk.http.get(f"/customers/{kept.customer_id}", headers=headers)
    assert "NoBoundaryInMultipartDefect" in customer.text and f"/customers/mail/{kept.id}" in customer.text


async def test_quoted_only_text_and_attachments_are_kept_and_bad_files_are_named(desk, smtp_port):
    msg = customer_mail("> the whole earlier conversation\n> nothing new", message_id="<files@example.com>",
                        subject="Screenshots")
    msg.add_attachment(b"%PDF-1.4 a scan", maintype="application", subtype="pdf", filename="scan.pdf")
    msg.add_attachment(b"MZ evil", maintype="application", subtype="octet-stream", filename="tool.exe")
    code, reply = await deliver(smtp_port, msg)
    cid = concern_in(reply)
    [first] = rows(desk, Interaction, Interaction.source_key == "mail:<files@example.com>")
    assert first.body == "> the whole earlier conversation\n> nothing new" and first.meta["quoted_only"] is True
    assert any("tool.exe" in p and "forbidden" in p for p in first.meta["problems"])
    [scan] = rows(desk, Attachment, Attachment.concern_id == cid)
    assert (scan.filename, scan.interaction_id, scan.channel) == ("scan.pdf", first.id, "email")
    headers, _ = staff_headers(desk)
    download = await desk.http.get(f"/customers/attachments/{scan.id}", headers=headers)
    assert download.content == b"%PDF-1.4 a scan" and download.headers["content-disposition"].startswith("attachment")


async def test_a_concern_token_from_a_stranger_or_plain_subject_text_never_continues_a_concern(desk, smtp_port):
    code, reply = await deliver(smtp_port, customer_mail(GENERAL))
    cid = concern_in(reply)
    stranger = customer_mail("Please send me Alice's order history.", sender="mallory@example.net",
                             message_id="<m1@example.net>", subject=f"Re: [{cid}] Printer jams")
    code, reply = await deliver(smtp_port, stranger, sender="mallory@example.net")
    assert concern_in(reply) != cid and reply.startswith("2.0.0 queued as")
    [asked] = rows(desk, Interaction, Interaction.source_key == "mail:<m1@example.net>")
    assert any("belongs to another customer" in p for p in asked.meta["problems"])
    same_subject = customer_mail("Printer still jams", message_id="<second-try@example.com>", subject="Printer jams")
    code, reply = await deliver(smtp_port, same_subject)
    assert reply.startswith("2.0.0 queued as") and concern_in(reply) != cid
    # The real customer may name the concern by its plus address alone (many clients drop In-Reply-To).
    plain = customer_mail("One more thing.", message_id="<plus@example.com>", subject="no tag here")
    assert await deliver(smtp_port, plain, rcpt=f"support+{cid}@ccr.localhost") == (250, f"2.0.0 added to {cid}")
    [alice] = rows(desk, Customer, Customer.email == "alice@example.com")
    assert len(rows(desk, Concern, Concern.customer_id == alice.id)) == 2


async def test_a_reply_to_a_closed_concern_opens_a_new_one_that_mentions_it(desk, smtp_port):
    desk.settings.reopen_window = "1s"
    code, reply = await deliver(smtp_port, customer_mail(GENERAL))
    cid = concern_in(reply)
    await desk.wait_for(cid, lambda c: c.level == 1)
    _, agent = staff_headers(desk)
    await act(desk, cid, "claim", agent)
    await act(desk, cid, "resolve", agent, text="Gift cards are sold in every shop.")
    await desk.wait_for(cid, lambda c: c.status == "closed", timeout=30)
    last = (await outbox_for(desk, cid, 1))[-1]
    late = customer_mail("And can I pay them by invoice?", message_id="<late@example.com>",
                         In_Reply_To=last.message_id)
    code, reply = await deliver(smtp_port, late)
    new_id = concern_in(reply)
    assert reply.startswith("2.0.0 queued as") and new_id != cid
    [first] = rows(desk, Interaction, Interaction.source_key == "mail:<late@example.com>")
    assert first.concern_id == new_id and first.meta["follows"] == cid and cid in first.body
    assert len(rows(desk, Interaction, Interaction.concern_id == cid, col(Interaction.kind) == "customer_message")) == 1


async def test_a_mail_whose_workflow_cannot_start_is_accepted_and_started_later(desk):
    # A namespace that does not exist: the registry write succeeds, starting the workflow fails.
    broken_client = await make_client(desk.settings.model_copy(update={"temporal_namespace": "no-such-namespace"}))
    broken = Intake(sessions=desk.sessions, client=broken_client, settings=desk.settings, catalog=desk.intake.catalog)
    msg = customer_mail(GENERAL, message_id="<retry@example.com>")
    msg.add_attachment(b"%PDF-1.4 receipt", maintype="application", subtype="pdf", filename="receipt.pdf")
    raw = msg.as_bytes()
    mail = parse_inbound(raw, max_bytes=desk.settings.max_message_bytes,
                         max_attachment_bytes=desk.settings.max_attachment_bytes)
    outcome = await MailIntake(broken).deliver(raw, mail)
    assert outcome.status == "opened"  # stored, so the sender is told 250 and does not need to retry
    [concern] = rows(desk, Concern)
    assert concern.status == "new"
    [pending] = rows(desk, Handover, Handover.concern_id == concern.id)
    assert pending.delivered_at is None and "no-such-namespace" in pending.last_error

    # A re-delivery by the sender changes nothing; the desk's own sweep starts the workflow.
    assert (await MailIntake(broken).deliver(raw, mail)).status == "duplicate"
    assert await desk.app.state.sweeper.sweep()
    concern = await desk.wait_for(concern.id, lambda c: c.status == "open")
    [kept] = rows(desk, RawMail, RawMail.message_id == "<retry@example.com>")
    assert (kept.status, kept.concern_id) == ("opened", concern.id)
    [receipt] = rows(desk, Attachment, Attachment.raw_mail_id == kept.id)
    assert receipt.concern_id == concern.id and receipt.interaction_id is not None
    assert len(rows(desk, Concern)) == 1
    [done] = rows(desk, Handover, Handover.concern_id == concern.id)
    assert done.delivered_at is not None and done.outcome == "started"