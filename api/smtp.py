"""The inbound SMTP listener: accepts mail for the support address and hands each message to intake."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from api.mail_in import InboundMail, MailRejected, parse_inbound
from registry.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What intake did with one message; the SMTP reply tells the sending server in words."""

    status: Literal["opened", "continued", "duplicate", "ignored", "stored"]
    concern_id: str | None = None
    detail: str = ""


Deliver = Callable[[bytes, InboundMail], Awaitable[DeliveryOutcome]]


class IntakeHandler:
    """aiosmtpd handler: RCPT admits only the support address (and its plus addresses), DATA parses and delivers."""

    def __init__(self, deliver: Deliver, settings: Settings, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.deliver = deliver
        self.settings = settings
        # The loop that owns the app's clients; the threaded Controller runs its own, so deliveries hop over.
        self.loop = loop
        local, _, domain = settings.support_address.lower().partition("@")
        self.local_part, self.domain = local, domain

    def accepts(self, address: str) -> bool:
        """Whether `address` is the support address or one of its plus addresses."""
        local, _, domain = address.strip().strip("<>").lower().partition("@")
        return domain == self.domain and (local == self.local_part or local.startswith(self.local_part + "+"))

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        """Refuse any recipient but ours, so the listener is never an open relay."""
        if not self.accepts(address):
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Parse the message, hand it to intake and report what happened (or 451 so the sender retries)."""
        raw = envelope.original_content or b""
        try:
            # A thread, because parsing a large message would stall every other conversation on this loop.
            mail = await asyncio.to_thread(
                parse_inbound, raw, max_bytes=self.settings.max_message_bytes,
                max_attachment_bytes=self.settings.max_attachment_bytes,
                envelope_from=envelope.mail_from, envelope_to=list(envelope.rcpt_tos))
        except MailRejected as rejected:
            return f"{rejected.code} {_one_line(rejected.reason)}"
        except Exception:
            log.exception("could not parse a message from %s", envelope.mail_from)
            return "451 4.3.0 try again later"
        try:
            outcome = await self._deliver(raw, mail)
        except Exception:
            # The sending server keeps the message and tries again; accepting it now could lose it.
            log.exception("delivery of %s from %s failed", mail.message_id, mail.from_email)
            return "451 4.3.0 try again later"
        log.info("mail %s from %s: %s %s", mail.message_id, mail.from_email, outcome.status, outcome.concern_id or "")
        return f"250 2.0.0 {_one_line(_describe(outcome))}"

    async def _deliver(self, raw: bytes, mail: InboundMail) -> DeliveryOutcome:
        if self.loop is None or self.loop is asyncio.get_running_loop():
            return await self.deliver(raw, mail)
        future = asyncio.run_coroutine_threadsafe(self.deliver(raw, mail), self.loop)
        return await asyncio.wrap_future(future)


def _describe(outcome: DeliveryOutcome) -> str:
    concern = outcome.concern_id or ""
    match outcome.status:
        case "opened":
            return f"queued as {concern}"
        case "continued":
            return f"added to {concern}"
        case "duplicate":
            return "duplicate ignored"
        case "ignored":
            return outcome.detail or "ignored"
        case _:
            return f"stored for review as {concern}" if concern else "stored for review"


def _one_line(text: str) -> str:
    """An SMTP reply line: no line breaks, and short enough for any client."""
    return " ".join(text.split())[:400]


def start_smtp(handler: IntakeHandler, host: str, port: int) -> Controller:
    """Start the listener in its own thread; it advertises and enforces the message size limit."""
    controller = Controller(handler, hostname=host, port=port, data_size_limit=handler.settings.max_message_bytes,
                            server_hostname=handler.domain or None, ident="Customer Care Registry")
    controller.start()
    return controller


def stop_smtp(controller: Controller) -> None:
    """Stop the listener, letting the conversation in progress end."""
    controller.stop()
