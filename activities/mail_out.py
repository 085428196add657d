"""Outbound mail: rendering from templates, threaded messages, the outbox, and delivery to the relay."""

from __future__ import annotations

import asyncio
import hashlib
import re
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from registry.models import Interaction, OutboxMail
from registry.settings import Settings
from registry.types import utcnow

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "web" / "templates" / "mail"
TEMPLATES = ("acknowledge", "reply", "question", "resolution", "survey", "kb_answer", "password_reset",
             "ask_details", "complaint_received", "product_update")
# Sent by the desk's automation rather than written by a person: marked so that autoresponders stay quiet.
AUTOMATED_TEMPLATES = frozenset({"acknowledge", "survey", "kb_answer", "password_reset", "ask_details",
                                 "complaint_received", "product_update"})
# Every key a template may use; callers fill what they know, the rest stays empty.
CONTEXT_DEFAULTS: dict[str, Any] = {
    "customer_name": "", "subject": "", "text": "", "portal_url": "", "survey_url": "", "reset_url": "",
    "solved_url": "", "not_solved_url": "", "article_title": "", "article_url": "", "reset_valid_until": "",
    "agent_name": "", "answer_by": "", "portal": False,
}
# A writer's own greeting ("Hi Casey,") and sign-off ("Kind regards,\nAda"): the mail then uses theirs
# instead of adding its own, so every message has one of each.
GREETING = re.compile(r"^\s*(hello|hi|hey|dear|good (morning|afternoon|evening)|hallo|guten (tag|morgen)|bonjour)\b"
                      r"[^\n]{0,60}[,!]?\s*$", re.I)
SIGN_OFF = re.compile(
    r"^\s*((best|kind|warm|warmest)\s+regards|regards|best( wishes)?|thanks( again)?|thank you|many thanks|cheers|"
    r"sincerely|yours( truly| sincerely)?|(mit )?freundlichen grüßen|viele grüße|beste grüße|cordialement)\s*[,.!]?\s*$",
    re.I)
CONCERN_TAG = re.compile(r"\[CCR-[0-9A-Z]{8}\]")
# Keep the thread's root and its latest messages: long References headers get cut by some servers.
MAX_REFERENCES = 20


class MailRefused(Exception):
    """The relay refused the message for good (a 5xx reply): retrying will not help."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


def new_message_id(domain: str, concern_id: str, seq: int) -> str:
    """The Message-ID of a concern's mail number `seq`: the same on every retry, so a resend threads as one."""
    return f"<ccr.{concern_id}.{seq}@{domain.strip().lower()}>"


def reply_address(support_address: str, concern_id: str) -> str:
    """The plus address a customer's reply goes to, so the reply finds its concern even without headers."""
    local, _, domain = support_address.partition("@")
    return f"{local}+{concern_id}@{domain}"


def _paragraphs(text: Any) -> Markup:
    """Escaped text as HTML paragraphs, keeping the writer's line breaks."""
    blocks = [b for b in re.split(r"\n\s*\n", str(text or "").strip()) if b.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in block.split("\n")))
        for block in blocks)


def split_salutations(text: str) -> tuple[str, str, str]:
    """A message's own greeting line, its body, and its own sign-off (with the name under it), each "" if absent."""
    lines = str(text or "").strip("\n").split("\n")
    greeting = ""
    if lines and GREETING.match(lines[0]) and len(lines[0]) <= 80:
        greeting, lines = lines[0].strip(), lines[1:]
    signoff = ""
    # The sign-off is one of the last four lines, followed only by a short name or two.
    for i in range(max(0, len(lines) - 4), len(lines)):
        if SIGN_OFF.match(lines[i]) and all(len(rest.strip()) <= 60 for rest in lines[i + 1:]):
            signoff = "\n".join(line.strip() for line in lines[i:] if line.strip())
            lines = lines[:i]
            break
    return greeting, "\n".join(lines).strip("\n").strip(), signoff


def _salutations(values: dict[str, Any]) -> dict[str, Any]:
    """The greeting and sign-off of a mail: the writer's own if their text has them, else the desk's."""
    greeting, body, signoff = split_salutations(values["text"])
    name = " ".join(str(values["agent_name"] or "").split())
    default_signoff = "Kind regards,\n" + (f"{name}\nCustomer Care" if name else "Customer Care")
    return {**values, "text": body,
            "greeting": greeting or f"Hello {values['customer_name'] or 'there'},",
            "signoff": signoff or default_signoff}


def _collapse(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _lines(text: Any) -> Markup:
    """Escaped lines joined by line breaks, for a short block such as a sign-off."""
    return Markup("<br>\n").join(escape(line) for line in str(text or "").strip().split("\n"))


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["paragraphs"] = _paragraphs
    env.filters["lines"] = _lines
    return env


def render_mail(template: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, plain text and HTML of a mail template; `context` needs `concern_id`, the rest is optional."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown mail template {template!r}; known: {', '.join(TEMPLATES)}")
    values = _salutations({**CONTEXT_DEFAULTS, **context, "portal": False})
    env = _environment()
    subject = " ".join(env.get_template(f"{template}.subject.txt").render(values).split())
    if f"[{values['concern_id']}]" not in subject:
        subject = f"[{values['concern_id']}] {CONCERN_TAG.sub('', subject).strip()}"
    values["subject_line"] = subject
    text = _collapse(env.get_template(f"{template}.txt").render(values))
    html = env.get_template(f"{template}.html").render(values)
    return subject, text, html


def render_message(template: str, context: dict[str, Any]) -> str:
    """What the portal shows of a mail template: its message alone, in portal wording (buttons, not "reply to
    this e-mail"), without greeting, sign-off or footer, and never with a link that is a credential."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown mail template {template!r}; known: {', '.join(TEMPLATES)}")
    values = _salutations({**CONTEXT_DEFAULTS, **context, "reset_url": "", "portal": True})
    values["subject_line"] = ""
    page = _environment().get_template(f"{template}.txt")
    return _collapse("".join(page.blocks["body"](page.new_context(values)))).strip()


def build_message(*, to: str, from_address: str, subject: str, text: str, html: str, message_id: str,
                  in_reply_to: str | None, references: list[str], automated: bool = False,
                  reply_to: str | None = None, from_name: str = "Customer Care",
                  date: datetime | None = None) -> EmailMessage:
    """A multipart/alternative mail threaded by Message-ID, In-Reply-To and References."""
    message = EmailMessage()
    message["From"] = formataddr((from_name, from_address))
    message["To"] = to
    if reply_to:
        message["Reply-To"] = formataddr((from_name, reply_to))
    message["Subject"] = subject
    message["Date"] = format_datetime(date or utcnow())
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references)
    if automated:
        # RFC 3834: autoresponders must not answer this; Exchange honours its own header for the same.
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    # Derived from the Message-ID rather than random, so a retried send is byte for byte the same mail.
    message.set_boundary(f"=_ccr_{hashlib.sha256(message_id.encode()).hexdigest()[:32]}")
    return message


def message_from_outbox(row: OutboxMail, *, from_address: str, automated: bool = False,
                        from_name: str = "Customer Care") -> EmailMessage:
    """The message for an outbox row, dated when it was queued so every retry sends the same mail."""
    return build_message(to=row.to_address, from_address=from_address, subject=row.subject, text=row.text,
                         html=row.html, message_id=row.message_id, in_reply_to=row.in_reply_to,
                         references=list(row.references), automated=automated, from_name=from_name,
                         reply_to=reply_address(from_address, row.concern_id) if row.concern_id else None,
                         date=row.created_at)


class Mailer:
    """Hands messages to the configured SMTP relay; without a relay the outbox row is the delivery."""

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout

    @property
    def relayed(self) -> bool:
        """Whether a relay is configured (otherwise mail stays in the local outbox)."""
        return self.settings.relay_host is not None

    async def send(self, message: EmailMessage) -> bool:
        """Send `message` to the relay; True when relayed, False when kept locally (embedded mode)."""
        if not self.relayed:
            return False
        # smtplib blocks; a thread keeps the worker's event loop free for other activities.
        await asyncio.to_thread(self._send_blocking, message)
        return True

    def _send_blocking(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            with smtplib.SMTP(s.relay_host, s.relay_port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if s.relay_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if s.relay_username:
                    password = s.relay_password.get_secret_value() if s.relay_password else ""
                    smtp.login(s.relay_username, password)
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            if code < 500:
                raise  # chaining the error to itself would loop forever when Temporal reports the failure
            raise _refusal(code, reason, exc) from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            if exc.smtp_code < 500:
                raise
            raise _refusal(exc.smtp_code, exc.smtp_error, exc) from exc
        if refused:
            code, reason = next(iter(refused.values()))
            raise MailRefused(code, _text(reason))


def _text(reason: bytes | str) -> str:
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def _refusal(code: int, reason: bytes | str, exc: Exception) -> Exception:
    """A 5xx is final (MailRefused); a 4xx stays the original error so the activity retries it."""
    return MailRefused(code, _text(reason)) if code >= 500 else exc


def queue_mail(*, session: Session, concern_id: str, seq: int, to: str, subject: str, text: str, html: str,
               message_id: str, in_reply_to: str | None, references: list[str]) -> OutboxMail:
    """Put a mail in the outbox once per (concern, seq); a second call returns the row already there."""
    values = dict(concern_id=concern_id, seq=seq, to_address=to, subject=subject[:400], text=text, html=html,
                  message_id=message_id, in_reply_to=in_reply_to, references=list(references),
                  status="queued", attempts=0, created_at=utcnow())
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # ON CONFLICT DO NOTHING instead of catch-and-retry: a retried activity racing itself stays one row.
    session.execute(insert(OutboxMail.__table__).values(**values).on_conflict_do_nothing())
    row = session.exec(select(OutboxMail).where(OutboxMail.concern_id == concern_id, OutboxMail.seq == seq)).first()
    if row is None:
        raise ValueError(f"message id {message_id} is already used by another mail")
    return row


def mark_sent(*, session: Session, outbox_id: int, relayed: bool = True) -> OutboxMail:
    """Record a delivery: `sent` to the relay, or `local` when the outbox itself is the delivery."""
    row = session.get(OutboxMail, outbox_id, with_for_update=True)
    if row is None:
        raise LookupError(f"no outbox mail {outbox_id}")
    if row.status in ("sent", "local"):
        return row
    row.status = "sent" if relayed else "local"
    row.attempts += 1
    row.last_error = None
    row.sent_at = utcnow()
    session.add(row)
    session.flush()
    return row


def mark_failed(*, session: Session, outbox_id: int, error: str) -> OutboxMail:
    """Record a failed attempt and its reason, shown on the concern."""
    row = session.get(OutboxMail, outbox_id, with_for_update=True)
    if row is None:
        raise LookupError(f"no outbox mail {outbox_id}")
    if row.status in ("sent", "local"):
        return row
    row.status = "failed"
    row.attempts += 1
    row.last_error = " ".join(error.split())[:1000]
    session.add(row)
    session.flush()
    return row


def thread_headers_for(*, session: Session, concern_id: str,
                       before_seq: int | None = None) -> tuple[str | None, list[str]]:
    """In-Reply-To and References for a concern's next mail: its earlier mail both ways, oldest first."""
    outbound = select(OutboxMail.message_id, OutboxMail.created_at, OutboxMail.id).where(
        OutboxMail.concern_id == concern_id)
    inbound = select(Interaction.source_key, Interaction.created_at, Interaction.id).where(
        Interaction.concern_id == concern_id, col(Interaction.source_key).startswith("mail:"))
    if before_seq is not None:
        # On a retry the mail being sent is already in the outbox; it must not refer to itself.
        outbound = outbound.where(col(OutboxMail.seq) < before_seq)
        inbound = inbound.where((col(Interaction.seq) < before_seq) | col(Interaction.seq).is_(None))
    found = [(at, 0, rid, mid) for mid, at, rid in session.exec(outbound).all()]
    found += [(at, 1, rid, _bracketed(key.removeprefix("mail:"))) for key, at, rid in session.exec(inbound).all()]
    ids = list(dict.fromkeys(mid for *_, mid in sorted(found)))
    if not ids:
        return None, []
    references = ids if len(ids) <= MAX_REFERENCES else [ids[0], *ids[-(MAX_REFERENCES - 1):]]
    return ids[-1], references


def _bracketed(message_id: str) -> str:
    message_id = message_id.strip()
    return message_id if message_id.startswith("<") else f"<{message_id.strip('<>')}>"
