"""Staff sign-in and sign-out, with failed sign-ins rate limited per e-mail and address."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlmodel import select

from api import throttles
from api.deps import SessionsDep
from api.security import verify_password
from registry import audit
from registry.access import Refused, open_session
from registry.access import end_session as close_session
from registry.db import Sessions
from registry.models import User
from registry.workspace import leave_presence
from web.csrf import verify_csrf
from web.templating import render

router = APIRouter(include_in_schema=False)

PORTAL_HOME = "/portal"


def safe_next(target: str | None, default: str = "/queue") -> str:
    """A local path to go to after signing in; anything pointing off-site becomes `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _form(request: Request, *, email: str = "", next: str = "", error: str | None = None, status: int = 200,
          headers: dict | None = None):
    return render(request, "auth/login.html", {"email": email, "next": next, "error": error},
                  status_code=status, headers=headers)


@router.get("/")
def home(request: Request):
    """The site's front door: staff go to their queue, everyone else to the customer portal."""
    principal = request.state.principal
    staff = principal is not None and principal.kind == "user"
    return RedirectResponse("/queue" if staff else PORTAL_HOME, 303)


@router.get("/login")
def login_page(request: Request, next: str = ""):
    """The staff sign-in form."""
    principal = request.state.principal
    if principal is not None and principal.kind == "user":
        return RedirectResponse(safe_next(next), 303)
    return _form(request, next=next)


@router.post("/login", dependencies=[Depends(verify_csrf)])
def login(
    request: Request, sessions: SessionsDep, email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "", next: Annotated[str, Form(max_length=2000)] = "",
):
    """Check the password; after 5 failures in 5 minutes for one e-mail and address, refuse for a while."""
    email = email.strip().lower()
    limits = throttles.keyed(throttles.STAFF_SIGN_IN, email=email, address=throttles.client_address(request))
    # Counted before the password is checked, in one step, so parallel guesses get no more checks than the limit.
    verdict = throttles.take(sessions, limits)
    if isinstance(verdict, Refused):
        return _form(request, email=email, next=next, status=429, headers=throttles.retry_headers(verdict),
                     error=verdict.message(email=email))
    with sessions.begin() as session:
        user = session.exec(select(User).where(User.email == email)).first() if email else None
        ok = verify_password(password, user.password_hash if user is not None and user.active else None)
    if not ok:
        with sessions.begin() as session:
            audit.record(session=session, actor=email or "(no e-mail given)", action="staff.sign_in_failed",
                         target=f"user:{email}",
                         detail={"reason": "deactivated" if user is not None and not user.active else "wrong e-mail "
                                 "or password"})
        left = verdict.left
        hint = "" if left > 2 else f" {left} more attempt{'s' if left != 1 else ''} before a 5-minute pause." \
            if left else " Sign-in for this e-mail from your address is now paused for 5 minutes."
        return _form(request, email=email, next=next, status=401,
                     error="The e-mail or password is not right." + hint)
    throttles.succeeded(sessions, limits)
    if user.role == "integration":
        return _form(request, email=email, next=next, status=403,
                     error="This account is for API tokens only; it cannot sign in to pages.")
    begin_session(request, sessions, user_id=user.id, epoch=user.session_epoch, actor=user.email)
    return RedirectResponse(safe_next(next), 303)


def begin_session(request: Request, sessions: Sessions, *, user_id: int | None = None,
                  customer_id: int | None = None, epoch: int, actor: str = "", how: str = "password") -> None:
    """Sign a member of staff or a customer in: a new server-side session whose id alone goes in the cookie.

    A fresh cookie on every sign-in, so nothing set before (a planted id, an old CSRF token) survives it; the
    epoch ends the session when the password changes (or, for staff, on deactivation). The audit log records the
    sign-in (`actor`, and `how`: by password or by a mailed link) with the session it opened.
    """
    end_session(request, sessions)
    lifetime, _ = request.app.state.settings.session_limits
    with sessions.begin() as session:
        session_id = open_session(session=session, user_id=user_id, customer_id=customer_id, epoch=epoch,
                                  lifetime=lifetime)
        staff = user_id is not None
        audit.record(session=session, actor=actor, action="staff.sign_in" if staff else "customer.sign_in",
                     target=f"user:{actor or user_id}" if staff else f"customer:{actor or customer_id}",
                     detail={"how": how})
    request.session["sid"] = session_id


def end_session(request: Request, sessions: Sessions) -> None:
    """Sign out: the server forgets the session, so a copy of the cookie is refused too."""
    session_id = request.session.get("sid")
    if session_id:
        with sessions.begin() as session:
            close_session(session=session, session_id=str(session_id))
    request.session.clear()


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request, sessions: SessionsDep):
    """End the session, for staff and customers alike."""
    principal = request.state.principal
    if principal is not None and principal.kind == "user":
        with sessions.begin() as session:
            leave_presence(session=session, user_id=principal.id)  # colleagues stop seeing a collision warning
    end_session(request, sessions)
    customer = principal is not None and principal.kind == "customer"
    return RedirectResponse(PORTAL_HOME if customer else "/login", 303)
