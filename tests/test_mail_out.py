"""Outbound mail: templates, threaded messages, the outbox on both databases, delivery through a real relay."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from activities.mail_out import (
    AUTOMATED_TEMPLATES, TEMPLATES, Mailer, MailRefused, build_message, mark_failed, mark_sent, message_from_outbox,
    new_message_id, queue_mail, render_mail, reply_address, thread_headers_for,
)
from api.mail_in import parse_inbound, thread_keys
from registry.models import Concern, Customer, Interaction, OutboxMail
from registry.settings import Settings
from tests.conftest import free_port
from registry.types import utcnow

CONCERN = "CCR-7K3M9Q2X"


def threaded_reply(**overrides):
    subject, text, html = render_mail("reply", {"concern_id": CONCERN, "subject": "Printer jams",
                                                "customer_name": "Alice", "text": "Please clean the rollers."})
    values = dict(to="Alice <alice@example.com>", from_address="support@ccr.localhost", subject=subject, text=text,
                  html=html, message_id=new_message_id("ccr.localhost", CONCERN, 5),
                  in_reply_to="<second@example.com>",
                  references=["<first@example.com>", "<ccr.CCR-7K3M9Q2X.2@ccr.localhost>", "<second@example.com>"],
                  reply_to=reply_address("support@ccr.localhost", CONCERN))
    return build_message(**{**values, **overrides})


def test_message_ids_are_stable_across_retries_and_unique_per_mail():
    assert new_message_id("CCR.localhost", CONCERN, 5) == "<ccr.CCR-7K3M9Q2X.5@ccr.localhost>"
    assert new_message_id("ccr.localhost", CONCERN, 5) == new_message_id("ccr.localhost", CONCERN, 5)
    assert new_message_id("ccr.localhost", CONCERN, 6) != new_message_id("ccr.localhost", CONCERN, 5)


def test_a_reply_is_threaded_and_has_text_and_html_parts():
    msg = message_from_bytes(threaded_reply().as_bytes(), policy=policy.default)
    assert msg["Message-ID"] == "<ccr.CCR-7K3M9Q2X.5@ccr.localhost>"
    assert msg["In-Reply-To"] == "<second@example.com>"
    assert msg["References"].split() == ["<first@example.com>", "<ccr.CCR-7K3M9Q2X.2@ccr.localhost>",
                                         "<second@example.com>"]
    assert msg["Subject"] == "[CCR-7K3M9Q2X] Re: Printer jams"
    assert msg["Reply-To"].addresses[0].addr_spec == "support+CCR-7K3M9Q2X@ccr.localhost"
    assert msg["Date"] is not None
    assert msg.get_content_type() == "multipart/alternative"
    assert "Please clean the rollers." in msg.get_body(("plain",)).get_content()
    assert "<p>Please clean the rollers.</p>" in msg.get_body(("html",)).get_content()
    assert msg["Auto-Submitted"] is None


def test_only_automated_notices_say_auto_submitted():
    assert threaded_reply(automated=True)["Auto-Submitted"] == "auto-replied"
    assert {"acknowledge", "survey", "kb_answer"} <= AUTOMATED_TEMPLATES
    assert not {"reply", "question", "resolution"} & AUTOMATED_TEMPLATES


def test_the_customers_reply_to_our_mail_finds_the_concern_by_headers_and_by_address():
    ours = threaded_reply()
    answer = (f"From: alice@example.com\r\nTo: {ours['Reply-To']}\r\nSubject: Re: {ours['Subject']}\r\n"
              f"Message-ID: <third@example.com>\r\nIn-Reply-To: {ours['Message-ID']}\r\n"
              f"References: {ours['References']} {ours['Message-ID']}\r\n\r\nDone, it works.\r\n").encode()
    mail = parse_inbound(answer, max_bytes=100_000, max_attachment_bytes=10_000)
    assert thread_keys(mail)[0] == ours["Message-ID"]
    assert mail.concern_token == CONCERN
    assert mail.auto_submitted is None


def test_our_own_mail_coming_back_is_recognised_as_a_loop():
    mail = parse_inbound(threaded_reply().as_bytes(), max_bytes=100_000, max_attachment_bytes=10_000)
    assert "mail loop" in (mail.auto_submitted or "")


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_with_the_concern_tag_in_the_subject(template):
    subject, text, html = render_mail(template, {"concern_id": CONCERN, "subject": "Printer jams"})
    assert subject.startswith(f"[{CONCERN}]")
    assert CONCERN in text and CONCERN in html
    assert html.lstrip().startswith("<!doctype html>")


def test_customer_text_is_escaped_in_html_and_left_as_written_in_plain_text():
    nasty = 'My name is <script>alert("x")</script> & I "quote"\nsecond line'
    subject, text, html = render_mail("acknowledge", {"concern_id": CONCERN, "subject": "<b>Help</b>",
                                                      "customer_name": "<img src=x onerror=alert(1)>", "text": nasty})
    assert "<script>" not in html and "<img" not in html and "<b>Help</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; I &#34;quote&#34;<br>" in html
    assert "&lt;b&gt;Help&lt;/b&gt;" in html
    assert nasty in text and "<b>Help</b>" in subject


def test_a_mail_needs_no_customer_subject_and_unknown_templates_are_refused():
    subject, _, _ = render_mail("survey", {"concern_id": CONCERN})
    assert subject == f"[{CONCERN}] How did we do?"
    with pytest.raises(ValueError, match="unknown mail template"):
        render_mail("nope", {"concern_id": CONCERN})


def make_concern(sessions, concern_id: str = CONCERN) -> int:
    with sessions.begin() as session:
        customer = Customer(email=f"{concern_id.lower()}@example.com", name="Alice")
        session.add(customer)
        session.flush()
        session.add(Concern(id=concern_id, workflow_id=f"concern-{concern_id}", customer_id=customer.id,
                            subject="Printer jams", channel="email"))
        return customer.id


def queue(session, seq: int, **overrides) -> OutboxMail:
    values = dict(session=session, concern_id=CONCERN, seq=seq, to="alice@example.com",
                  subject=f"[{CONCERN}] Re: Printer jams", text="text", html="<p>html</p>",
                  message_id=new_message_id("ccr.localhost", CONCERN, seq), in_reply_to=None, references=[])
    return queue_mail(**{**values, **overrides})


def test_queue_mail_is_idempotent_on_concern_and_seq(sessions):
    make_concern(sessions)
    with sessions.begin() as session:
        first = queue(session, 3)
    with sessions.begin() as session:
        again = queue(session, 3, text="a retried activity rendered this again")
        assert again.id == first.id and again.text == "text"
    with sessions.begin() as session:
        other = queue(session, 4)
        rows = session.exec(OutboxMail.__table__.select()).all()
    assert other.id != first.id and len(rows) == 2


def test_a_queued_mail_is_sent_with_the_same_headers_on_every_retry(sessions):
    make_concern(sessions)
    with sessions.begin() as session:
        row = queue(session, 7, in_reply_to="<first@example.com>",
                    references=["<first@example.com>"])
    first = message_from_outbox(row, from_address="support@ccr.localhost")
    retry = message_from_outbox(row, from_address="support@ccr.localhost")
    assert first.as_bytes() == retry.as_bytes()
    assert first["Message-ID"] == "<ccr.CCR-7K3M9Q2X.7@ccr.localhost>"
    assert (first["In-Reply-To"], first["References"]) == ("<first@example.com>", "<first@example.com>")
    assert first["Reply-To"].addresses[0].addr_spec == "support+CCR-7K3M9Q2X@ccr.localhost"


def test_sent_and_failed_attempts_are_recorded(sessions):
    make_concern(sessions)
    with sessions.begin() as session:
        mail_id = queue(session, 1).id
    with sessions.begin() as session:
        failed = mark_failed(session=session, outbox_id=mail_id, error="451 4.3.0 relay busy\r\ntry later")
        assert (failed.status, failed.attempts, failed.last_error) == ("failed", 1, "451 4.3.0 relay busy try later")
    with sessions.begin() as session:
        sent = mark_sent(session=session, outbox_id=mail_id, relayed=True)
        assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, None) and sent.sent_at is not None
    with sessions.begin() as session:
        assert mark_sent(session=session, outbox_id=mail_id).attempts == 2
        assert mark_failed(session=session, outbox_id=mail_id, error="late").status == "sent"


def test_thread_headers_follow_both_directions_in_order(sessions):
    customer_id = make_concern(sessions)
    start = utcnow() - timedelta(hours=1)
    with sessions.begin() as session:
        assert thread_headers_for(session=session, concern_id=CONCERN) == (None, [])
        session.add(Interaction(customer_id=customer_id, concern_id=CONCERN, seq=1, kind="message", channel="email",
                                direction="in", source_key="mail:<first@example.com>", created_at=start))
        queue(session, 2).created_at = start + timedelta(minutes=1)
        session.add(Interaction(customer_id=customer_id, concern_id=CONCERN, seq=3, kind="message", channel="email",
                                direction="in", source_key="mail:<second@example.com>",
                                created_at=start + timedelta(minutes=2)))
        session.add(Interaction(customer_id=customer_id, concern_id=CONCERN, seq=4, kind="note", channel="web",
                                direction="internal", source_key="form:abc", created_at=start + timedelta(minutes=3)))
    with sessions.begin() as session:
        in_reply_to, references = thread_headers_for(session=session, concern_id=CONCERN)
        assert in_reply_to == "<second@example.com>"
        assert references == ["<first@example.com>", "<ccr.CCR-7K3M9Q2X.2@ccr.localhost>", "<second@example.com>"]
        queue(session, 5)
    with sessions.begin() as session:
        # A retry of mail 5 must not name itself as its parent.
        assert thread_headers_for(session=session, concern_id=CONCERN, before_seq=5)[0] == "<second@example.com>"
        assert thread_headers_for(session=session, concern_id=CONCERN)[0] == "<ccr.CCR-7K3M9Q2X.5@ccr.localhost>"


class RecordingRelay:
    """An SMTP relay that keeps what it is given and refuses one mailbox."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("gone@"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("busy@"):
            return "452 4.2.2 mailbox full, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 2.0.0 Ok: queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login, auth_data.password))
            return AuthResult(success=auth_data.password == b"s3cret")
        return AuthResult(success=False)


@pytest.fixture
def relay():
    recorder = RecordingRelay()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, authenticator=recorder.authenticate,
                            auth_require_tls=False)
    controller.start()
    yield recorder, Settings(relay_host="127.0.0.1", relay_port=port, relay_username="ccr", relay_password="s3cret")
    controller.stop()


async def test_mail_goes_through_the_relay_with_its_thread_headers(relay):
    recorder, settings = relay
    assert await Mailer(settings).send(threaded_reply()) is True
    [envelope] = recorder.envelopes
    assert envelope.mail_from == "support@ccr.localhost" and envelope.rcpt_tos == ["alice@example.com"]
    assert recorder.logins == [(b"ccr", b"s3cret")]
    received = message_from_bytes(envelope.original_content, policy=policy.default)
    assert received["Message-ID"] == "<ccr.CCR-7K3M9Q2X.5@ccr.localhost>"
    assert received["In-Reply-To"] == "<second@example.com>"
    assert received["References"].split()[-1] == "<second@example.com>"
    assert received["Subject"] == "[CCR-7K3M9Q2X] Re: Printer jams"
    assert {p.get_content_type() for p in received.iter_parts()} == {"text/plain", "text/html"}


async def test_a_refused_mailbox_is_final_but_a_busy_one_is_retried(relay):
    recorder, settings = relay
    with pytest.raises(MailRefused) as refused:
        await Mailer(settings).send(threaded_reply(to="gone@example.com"))
    assert refused.value.code == 550
    with pytest.raises(Exception) as busy:
        await Mailer(settings).send(threaded_reply(to="busy@example.com"))
    assert not isinstance(busy.value, MailRefused)
    assert recorder.envelopes == []


async def test_without_a_relay_the_outbox_is_the_delivery(tmp_path):
    mailer = Mailer(Settings(data_dir=tmp_path))
    assert mailer.relayed is False
    assert await mailer.send(threaded_reply()) is False
