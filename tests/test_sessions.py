"""Sign-in sessions live on the server: sign-out ends every copy of the cookie, and a session has an absolute
lifetime besides its idle time, for staff and customers alike."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
from sqlalchemy import update

from registry.access import WebSession
from registry.types import utcnow
from tests.intake_kit import csrf_of as portal_csrf
from tests.intake_kit import signed_in as portal_signed_in
from tests.web_support import make_staff, sign_in


def client(desk) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app), base_url="http://desk")


def copy_of(http: httpx.AsyncClient) -> dict:
    return {"Cookie": f"ccr_session={http.cookies['ccr_session']}"}


async def test_a_copied_staff_cookie_is_refused_after_sign_out(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    async with client(desk) as http, client(desk) as thief:
        token = await sign_in(http, "ada@desk.test")
        stolen = copy_of(http)
        assert (await thief.get("/queue", headers=stolen)).status_code == 200
        assert (await http.post("/logout", data={"csrf_token": token})).status_code == 303
        refused = await thief.get("/queue", headers=stolen)
        assert refused.status_code == 302 and refused.headers["location"].startswith("/login")
        api = await thief.get("/api/concerns", headers=stolen)
        assert api.status_code == 401


async def test_a_copied_customer_cookie_is_refused_after_sign_out(desk):
    http = await portal_signed_in(desk, "pat@example.com")
    stolen = copy_of(http)
    async with client(desk) as thief:
        assert (await thief.get("/portal/concerns", headers=stolen)).status_code == 200
        token = await portal_csrf(http, "/portal/concerns")
        assert (await http.post("/portal/logout", data={"csrf_token": token})).status_code == 303
        refused = await thief.get("/portal/concerns", headers=stolen)
        assert refused.status_code == 302 and refused.headers["location"].startswith("/portal/login")
    await http.aclose()


async def test_a_session_in_use_still_ends_at_its_absolute_lifetime(desk):
    desk.settings.session_lifetime = "2s"
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    customer = await portal_signed_in(desk, "pat@example.com")
    async with client(desk) as http:
        signed_in_at = time.monotonic()
        await sign_in(http, "ada@desk.test")
        # Used all the time, so an expiry that slid with use would never come.
        deadline = signed_in_at + 15
        while (await http.get("/queue")).status_code == 200 and time.monotonic() < deadline:
            pass
        lasted = time.monotonic() - signed_in_at
        assert 2 <= lasted < 15
        assert (await http.get("/queue")).status_code == 302
    assert (await customer.get("/portal/concerns")).status_code == 302  # customers' sessions end alike
    await customer.aclose()


async def test_an_idle_session_ends_and_a_used_one_does_not(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    bob_id = make_staff(desk.sessions, "bob@desk.test", "agent", level=1)["id"]
    async with client(desk) as ada, client(desk) as bob:
        await sign_in(ada, "ada@desk.test")
        await sign_in(bob, "bob@desk.test")
        with desk.sessions.begin() as session:  # both signed in 3 hours ago; only Bob used his since
            session.execute(update(WebSession).values(created_at=utcnow() - timedelta(hours=3),
                                                      seen_at=utcnow() - timedelta(hours=3)))
        with desk.sessions.begin() as session:
            session.execute(update(WebSession).where(WebSession.user_id == bob_id).values(
                seen_at=utcnow() - timedelta(minutes=30)))
        assert (await ada.get("/queue")).status_code == 302  # idle for longer than the default 2 hours
        assert (await bob.get("/queue")).status_code == 200
