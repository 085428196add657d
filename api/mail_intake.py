"""E-mail in: each inbound mail opens or continues a concern; the raw message and its files are always kept."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from sqlmodel import Session, col, select
from temporalio.client import Client

from api.catalog import Catalog
from registry.logs import about_concern
from api.handover import sweeper_on
from api.intake import Intake, IntakeError
from api.mail_in import InboundMail, thread_keys
from api.smtp import DeliveryOutcome, IntakeHandler, start_smtp, stop_smtp
from registry.attachments import add_attachment, attachments_of_raw_mail, link_attachments
from registry.customers import find_customer, surviving
from registry.db import Sessions, make_engine
from registry.mailbox import RawMail, file_raw_mail, keep_raw_mail, settled_elsewhere
from registry.models import Concern, Interaction, OutboxMail
from registry.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Kept:
    """A kept raw mail and the files stored from it."""

    raw_mail_id: int
    attachments: list[dict]


@dataclass
class MailIntake:
    """Files inbound mail through the one intake path; `deliver` is the SMTP listener's callback."""

    intake: Intake

    @property
    def sessions(self) -> Sessions:
        return self.intake.sessions

    async def deliver(self, raw: bytes, mail: InboundMail) -> DeliveryOutcome:
        """Open, continue, ignore or set aside one mail; raising makes the sender retry later."""
        source_key = f"mail:{mail.message_id}"
        seen, concern_id = self._seen(source_key, mail.message_id)
        if seen:
            return await self._redelivered(raw, mail, concern_id)
        # Stored before anything else, in a thread because a message may be megabytes.
        kept = await asyncio.to_thread(self._keep, raw, mail)
        if mail.auto_submitted:
            return self._ignore(mail, kept)
        concern, why = self._thread(mail)
        try:
            outcome = await self._file(mail, kept, concern, why, source_key)
            with about_concern(outcome.concern_id):
                log.info("inbound mail %s: %s", mail.message_id, outcome.status)
            return outcome
        except IntakeError as err:
            if err.status >= 500:
                self._set_aside(kept, "received", f"not filed yet, the sender will retry: {err.detail}")
                raise
            # A refusal that a retry cannot fix: the mail stays in the mailbox for an agent.
            self._set_aside(kept, "stored", err.detail, customer_email=mail.from_email)
            return DeliveryOutcome("stored", None, err.detail)

    # ---- steps ---------------------------------------------------------------------------------

    def _seen(self, source_key: str, message_id: str) -> tuple[bool, str | None]:
        """Whether this Message-ID was filed before, and under which concern."""
        with self.sessions.begin() as session:
            row = session.exec(select(Interaction).where(Interaction.source_key == source_key)).first()
            if row is not None:
                return True, row.concern_id
            earlier = settled_elsewhere(session=session, message_id=message_id)
            return (True, earlier.concern_id) if earlier is not None else (False, None)

    async def _redelivered(self, raw: bytes, mail: InboundMail, concern_id: str | None) -> DeliveryOutcome:
        with self.sessions.begin() as session:
            row, created = keep_raw_mail(session=session, raw=raw, message_id=mail.message_id,
                                         from_email=mail.from_email, subject=mail.subject, problems=mail.problems)
            if created:  # a copy that differs (another relay's trace headers): kept, but filed as a duplicate
                file_raw_mail(session=session, raw_mail_id=row.id, status="duplicate", concern_id=concern_id,
                              detail="same Message-ID as an earlier mail")
            concern = session.get(Concern, concern_id) if concern_id else None
            unfiled = self._unfiled(session, mail.message_id, concern)
        for kept, status, interaction_id in unfiled:
            self._filed(kept, status, concern.id, interaction_id, concern.customer_id)
        if concern is not None and concern.status == "new":
            # The first delivery registered the concern but its workflow did not start; start it now.
            await self.intake.start(concern)
        return DeliveryOutcome("duplicate", concern_id, "seen before")

    @staticmethod
    def _unfiled(session: Session, message_id: str, concern: Concern | None) -> list[tuple[Kept, str, int]]:
        """Kept copies of a message that an earlier, failed try registered but did not file (and how to file them)."""
        message = session.exec(select(Interaction).where(Interaction.source_key == f"mail:{message_id}")).first()
        if concern is None or message is None:
            return []
        first = session.exec(select(Interaction.id).where(Interaction.concern_id == concern.id)
                             .order_by(Interaction.id)).first()
        status = "opened" if first == message.id else "continued"
        rows = session.exec(select(RawMail).where(RawMail.message_id == message_id, RawMail.status == "received"))
        return [(Kept(row.id, [{"id": a.id} for a in attachments_of_raw_mail(session=session, raw_mail_id=row.id)]),
                 status, message.id) for row in rows]

    def _keep(self, raw: bytes, mail: InboundMail) -> Kept:
        with self.sessions.begin() as session:
            row, created = keep_raw_mail(session=session, raw=raw, message_id=mail.message_id,
                                         from_email=mail.from_email, subject=mail.subject, problems=mail.problems)
            if created:
                files = [add_attachment(session=session, data=a.data, filename=a.filename, content_type=a.content_type,
                                        channel="email", raw_mail_id=row.id) for a in mail.attachments]
            else:  # an earlier try kept this very message; its files are already there
                files = attachments_of_raw_mail(session=session, raw_mail_id=row.id)
            return Kept(row.id, [{"id": f.id, "filename": f.filename, "size": f.size, "content_type": f.content_type}
                                 for f in files])

    def _ignore(self, mail: InboundMail, kept: Kept) -> DeliveryOutcome:
        concern, _ = self._thread(mail)
        self._set_aside(kept, "ignored", f"sent by a machine ({mail.auto_submitted}); not answered",
                        customer_email=mail.from_email, concern_id=concern.id if concern else None)
        return DeliveryOutcome("ignored", None, f"ignored: {mail.auto_submitted}")

    def _thread(self, mail: InboundMail) -> tuple[Concern | None, str]:
        """The concern this mail continues: by Message-ID references, then by concern token, never by subject."""
        keys = thread_keys(mail)
        with self.sessions.begin() as session:
            found: dict[str, str] = {}
            if keys:
                inbound = session.exec(select(Interaction.source_key, Interaction.concern_id).where(
                    col(Interaction.source_key).in_([f"mail:{k}" for k in keys]),
                    col(Interaction.concern_id).is_not(None))).all()
                found.update({key.removeprefix("mail:"): cid for key, cid in inbound})
                outbound = session.exec(select(OutboxMail.message_id, OutboxMail.concern_id).where(
                    col(OutboxMail.message_id).in_(keys), col(OutboxMail.concern_id).is_not(None))).all()
                found.update(dict(outbound))
            concern_id = next((found[k] for k in keys if k in found), None)
            how = "references"
            if concern_id is None and mail.concern_token:
                concern_id, how = mail.concern_token, "concern token"
            concern = session.get(Concern, concern_id) if concern_id else None
            if concern is None:
                return None, ""
            if not self._may_write_to(session, mail.from_email, concern):
                return None, f"named {concern.id} by {how}, which belongs to another customer"
            return concern, how

    @staticmethod
    def _may_write_to(session: Session, email: str, concern: Concern) -> bool:
        """Whether the sender is the concern's customer (after merges) or one of their organisation."""
        sender = find_customer(session=session, email=email)
        owner = surviving(session=session, customer_id=concern.customer_id)
        if sender is None or owner is None:
            return False
        return sender.id == owner.id or (owner.organisation_id is not None
                                         and sender.organisation_id == owner.organisation_id)

    async def _file(self, mail: InboundMail, kept: Kept, concern: Concern | None, why: str,
                    source_key: str) -> DeliveryOutcome:
        text = _stored_text(mail)
        meta = {"message_id": mail.message_id, "raw_mail_id": kept.raw_mail_id, "from": mail.from_email,
                "subject": mail.subject, "attachments": kept.attachments, "problems": mail.problems,
                "rejected_attachments": [list(r) for r in mail.rejected_attachments], "quoted_only": not mail.text}
        if why and concern is None:
            meta["problems"] = [*mail.problems, f"the mail {why}; filed as a new concern"]
        if concern is not None and concern.status != "closed":
            try:
                row, _ = await self.intake.message(concern_id=concern.id, text=text, channel="email",
                                                   author=mail.from_name or mail.from_email, source_key=source_key,
                                                   meta={**meta, "threaded_by": why},
                                                   intent="human" if asks_for_person(mail.text) else "message")
                self._filed(kept, "continued", concern.id, row.id, row.customer_id)
                return DeliveryOutcome("continued", concern.id)
            except IntakeError as err:
                if err.status != 409:
                    raise
                # Closed since we looked: the mail becomes a new concern, as below.
        follows = concern.id if concern is not None else None
        if follows:
            text = f"{text}\n\n(Follow-up to the closed concern {follows}: {concern.subject})"
            meta["follows"] = follows
        if asks_for_person(mail.text):
            meta["intent"] = "human"  # the workflow goes straight to the SOP's first person, past the automation
        opened = await self.intake.open(email=mail.from_email, name=mail.from_name,
                                        subject=mail.subject or "(no subject)",
                                        body=text, channel="email", source_key=source_key, meta=meta)
        with self.sessions.begin() as session:
            first = session.exec(select(Interaction).where(Interaction.source_key == source_key)).first()
        self._filed(kept, "opened", opened.id, first.id if first else None, opened.customer_id)
        return DeliveryOutcome("opened", opened.id)

    def _filed(self, kept: Kept, status: str, concern_id: str, interaction_id: int | None, customer_id: int) -> None:
        with self.sessions.begin() as session:
            link_attachments(session=session, ids=[a["id"] for a in kept.attachments], customer_id=customer_id,
                             concern_id=concern_id, interaction_id=interaction_id)
            file_raw_mail(session=session, raw_mail_id=kept.raw_mail_id, status=status, customer_id=customer_id,
                          concern_id=concern_id, interaction_id=interaction_id)

    def _set_aside(self, kept: Kept, status: str, detail: str, *, customer_email: str | None = None,
                   concern_id: str | None = None) -> None:
        with self.sessions.begin() as session:
            customer = find_customer(session=session, email=customer_email) if customer_email else None
            file_raw_mail(session=session, raw_mail_id=kept.raw_mail_id, status=status, detail=detail,
                          customer_id=customer.id if customer else None, concern_id=concern_id)


# Ways customers ask for a person, in English and German; matched in the new text only, never in quoted history.
_PERSON = re.compile(
    r"\b(?:(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|some\s*one\s*|somebody\s*)?(?:real\s+|actual\s+|live\s+)?"
    r"(?:person|human|agent|someone|somebody|representative|people)"
    r"|(?:agent|human|person|operator)\s*,?\s*please|(?:a\s+)?real\s+(?:person|human)|human\s+being"
    r"|(?:mit\s+)?(?:einem|einer)\s+(?:echten\s+|richtigen\s+)?(?:menschen|person|mitarbeiter(?:in)?)\s+"
    r"(?:sprechen|reden|telefonieren)"
    r"|(?:echten|richtigen)\s+(?:menschen|mitarbeiter(?:in)?)|(?:pers[öo]nliche[nr]?\s+)?ansprechpartner(?:in)?"
    r"|mitarbeiter(?:in)?\s+bitte)\b",
    re.IGNORECASE,
)


def asks_for_person(text: str) -> bool:
    """Whether a customer's words ask for a person rather than automation ("talk to a person", "mit einem Menschen sprechen")."""
    return _PERSON.search(text or "") is not None


def _stored_text(mail: InboundMail) -> str:
    """The new text; a mail with only quoted history keeps that history, so nothing the customer sent is lost."""
    if mail.text.strip():
        return mail.text
    if mail.full_text.strip():
        return mail.full_text.strip()
    return "(no text; see the attachments)" if mail.attachments else "(the message had no text)"


async def start_listener(settings: Settings, *, client: Client | None = None, sessions: Sessions | None = None,
                         loop: asyncio.AbstractEventLoop | None = None, intake: Intake | None = None,
                         on_opened: Callable[[str], None] | None = None) -> Controller:
    """Start the inbound SMTP listener with mail intake on this loop's clients; `stop_smtp` (or `.stop()`) ends it.

    `on_opened` counts the concerns it opens where this process exports metrics (`ccr up` passes the web app's)."""
    if intake is None:
        from workflows.client import make_client

        if sessions is None:
            sessions = Sessions(make_engine(settings.resolved_database_url))
        intake = Intake(sessions=sessions, client=client or await make_client(settings), settings=settings,
                        catalog=Catalog.load(), on_opened=on_opened)
    handler = IntakeHandler(MailIntake(intake).deliver, settings, loop=loop or asyncio.get_running_loop())
    # Controller.start blocks until the listener answers; a thread keeps this loop serving meanwhile.
    controller = await asyncio.to_thread(start_smtp, handler, settings.smtp_host, settings.smtp_port)
    log.info("SMTP intake listening on %s:%s for %s", settings.smtp_host, settings.smtp_port, settings.support_address)
    return controller


async def serve_smtp(settings: Settings, *, intake: Intake | None = None) -> None:
    """Run the inbound SMTP listener on `settings.smtp_host:smtp_port` until cancelled (`ccr smtp`)."""
    engine = None
    if intake is None:
        from workflows.client import make_client

        engine = make_engine(settings.resolved_database_url)
        intake = Intake(sessions=Sessions(engine), client=await make_client(settings), settings=settings,
                        catalog=Catalog.load())
    controller = await start_listener(settings, intake=intake)
    sweeper = sweeper_on(intake.client, intake.sessions, settings, intake.catalog)
    intake.on_pending = intake.handover.on_pending = sweeper.wake
    try:
        await sweeper.run()
    finally:
        await asyncio.to_thread(stop_smtp, controller)
        if engine is not None:
            engine.dispose()
