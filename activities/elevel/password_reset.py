"""The `password_reset` action: e-mail the customer a signed, expiring link to choose a new password."""

from __future__ import annotations

import asyncio
import hashlib

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import select

from activities.elevel.base import Automation, AutomationContext, AutomationRequest, AutomationResult, register
from registry.db import Sessions
from registry.models import Customer
from registry.settings import Settings

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


def _customer(sessions: Sessions, customer_id: int) -> Customer | None:
    with sessions.begin() as session:
        return session.get(Customer, customer_id)


def _validity(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@register
class PasswordReset(Automation):
    """Sends the customer a link to choose a new password, valid for a limited time and only once."""

    name = "password_reset"

    async def run(self, request: AutomationRequest, ctx: AutomationContext) -> AutomationResult:
        """`sent` with the link in the message, or `no_email` when there is nowhere to send it."""
        customer = await asyncio.to_thread(_customer, ctx.sessions, request.customer_id)
        email = (customer.email if customer is not None else None) or request.customer_email
        if not email:
            return AutomationResult(outcome="no_email", detail="the customer has no e-mail address for a reset link")
        max_age = int(ctx.options.get("reset_token_max_age", DEFAULT_RESET_MAX_AGE))
        password_hash = customer.password_hash if customer is not None else None
        token = make_reset_token(email, settings=ctx.settings, password_hash=password_hash)
        name = (customer.name if customer is not None and customer.name else request.customer_name) or "there"
        message = (
            f"Hello {name},\n\n"
            f"You can choose a new password with this link, valid for {_validity(max_age)} and usable once:\n"
            f"{reset_link(token, settings=ctx.settings)}\n\n"
            "If you did not ask for a new password, ignore this message: your password stays as it is."
        )
        return AutomationResult(outcome="sent", message=message, detail=f"reset link sent to {email}")
