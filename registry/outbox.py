"""Reads of the outbox for staff: every mail sent to customers, what became of it, and which carry a sign-in link."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from registry.models import OutboxMail

# A mail with one of these carries a link that signs the customer in (sign-up, reset, the e-level's reset).
CREDENTIAL_MARK = "/portal/reset/"


def carries_sign_in_link(mail: OutboxMail) -> bool:
    """Whether the mail holds a link that lets its reader choose the customer's password."""
    return CREDENTIAL_MARK in mail.text or CREDENTIAL_MARK in mail.html


def delivery_state(mail: OutboxMail, *, relay: bool) -> tuple[str, str]:
    """What became of a mail, in words, and a short state for styling: `local`, `sent`, `queued` or `failed`.

    Without a relay (`relay` False) nothing ever picks queued mail up: the outbox itself is its delivery."""
    if mail.status == "sent":
        return "sent to the relay", "sent"
    if mail.status == "failed":
        return f"failed: {mail.last_error or 'no reason given'}", "failed"
    if mail.status == "local" or not relay:
        return "kept in the local outbox (no relay is configured)", "local"
    return "queued for the relay", "queued"


def list_outbox(*, session: Session, recipient: str = "", limit: int = 100, before: int | None = None
                ) -> list[OutboxMail]:
    """Outbound mail, newest first, to addresses containing `recipient` (any case)."""
    statement = select(OutboxMail)
    if recipient:
        escaped = recipient.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(func.lower(OutboxMail.to_address).like(f"%{escaped}%", escape="\\"))
    if before is not None:
        statement = statement.where(col(OutboxMail.id) < before)
    return list(session.exec(statement.order_by(col(OutboxMail.id).desc()).limit(limit)))
