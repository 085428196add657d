"""The role matrix: every route of the site × every role, anonymous and customer included."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from api.security import list_tokens, revoke_token, set_active
from registry.models import Concern
from tests.web_support import as_session, make_staff, publish_workspace_sop
from web.access import ANONYMOUS, CUSTOMER, EVERY_ROLE, MACHINE_PATHS, RULES, app_routes, missing_rules, rule_key, stale_rules

# Sign-in forms answer an empty password with 401 themselves.
WRONG_PASSWORD = {"POST /login", "POST /portal/login"}
STAFF_ROLES = [("agent", 1), ("lead", 3), ("process_owner", None), ("sre", None), ("auditor", None),
               ("admin", None), ("integration", None)]


def _fill(path: str, concern_id: str, customer_id: int) -> str:
    """A concrete URL for a route: the real concern and customer where the route names them, `1` elsewhere."""
    known = {"concern_id": concern_id, "customer_id": str(customer_id), "name": "no-such-action"}
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: known.get(m.group(1), "1"), path)


def _callers(desk, customer_id: int) -> dict[str, object]:
    """For each column of the matrix, a way to make the headers of its requests (signing out ends a session,
    so the walk signs in again after it)."""
    callers = {ANONYMOUS: lambda: as_session(desk)}  # a visitor who loaded a form: a session with a CSRF token only
    for role, level in STAFF_ROLES:
        person = make_staff(desk.sessions, f"{role}@matrix.test", role, level=level, token=role == "integration")
        callers[role] = ((lambda bearer={"Authorization": f"Bearer {person['token']}"}: bearer)
                         if role == "integration" else (lambda user_id=person["id"]: as_session(desk, user_id=user_id)))
    callers[CUSTOMER] = lambda: as_session(desk, customer_id=customer_id)
    return callers


async def test_every_route_answers_every_role_as_the_matrix_says(desk):
    assert missing_rules(desk.app) == [], "add these routes to RULES in web/access.py"
    assert stale_rules(desk.app) == [], "these RULES in web/access.py name no route"
    publish_workspace_sop(desk.sessions)
    concern = await desk.intake.open(email="matrix@example.com", name="Matrix", subject="Matrix", body="Hi",
                                     channel="web", category="workspace")
    concern = await desk.wait_for(concern.id, lambda c: c.level == 1)
    make_headers = _callers(desk, concern.customer_id)
    callers = {role: make() for role, make in make_headers.items()}
    checked = 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app), base_url="http://desk") as http:
        for kind, path, methods in app_routes(desk.app):
            if kind == "mount":
                for role, headers in callers.items():
                    response = await http.get(path + "/app.css", headers=headers)
                    assert response.status_code == 200, (path, role)
                continue
            url = _fill(path, concern.id, concern.customer_id)
            for method in sorted(methods - {"HEAD"}):
                key = rule_key(method, path)
                allowed = RULES[key]
                for role, headers in callers.items():
                    http.cookies.clear()
                    response = await http.request(method, url, headers=headers, follow_redirects=False)
                    if key in ("POST /logout", "POST /portal/logout"):
                        callers[role] = make_headers[role]()
                    passed = "server-timing" in response.headers  # only requests the gate let through carry it
                    where = f"{method} {path} as {role}: {response.status_code} {response.text[:200]}"
                    if role in allowed:
                        # Past the gate the route answers for itself; it must agree with the matrix.
                        assert passed and response.status_code < 500, where
                        assert response.status_code not in (401, 403) or key in WRONG_PASSWORD, where
                    elif role == ANONYMOUS and not path.startswith(MACHINE_PATHS):
                        assert response.status_code == 302 and "/login?next=" in response.headers["location"], where
                    elif role == ANONYMOUS:
                        assert response.status_code == 401, where
                    else:
                        assert response.status_code == 403 and not passed, where
                    checked += 1
    assert checked > 400
    assert set(callers) == set(EVERY_ROLE)


async def test_a_route_without_a_rule_is_refused_to_everyone_and_named(desk):
    app = FastAPI(redoc_url=None)  # like the site, which serves Swagger UI and no ReDoc
    app.state.sessions, app.state.settings = desk.sessions, desk.settings

    @app.get("/forgotten")
    def forgotten() -> dict:
        return {"secret": True}

    from web.access import AccessMiddleware

    app.add_middleware(AccessMiddleware)
    assert missing_rules(app) == ["GET /forgotten"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        response = await http.get("/forgotten")
    assert response.status_code == 403
    assert "no access rule for GET /forgotten" in response.text


async def test_a_customer_session_cannot_reach_agent_pages(desk):
    publish_workspace_sop(desk.sessions)
    concern = await desk.intake.open(email="casey@example.com", name="Casey", subject="Mine", body="Hi",
                                     channel="web", category="workspace")
    customer = as_session(desk, customer_id=concern.customer_id)
    for path in ("/queue", f"/concerns/{concern.id}", f"/concerns/{concern.id}/presence", "/customers"):
        response = await desk.http.get(path, headers=customer)
        assert response.status_code == 403, path
        assert "This page is not available" in response.text and "customer portal" in response.text
        # The desk's internal roles are not shown to customers.
        assert not any(role in response.text for role in ("agent", "lead", "auditor", "process_owner")), path
    api = await desk.http.get(f"/api/concerns/{concern.id}/history", headers=customer)
    assert api.status_code == 403 and api.json() == {"detail": "this is not available in the customer portal"}
    staff = make_staff(desk.sessions, "sre@access.test", "sre")
    denied = await desk.http.get("/customers", headers=as_session(desk, user_id=staff["id"]))
    assert denied.status_code == 403 and "it needs one of: admin, agent, auditor, lead" in denied.text
    response = await desk.http.post(f"/concerns/{concern.id}/actions/claim", headers=customer)
    assert response.status_code == 403
    with desk.sessions.begin() as session:
        assert session.get(Concern, concern.id).assignee_id is None


async def test_anonymous_polling_is_sent_to_sign_in_as_a_whole_page(desk):
    response = await desk.http.get("/queue?scope=mine", headers={"HX-Request": "true",
                                                               "HX-Current-URL": "http://desk/queue?scope=mine"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/queue%3Fscope%3Dmine"
    response = await desk.http.get("/queue")
    assert response.status_code == 302 and response.headers["location"] == "/login?next=/queue"


async def test_a_revoked_token_or_a_deactivated_owner_is_refused(desk):
    person = make_staff(desk.sessions, "shop@desk.test", "integration", token=True)
    bearer = {"Authorization": f"Bearer {person['token']}"}
    assert (await desk.http.get("/api/concerns", headers=bearer)).status_code == 200
    with desk.sessions.begin() as session:
        set_active(session=session, email="shop@desk.test", active=False)
    refused = await desk.http.get("/api/concerns", headers=bearer)
    assert refused.status_code == 401 and refused.json()["detail"] == "the API token is unknown or revoked"
    with desk.sessions.begin() as session:
        set_active(session=session, email="shop@desk.test", active=True)
        [(token, _)] = list_tokens(session=session, email="shop@desk.test")
    assert (await desk.http.get("/api/concerns", headers=bearer)).status_code == 200
    with desk.sessions.begin() as session:
        revoke_token(session=session, token_id=token.id)
    refused = await desk.http.get("/api/concerns", headers=bearer)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
