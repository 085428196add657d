"""The `password_reset` action: e-mail the customer a signed, expiring link to choose a new password.

The link is a credential, so it never enters the workflow: the action reports that a link is to be sent
(the timeline says so, with its expiry), and the mail activity signs the link into the customer's mail
when it renders it into the outbox, which staff pages and the API never show.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import select

from activities.elevel.base import Automation, AutomationContext, AutomationRequest, AutomationResult, register
from registry.db import Sessions
from registry.models import Customer, Interaction
from registry.settings import Settings
from registry.types import utcnow

RESET_SALT = "password-reset"
DEFAULT_RESET_MAX_AGE = 3600


class ResetTokenError(ValueError):
    """A password reset link that cannot be used; the message is fit to show the customer."""


class ResetTokenExpired(ResetTokenError):
    """The link is older than it may be."""


class ResetTokenInvalid(ResetTokenError):
    """The link was not made by us, was altered, or was already used."""


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.signing_key, salt=RESET_SALT)


def _fingerprint(password_hash: str | None) -> str:
    # Binding the link to the current password makes it single-use: setting a password changes the hash.
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def make_reset_token(email: str, *, settings: Settings, password_hash: str | None = None) -> str:
    """A URL-safe token naming `email`, signed with the registry's key and stamped with the time."""
    return _serializer(settings).dumps({"email": email, "fp": _fingerprint(password_hash)})


def valid_until(issued_at: datetime, max_age: int = DEFAULT_RESET_MAX_AGE) -> str:
    """When a link issued at `issued_at` stops working, as staff and customers read it."""
    return (issued_at + timedelta(seconds=max_age)).strftime("%Y-%m-%d %H:%M UTC")


def reset_link(token: str, *, settings: Settings) -> str:
    """The portal page where the customer uses the token."""
    return f"{settings.base_url.rstrip('/')}/portal/reset/{token}"


def verify_reset_token(
    token: str, *, settings: Settings, max_age: int = DEFAULT_RESET_MAX_AGE, sessions: Sessions | None = None
) -> str:
    """The e-mail a valid token was made for; with `sessions`, also refuses a token whose password was since set."""
    try:
        claims = _serializer(settings).loads(token, max_age=max_age)
    except SignatureExpired as err:
        raise ResetTokenExpired("This password reset link has expired. Please ask for a new one.") from err
    except BadSignature as err:
        raise ResetTokenInvalid("This password reset link is not valid.") from err
    if not isinstance(claims, dict) or not isinstance(claims.get("email"), str):
        raise ResetTokenInvalid("This password reset link is not valid.")
    email = claims["email"]
    if sessions is not None:
        with sessions.begin() as session:
            customer = session.exec(select(Customer).where(Customer.email == email)).first()
        if customer is None or _fingerprint(customer.password_hash) != claims.get("fp"):
            raise ResetTokenInvalid("This password reset link was already used or is no longer valid.")
    return email


def reset_link_for(customer: Customer, *, settings: Settings) -> str:
    """A fresh link for `customer`, bound to their current password; the mail activity signs it at rendering."""
    token = make_reset_token(customer.email or "", settings=settings, password_hash=customer.password_hash)
    return reset_link(token, settings=settings)


def _customer(sessions: Sessions, customer_id: int) -> Customer | None:
    with sessions.begin() as session:
        return session.get(Customer, customer_id)


def _opened_signed_in(sessions: Sessions, concern_id: str) -> bool:
    with sessions.begin() as session:
        first = session.exec(select(Interaction).where(Interaction.concern_id == concern_id)
                             .order_by(Interaction.id)).first()
        return bool(first is not None and (first.meta or {}).get("signed_in"))


@register
class PasswordReset(Automation):
    """Sends the customer a link to choose a new password, valid for a limited time and only once."""

    name = "password_reset"

    async def run(self, request: AutomationRequest, ctx: AutomationContext) -> AutomationResult:
        """`sent` (the mail template carries the link), `not_eligible` for a signed-in customer, or `no_email`."""
        if await asyncio.to_thread(_opened_signed_in, ctx.sessions, request.concern_id):
            # Whoever wrote while signed in already has the account; a link would not help them, so a person looks.
            return AutomationResult(outcome="not_eligible",
                                    detail="the customer wrote while signed in to the portal; no reset link sent")
        customer = await asyncio.to_thread(_customer, ctx.sessions, request.customer_id)
        email = (customer.email if customer is not None else None) or request.customer_email
        if not email:
            return AutomationResult(outcome="no_email", detail="the customer has no e-mail address for a reset link")
        message = f"Sent a password-reset link (valid until {valid_until(utcnow())})"
        return AutomationResult(outcome="sent", message=message, detail=f"reset link sent to {email}")
