"""Staff sign-in and sign-out, with failed sign-ins rate limited per e-mail and address."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlmodel import select

from api.deps import SessionsDep
from api.security import verify_password
from registry.models import User
from registry.types import utcnow
from registry.workspace import clear_failures, leave_presence, recent_failures, record_failure
from web.csrf import verify_csrf
from web.templating import render

router = APIRouter(include_in_schema=False)

MAX_FAILURES = 5
WINDOW = timedelta(minutes=5)
PORTAL_HOME = "/portal"


def safe_next(target: str | None, default: str = "/queue") -> str:
    """A local path to go to after signing in; anything pointing off-site becomes `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def client_address(request: Request) -> str:
    """The caller's address (uvicorn resolves proxy headers when it runs behind a trusted proxy)."""
    return request.client.host if request.client else "unknown"


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
    address = client_address(request)
    with sessions.begin() as session:
        # Counted before the password is checked, so a locked-out guesser cannot even spend our CPU on Argon2.
        failures, oldest = recent_failures(session=session, email=email, ip=address, window=WINDOW)
    if failures >= MAX_FAILURES:
        wait = max(1, math.ceil(((oldest + WINDOW) - utcnow()).total_seconds())) if oldest else int(WINDOW.seconds)
        minutes = math.ceil(wait / 60)
        return _form(request, email=email, next=next, status=429, headers={"Retry-After": str(wait)},
                     error=f"Too many failed sign-ins for {email} from your address. "
                           f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.")
    with sessions.begin() as session:
        user = session.exec(select(User).where(User.email == email)).first() if email else None
        ok = verify_password(password, user.password_hash if user is not None and user.active else None)
        if not ok:
            record_failure(session=session, email=email, ip=address, window=WINDOW)
        else:
            clear_failures(session=session, email=email, ip=address)
    if not ok:
        left = MAX_FAILURES - failures - 1
        hint = "" if left > 2 else f" {left} more attempt{'s' if left != 1 else ''} before a 5-minute pause." \
            if left else " Sign-in for this e-mail from your address is now paused for 5 minutes."
        return _form(request, email=email, next=next, status=401,
                     error="The e-mail or password is not right." + hint)
    if user.role == "integration":
        return _form(request, email=email, next=next, status=403,
                     error="This account is for API tokens only; it cannot sign in to pages.")
    # A fresh session on every sign-in: nothing set before (a planted id, an old CSRF token) survives it.
    request.session.clear()
    request.session["user_id"] = user.id
    request.session["epoch"] = user.session_epoch  # a new password or a deactivation ends this session
    return RedirectResponse(safe_next(next), 303)


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request, sessions: SessionsDep):
    """End the session, for staff and customers alike."""
    user_id = request.session.get("user_id")
    was_customer = request.session.get("customer_id") and not user_id
    if user_id:
        with sessions.begin() as session:
            leave_presence(session=session, user_id=user_id)  # colleagues stop seeing a collision warning
    request.session.clear()
    return RedirectResponse(PORTAL_HOME if was_customer else "/login", 303)
