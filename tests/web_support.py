"""Helpers for the agent workspace tests: staff accounts, sessions as a browser holds them, a two-level SOP."""

from __future__ import annotations

import base64
import json
import re
import secrets

from itsdangerous import TimestampSigner

from api.security import create_token, create_user
from registry.access import open_session
from registry.sop_store import publish
from sops.schema import SopDefinition

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "workspace-password"

# L1 with no timer (a browser test takes longer than the ladder's 2 s), then L2, then a survey.
WORKSPACE_SOP = {
    "id": "workspace", "title": "Two levels without timers", "applies_to": {"categories": ["workspace"]},
    "sla": "slow", "start": "level1",
    "steps": {
        "level1": {"type": "human", "title": "First-level support", "level": 1, "skills": ["general"],
                   "outcomes": {"resolved": "survey", "escalated": "level2"}},
        "level2": {"type": "human", "title": "Second-level support", "level": 2,
                   "outcomes": {"resolved": "survey"}},
        "survey": {"type": "survey", "next": "close"},
        "close": {"type": "end", "result": "resolved"},
    },
}


def publish_workspace_sop(sessions) -> None:
    with sessions.begin() as session:
        publish(session=session, definition=SopDefinition.model_validate(WORKSPACE_SOP), by="tests")


def make_staff(sessions, email: str, role: str, *, level: int | None = None, skills=("general",),
               name: str = "", token: bool = False) -> dict:
    """A member of staff with PASSWORD; with `token`, also an API token."""
    with sessions.begin() as session:
        user = create_user(session=session, email=email, password=PASSWORD, role=role, name=name, level=level,
                           skills=list(skills))
        result = {"id": user.id, "email": user.email, "name": user.name, "role": role, "level": level}
        if token:
            result["token"] = create_token(session=session, user=user)
    return result


def session_cookie(secret: str, data: dict) -> str:
    """A `ccr_session` cookie exactly as Starlette's SessionMiddleware signs it."""
    payload = base64.b64encode(json.dumps(data).encode())
    return TimestampSigner(secret).sign(payload).decode()


def signed_in_cookie(desk, *, user_id: int | None = None, customer_id: int | None = None, epoch: int = 0,
                     **data) -> str:
    """A `ccr_session` cookie of a browser signed in as a member of staff or a customer (a session on the
    server, as the sign-in forms open one), or of a visitor when neither is given; `data` is added to it."""
    if user_id is not None or customer_id is not None:
        lifetime, _ = desk.settings.session_limits
        with desk.sessions.begin() as session:
            data["sid"] = open_session(session=session, user_id=user_id, customer_id=customer_id, epoch=epoch,
                                       lifetime=lifetime)
    return session_cookie(desk.settings.signing_key, data)


def as_session(desk, **data) -> dict:
    """Headers of a request from a browser signed in as `user_id` or `customer_id` (see `signed_in_cookie`),
    plus a CSRF token, also in the header."""
    token = secrets.token_urlsafe(16)
    cookie = signed_in_cookie(desk, **data, csrf_token=token)
    return {"Cookie": f"ccr_session={cookie}", "X-CSRF-Token": token}


def csrf_of(html: str) -> str:
    return CSRF.search(html).group(1)


async def sign_in(http, email: str, password: str = PASSWORD, **extra) -> str:
    """Sign in through the form like a browser; returns the new session's CSRF token."""
    http.cookies.clear()
    page = await http.get("/login")
    response = await http.post("/login", data={"email": email, "password": password,
                                               "csrf_token": csrf_of(page.text), **extra})
    assert response.status_code == 303, response.text
    return csrf_of((await http.get("/queue")).text)


class Agent:
    """A signed-in member of staff with their own cookie jar, as one browser tab."""

    def __init__(self, desk, email: str) -> None:
        import httpx

        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app), base_url="http://desk")
        self.email = email
        self.token = ""

    async def __aenter__(self) -> Agent:
        self.token = await sign_in(self.http, self.email)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.aclose()

    async def act(self, concern_id: str, name: str, htmx: bool = False, **form):
        headers = {"HX-Request": "true"} if htmx else {}
        return await self.http.post(f"/concerns/{concern_id}/actions/{name}", data={"csrf_token": self.token, **form},
                                    headers=headers)
