"""CSRF protection for cookie sessions: a per-session token in every form and in htmx's headers."""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def csrf_token(request: Request) -> str:
    """The session's token, created on first use."""
    if "session" not in request.scope:
        return ""
    token = request.session.get(FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[FIELD] = token
    return token


async def verify_csrf(request: Request) -> None:
    """Refuse a state-changing request without the session's token (header for htmx, field for forms)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # API clients authenticate per request and carry no ambient cookie authority
    expected = request.session.get(FIELD) if "session" in request.scope else None
    sent = request.headers.get(HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = (await request.form()).get(FIELD)
    if not expected or not sent or not hmac.compare_digest(str(sent), expected):
        raise HTTPException(403, "the form has expired or did not come from this site; reload the page and try again")
