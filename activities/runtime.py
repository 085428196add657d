"""The worker's side-effect activities: e-level automation and mail to customers."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.elevel.base import ACTIONS, AutomationContext, AutomationRequest, AutomationResult
from registry.db import Sessions
from registry.models import Concern, Customer, Interaction, OutboxMail, User
from registry.settings import Settings
from registry.telemetry import ELEVEL_OUTCOMES, MAIL
from workflows.payloads import DeliverMail, MailRequest


log = logging.getLogger(__name__)


class AutomationActivities:
    """Runs the e-level action a SOP `automate` step names."""

    def __init__(self, ctx: AutomationContext) -> None:
        self.ctx = ctx

    @activity.defn(name="run_automation")
    async def run_automation(self, request: AutomationRequest) -> AutomationResult:
        """Run one registered action and report its outcome."""
        import activities.elevel.actions  # noqa: F401  (registers the shipped actions)

        action = ACTIONS.get(request.action)
        if action is None:
            ELEVEL_OUTCOMES.labels(request.action, "error").inc()
            raise ApplicationError(f"no e-level action named {request.action!r}", type="UnknownAction",
                                   non_retryable=True)
        try:
            result = await action().run(request, self.ctx)
        except Exception:
            ELEVEL_OUTCOMES.labels(request.action, "error").inc()
            raise
        ELEVEL_OUTCOMES.labels(request.action, result.outcome).inc()
        log.info("e-level %s: %s (%s)", request.action, result.outcome, result.detail)
        return result


def _agent_name(session: Session, entry: Interaction | None) -> str:
    """The plain name of the person who wrote a message, for its sign-off; "" for the desk's automation."""
    if entry is None or entry.author_user_id is None:
        return ""
    user = session.get(User, entry.author_user_id)
    return (user.name if user else entry.author) or ""


class MailActivities:
    """Queues mail in the outbox (rendered from templates, threaded) and hands it to the relay."""

    def __init__(self, sessions: Sessions, settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    def queue(self, *, session: Session, concern_id: str, mails: list[MailRequest]) -> None:
        """Render and queue each mail of a batch, in the batch's transaction."""
        from activities.elevel.password_reset import reset_link_for, valid_until
        from activities.mail_out import new_message_id, queue_mail, render_mail, render_message, thread_headers_for
        from registry.expectations import describe_due
        from registry.types import utcnow

        concern = session.get(Concern, concern_id)
        customer = session.get(Customer, concern.customer_id) if concern else None
        if concern is None or customer is None or not customer.email:
            return
        domain = self.settings.support_address.rsplit("@", 1)[-1]
        entries = {row.seq: row for row in session.exec(select(Interaction).where(
            Interaction.concern_id == concern.id, col(Interaction.seq).in_([m.seq for m in mails])))}
        for mail in mails:
            entry = entries.get(mail.seq)
            context = {
                "concern_id": concern.id, "subject": concern.subject, "customer_name": customer.name,
                "portal_url": f"{self.settings.base_url}/portal/concerns/{concern.id}",
                "survey_url": f"{self.settings.base_url}/portal/concerns/{concern.id}#rate",
                "agent_name": _agent_name(session, entry), **mail.context,
            }
            due = context.pop("answer_due", "")
            zone = context.pop("timezone", "") or "UTC"
            if due:
                context["answer_by"] = describe_due(datetime.fromisoformat(due), utcnow(), zone)
            if mail.template == "password_reset":
                context["reset_valid_until"] = valid_until(utcnow())
            if entry is not None:
                # What the customer reads of this message in the portal (never the reset link, a credential).
                entry.meta = {**(entry.meta or {}), "template": mail.template,
                              "portal_text": render_message(mail.template, context)}
                session.add(entry)
            if mail.template == "password_reset":
                # Signed here, into the customer's mail only: the link never enters the workflow or the timeline.
                context["reset_url"] = reset_link_for(customer, settings=self.settings)
            subject, text, html = render_mail(mail.template, context)
            in_reply_to, references = thread_headers_for(session=session, concern_id=concern.id)
            queue_mail(
                session=session, concern_id=concern.id, seq=mail.seq, to=customer.email, subject=subject, text=text,
                html=html, message_id=new_message_id(domain, concern.id, mail.seq), in_reply_to=in_reply_to,
                references=references,
            )

    @activity.defn(name="deliver_mail")
    async def deliver_mail(self, request: DeliverMail) -> str:
        """Send one queued mail to the relay; failures are recorded on the outbox row and retried."""
        from activities.mail_out import Mailer, MailRefused, mark_failed, mark_sent, message_from_outbox

        with self.sessions.begin() as session:
            row = session.exec(
                select(OutboxMail).where(OutboxMail.concern_id == request.concern_id, OutboxMail.seq == request.seq)
            ).first()
            if row is None or row.status in ("sent", "local"):
                return "nothing to send"
            message = message_from_outbox(row, from_address=self.settings.support_address)
            row_id = row.id
        try:
            relayed = await Mailer(self.settings).send(message)
        except Exception as err:
            MAIL.labels("refused" if isinstance(err, MailRefused) else "failed").inc()
            log.warning("mail %s to the relay failed: %s", request.seq, err)
            with self.sessions.begin() as session:
                mark_failed(session=session, outbox_id=row_id, error=str(err))
            if isinstance(err, MailRefused):
                # The relay refused for good (no such mailbox): retrying would only repeat the refusal.
                raise ApplicationError(f"the relay refused the mail: {err}", non_retryable=True) from err
            raise
        with self.sessions.begin() as session:
            mark_sent(session=session, outbox_id=row_id, relayed=relayed)
        MAIL.labels("sent" if relayed else "local").inc()
        log.info("mail %s %s", request.seq, "sent to the relay" if relayed else "kept in the local outbox")
        return "sent" if relayed else "kept in the local outbox"
