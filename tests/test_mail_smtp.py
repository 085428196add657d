"""Real SMTP conversations (smtplib) with the inbound listener on a free port."""

from __future__ import annotations

import asyncio
import smtplib
from email import policy
from email.message import EmailMessage

import pytest

from api.mail_in import InboundMail, thread_keys
from api.smtp import DeliveryOutcome, IntakeHandler, start_smtp, stop_smtp
from registry.settings import Settings
from tests.conftest import free_port

SUPPORT = "support@ccr.localhost"


class RecordingIntake:
    """The deliver callback's contract in miniature: remembers messages and threads, as intake will."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, InboundMail]] = []
        self.concern_by_message: dict[str, str] = {}
        self.fail_next = False
        self.loops: list[asyncio.AbstractEventLoop] = []

    async def __call__(self, raw: bytes, mail: InboundMail) -> DeliveryOutcome:
        self.calls.append((raw, mail))
        self.loops.append(asyncio.get_running_loop())
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database is down")
        if mail.message_id in self.concern_by_message:
            return DeliveryOutcome("duplicate", self.concern_by_message[mail.message_id], "seen before")
        if mail.auto_submitted:
            return DeliveryOutcome("ignored", None, "auto-reply ignored")
        known = next((self.concern_by_message[k] for k in thread_keys(mail) if k in self.concern_by_message), None)
        concern = known or mail.concern_token
        status = "continued" if concern else "opened"
        concern = concern or f"CCR-{len(self.concern_by_message) + 1:08d}"
        self.concern_by_message[mail.message_id] = concern
        return DeliveryOutcome(status, concern)


@pytest.fixture
def intake() -> RecordingIntake:
    return RecordingIntake()


@pytest.fixture
def listener(intake, tmp_path):
    settings = Settings(data_dir=tmp_path, support_address=SUPPORT, max_message_bytes=20_000,
                        max_attachment_bytes=5_000, smtp_port=free_port())
    controller = start_smtp(IntakeHandler(intake, settings), "127.0.0.1", settings.smtp_port)
    yield settings
    stop_smtp(controller)


def customer_mail(body: str = "My printer jams on every page.", *, message_id: str = "<first@example.com>",
                  subject: str = "Printer jams", **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Alice Example <alice@example.com>"
    msg["To"] = f"Customer Care <{SUPPORT}>"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def wire(msg: EmailMessage) -> bytes:
    """The message as it travels: CRLF line ends (smtplib leaves bytes as they are)."""
    return msg.as_bytes(policy=policy.SMTP)


def converse(port: int, msg: EmailMessage | bytes, *, sender: str = "alice@example.com",
             rcpt: str = SUPPORT) -> tuple[int, str]:
    """MAIL, RCPT and DATA by hand (no SIZE declared), returning the server's reply to DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo("mx.example.com")
        assert smtp.mail(sender)[0] == 250
        code, reply = smtp.rcpt(rcpt)
        if code != 250:
            return code, reply.decode()
        code, reply = smtp.data(msg if isinstance(msg, bytes) else wire(msg))
        return code, reply.decode()


def test_a_new_mail_opens_a_concern_and_the_sender_is_told_its_id(listener, intake):
    msg = customer_mail()
    code, reply = converse(listener.smtp_port, msg)
    assert (code, reply) == (250, "2.0.0 queued as CCR-00000001")
    [(raw, mail)] = intake.calls
    assert b"My printer jams on every page." in raw
    assert (mail.from_email, mail.subject, mail.text) == ("alice@example.com", "Printer jams",
                                                          "My printer jams on every page.")


def test_a_reply_by_in_reply_to_continues_the_same_concern(listener, intake):
    converse(listener.smtp_port, customer_mail())
    reply_mail = customer_mail("Still jamming after cleaning.\n\nOn Mon, Bob wrote:\n> Clean the rollers.",
                               message_id="<second@example.com>", subject="Re: Printer jams",
                               In_Reply_To="<first@example.com>", References="<first@example.com>")
    code, reply = converse(listener.smtp_port, reply_mail)
    assert (code, reply) == (250, "2.0.0 added to CCR-00000001")
    assert intake.calls[-1][1].text == "Still jamming after cleaning."


def test_a_reply_to_the_plus_address_without_headers_continues_its_concern(listener, intake):
    code, reply = converse(listener.smtp_port, customer_mail(message_id="<x1@example.com>"),
                           rcpt="support+CCR-7K3M9Q2X@ccr.localhost")
    assert (code, reply) == (250, "2.0.0 added to CCR-7K3M9Q2X")


def test_a_redelivered_message_is_reported_as_a_duplicate(listener, intake):
    msg = customer_mail()
    assert converse(listener.smtp_port, msg) == (250, "2.0.0 queued as CCR-00000001")
    assert converse(listener.smtp_port, msg) == (250, "2.0.0 duplicate ignored")
    assert len(intake.calls) == 2 and len(set(intake.concern_by_message.values())) == 1


def test_an_auto_reply_is_accepted_but_ignored(listener, intake):
    ooo = customer_mail("I am out of office until Monday.", message_id="<ooo@example.com>",
                        subject="Automatic reply: [CCR-7K3M9Q2X] Re: Printer jams", Auto_Submitted="auto-replied")
    assert converse(listener.smtp_port, ooo) == (250, "2.0.0 auto-reply ignored")
    assert intake.calls[-1][1].auto_submitted == "Auto-Submitted: auto-replied"


def test_a_bounce_with_a_null_sender_is_flagged(listener, intake):
    code, _ = converse(listener.smtp_port, customer_mail(message_id="<dsn@example.com>"), sender="")
    assert code == 250
    assert intake.calls[-1][1].auto_submitted == "empty return path (a bounce)"


def test_only_the_support_address_is_accepted(listener, intake):
    code, reply = converse(listener.smtp_port, customer_mail(), rcpt="someone@elsewhere.example")
    assert code == 550 and reply.startswith("5.1.1")
    with smtplib.SMTP("127.0.0.1", listener.smtp_port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("alice@example.com", ["sales@ccr.localhost"], wire(customer_mail()))
    assert intake.calls == []


def test_an_oversized_message_is_refused_with_552(listener, intake):
    big = customer_mail("A very long complaint about a printer that jams.\n" * 600)
    with smtplib.SMTP("127.0.0.1", listener.smtp_port, timeout=10) as smtp:
        # smtplib declares SIZE, so the listener refuses before a byte of the message is sent.
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail("alice@example.com", [SUPPORT], wire(big))
    assert refused.value.smtp_code == 552
    code, _ = converse(listener.smtp_port, big)
    assert code == 552
    assert intake.calls == []


def test_a_mail_without_a_sender_is_refused_with_550(listener, intake):
    code, reply = converse(listener.smtp_port, b"Subject: who am I\r\n\r\nhello\r\n")
    assert code == 550 and "From" in reply
    assert intake.calls == []


def test_a_failing_delivery_asks_the_sender_to_retry_and_the_retry_lands(listener, intake):
    intake.fail_next = True
    assert converse(listener.smtp_port, customer_mail()) == (451, "4.3.0 try again later")
    assert converse(listener.smtp_port, customer_mail()) == (250, "2.0.0 queued as CCR-00000001")


def test_a_malformed_message_is_accepted_and_handed_over_raw(listener, intake):
    raw = (b"From: Carol <carol@example.com>\r\nSubject: broken\r\nMessage-ID: <broken-1@example.com>\r\n"
           b"Content-Type: multipart/mixed\r\n\r\n--nobody-knows\r\nMy account is locked.\r\n")
    code, _ = converse(listener.smtp_port, raw, sender="carol@example.com")
    assert code == 250
    delivered_raw, mail = intake.calls[-1]
    assert delivered_raw == raw and mail.raw == raw
    assert "My account is locked." in mail.full_text
    assert any(p.startswith("malformed message") for p in mail.problems)


async def test_deliveries_run_on_the_loop_that_owns_the_apps_clients(intake, tmp_path):
    settings = Settings(data_dir=tmp_path, support_address=SUPPORT, smtp_port=free_port())
    app_loop = asyncio.get_running_loop()
    controller = start_smtp(IntakeHandler(intake, settings, loop=app_loop), "127.0.0.1", settings.smtp_port)
    try:
        code, _ = await asyncio.to_thread(converse, settings.smtp_port, customer_mail())
    finally:
        stop_smtp(controller)
    assert code == 250
    assert intake.loops == [app_loop]
