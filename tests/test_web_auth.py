"""Staff sign-in: sessions, rate limiting, session fixation and CSRF on every state-changing form."""

from __future__ import annotations

import base64
import json
import re

import httpx
from itsdangerous import TimestampSigner

from api.security import set_active, update_user
from registry.models import User

from tests.web_support import PASSWORD, as_session, csrf_of, make_staff, publish_workspace_sop, session_cookie, \
    sign_in


def client(desk, address: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app, client=(address, 40000)),
                             base_url="http://desk")


def session_data(desk, cookie: str) -> dict:
    """What a signed session cookie holds."""
    raw = TimestampSigner(desk.settings.signing_key).unsign(cookie)
    return json.loads(base64.b64decode(raw))


def signed_in(html: str) -> str:
    """Who the page's header says is signed in, as "name (role · level)"."""
    name, role = re.search(r'class="name"[^>]*>([^<]*)</span>\s*<span class="badge role">([^<]*)</span>', html).groups()
    return f"{name} ({role})"


async def attempt(http, email: str, password: str, **extra) -> httpx.Response:
    page = await http.get("/login")
    return await http.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text),
                                           **extra})


async def test_sign_in_and_out(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    async with client(desk) as http:
        assert (await http.get("/")).headers["location"] == "/portal"
        response = await attempt(http, " ADA@desk.test ", PASSWORD)
        assert response.status_code == 303 and response.headers["location"] == "/queue"
        assert (await http.get("/")).headers["location"] == "/queue"
        page = await http.get("/queue")
        assert page.status_code == 200 and signed_in(page.text) == "Ada (agent · L1)"
        response = await http.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert response.status_code == 303 and response.headers["location"] == "/login"
        assert (await http.get("/queue")).status_code == 302


async def test_next_goes_back_to_the_page_but_never_off_site(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    async with client(desk) as http:
        for target, expected in [("/concerns/CCR-1?x=1", "/concerns/CCR-1?x=1"), ("//evil.example", "/queue"),
                                 ("https://evil.example/", "/queue"), ("/\\evil.example", "/queue")]:
            http.cookies.clear()
            response = await attempt(http, "ada@desk.test", PASSWORD, next=target)
            assert response.headers["location"] == expected


async def test_wrong_passwords_are_rate_limited_per_email_and_address(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    make_staff(desk.sessions, "bob@desk.test", "agent", level=1)
    async with client(desk, "10.0.0.1") as http:
        for n in range(5):
            response = await attempt(http, "ada@desk.test", "wrong-password")
            assert response.status_code == 401 and "not right" in response.text
            if n == 3:
                assert "1 more attempt before a 5-minute pause" in response.text
        assert "paused for 5 minutes" in response.text
        locked = await attempt(http, "ada@desk.test", PASSWORD)
        assert locked.status_code == 429
        assert "Too many failed sign-ins for ada@desk.test" in locked.text and "5 minutes" in locked.text
        assert 0 < int(locked.headers["Retry-After"]) <= 300
        assert (await attempt(http, "bob@desk.test", PASSWORD)).status_code == 303  # another account is unaffected
    async with client(desk, "10.0.0.2") as http:
        assert (await attempt(http, "ada@desk.test", PASSWORD)).status_code == 303  # and so is another address


async def test_a_session_set_before_sign_in_does_not_survive_it(desk):
    ada = make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    async with client(desk) as http:
        planted = session_cookie(desk.settings.signing_key, {"customer_id": 1, "csrf_token": "planted-token"})
        response = await http.post("/login", data={"email": "ada@desk.test", "password": PASSWORD,
                                                   "csrf_token": "planted-token"},
                                   headers={"Cookie": f"ccr_session={planted}"})
        assert response.status_code == 303
        # The cookie holds only the new session's id; who it is lives on the server.
        assert set(session_data(desk, response.cookies["ccr_session"])) == {"sid"}
        assert "Ada" in (await http.get("/queue")).text
        fresh = csrf_of((await http.get("/queue")).text)
        assert fresh != "planted-token"


async def test_integration_accounts_and_disabled_users_cannot_sign_in(desk):
    make_staff(desk.sessions, "robot@desk.test", "integration")
    async with client(desk) as http:
        response = await attempt(http, "robot@desk.test", PASSWORD)
        assert response.status_code == 403 and "API tokens only" in response.text
        response = await attempt(http, "nobody@desk.test", PASSWORD)
        assert response.status_code == 401


async def test_a_deactivated_agent_is_signed_out_at_the_next_page(desk):
    ada = make_staff(desk.sessions, "ada@desk.test", "agent", level=2, skills=("billing", "general"), name="Ada")
    async with client(desk) as http:
        await attempt(http, "ada@desk.test", PASSWORD)
        page = await http.get("/queue")
        assert page.status_code == 200 and signed_in(page.text) == "Ada (agent · L2)"
        signed_in_before = dict(http.cookies)
        with desk.sessions.begin() as session:
            set_active(session=session, email="ada@desk.test", active=False)  # what `ccr user deactivate` does
        response = await http.get("/queue")
        assert response.status_code == 302 and response.headers["location"].startswith("/login")
        response = await attempt(http, "ada@desk.test", PASSWORD)
        assert response.status_code in (401, 403) and (await http.get("/queue")).status_code == 302
    with desk.sessions.begin() as session:
        set_active(session=session, email="ada@desk.test", active=True)
    async with client(desk) as http:
        http.cookies.update(signed_in_before)  # a session from before the deactivation is not revived
        assert (await http.get("/queue")).status_code == 302
        await attempt(http, "ada@desk.test", PASSWORD)
        assert (await http.get("/queue")).status_code == 200


async def test_a_promotion_counts_from_the_next_page_and_a_new_password_from_the_next_sign_in(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    async with client(desk) as http:
        await attempt(http, "ada@desk.test", PASSWORD)
        assert signed_in((await http.get("/queue")).text) == "Ada (agent · L1)"
        with desk.sessions.begin() as session:  # what `ccr user update` does
            update_user(session=session, email="ada@desk.test", role="lead", level=2)
        assert signed_in((await http.get("/queue")).text) == "Ada (lead · L2)"
        with desk.sessions.begin() as session:  # what `ccr user password` does
            update_user(session=session, email="ada@desk.test", password="a-brand-new-secret")
        # Whoever was signed in with the old password is out, at their next page.
        response = await http.get("/queue")
        assert response.status_code == 302 and response.headers["location"].startswith("/login")
        assert (await attempt(http, "ada@desk.test", PASSWORD)).status_code == 401
        assert (await attempt(http, "ada@desk.test", "a-brand-new-secret")).status_code == 303
        assert signed_in((await http.get("/queue")).text) == "Ada (lead · L2)"


async def test_forms_without_the_csrf_token_are_refused(desk):
    publish_workspace_sop(desk.sessions)
    ada = make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    lee = make_staff(desk.sessions, "lee@desk.test", "lead", level=3)
    concern = await desk.intake.open(email="c@example.com", name="C", subject="CSRF", body="Hi", channel="web",
                                     category="workspace")
    await desk.wait_for(concern.id, lambda c: c.level == 1)
    async with client(desk) as http:
        response = await http.post("/login", data={"email": "ada@desk.test", "password": PASSWORD})
        assert response.status_code == 403
    for person, path, form in [
        (ada, f"/concerns/{concern.id}/actions/claim", {}),
        (ada, f"/concerns/{concern.id}/actions/note", {"text": "hello"}),
        (ada, f"/concerns/{concern.id}/presence", {"typing": "1"}),
        (lee, "/queue/bulk", {"ids": concern.id, "bulk_action": "priority", "priority": "high"}),
        (ada, "/logout", {}),
    ]:
        headers = as_session(desk, user_id=person["id"])
        headers.pop("X-CSRF-Token")
        response = await desk.http.post(path, data=form, headers=headers)
        assert response.status_code == 403 and "did not come from this site" in response.text, path
        response = await desk.http.post(path, data={**form, "csrf_token": "forged"}, headers=headers)
        assert response.status_code == 403, path
    current = await desk.concern(concern.id)
    assert current.assignee_id is None and current.priority == "normal"
    async with client(desk) as http:
        token = await sign_in(http, "ada@desk.test")
        response = await http.post(f"/concerns/{concern.id}/actions/claim", data={"csrf_token": token})
        assert response.status_code == 303
    assert (await desk.concern(concern.id)).assignee_id == ada["id"]
