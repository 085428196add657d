"""Every credential form and token guessing is throttled per account and per address, atomically."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest

from api.security import hash_password
from ccr import web_server_options
from registry import customers as crm
from tests.conftest import free_port
from tests.intake_kit import csrf_of as portal_csrf
from tests.web_support import PASSWORD, csrf_of, make_staff

GUESSES = 40


@pytest.fixture
def desk(desk_on_both):
    """Counting must hold on SQLite and on PostgreSQL alike: each orders parallel writers its own way."""
    return desk_on_both


def client(desk, address: str = "10.1.1.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app, client=(address, 40000)),
                             base_url="http://desk")


async def parallel_posts(http, path: str, form: dict, count: int = GUESSES) -> list[httpx.Response]:
    return await asyncio.gather(*(http.post(path, data=form) for _ in range(count)))


def statuses(responses) -> dict[int, int]:
    found: dict[int, int] = {}
    for response in responses:
        found[response.status_code] = found.get(response.status_code, 0) + 1
    return found


async def test_parallel_staff_guesses_get_five_password_checks_and_then_a_pause(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    async with client(desk) as http:
        token = csrf_of((await http.get("/login")).text)
        responses = await parallel_posts(http, "/login", {"email": "ada@desk.test", "password": "guess",
                                                          "csrf_token": token})
        # A 401 is a password that was checked; every other guess was refused before any check.
        assert statuses(responses) == {401: 5, 429: GUESSES - 5}
        refused = next(r for r in responses if r.status_code == 429)
        assert 0 < int(refused.headers["Retry-After"]) <= 300
        assert "Too many failed sign-ins for ada@desk.test from your address. Try again in 5 minutes." in refused.text
        right = await http.post("/login", data={"email": "ada@desk.test", "password": PASSWORD, "csrf_token": token})
        assert right.status_code == 429  # even the right password waits: the guesser must not learn it is right


async def test_portal_sign_in_is_throttled_and_parallel_guesses_get_five_checks(desk):
    with desk.sessions.begin() as session:
        customer, _ = crm.find_or_create_customer(session=session, email="pat@example.com", name="Pat")
        customer.password_hash = hash_password("pats-password")
        session.add(customer)
    async with client(desk) as http:
        token = await portal_csrf(http)
        responses = await parallel_posts(http, "/portal/login", {"email": "pat@example.com", "password": "guess",
                                                                 "csrf_token": token}, count=30)
        assert statuses(responses) == {401: 5, 429: 25}
        refused = next(r for r in responses if r.status_code == 429)
        assert "Too many failed sign-ins for pat@example.com from your address" in refused.text
        assert int(refused.headers["Retry-After"]) > 0
        right = await http.post("/portal/login", data={"email": "pat@example.com", "password": "pats-password",
                                                       "csrf_token": token})
        assert right.status_code == 429
    async with client(desk, "10.9.9.9") as http:  # the customer, elsewhere, is not locked out
        token = await portal_csrf(http)
        right = await http.post("/portal/login", data={"email": "pat@example.com", "password": "pats-password",
                                                       "csrf_token": token})
        assert right.status_code == 303


async def test_one_address_guessing_many_accounts_is_paused_too(desk):
    async with client(desk) as http:
        token = csrf_of((await http.get("/login")).text)
        answers = await asyncio.gather(*(
            http.post("/login", data={"email": f"user{n}@desk.test", "password": "guess", "csrf_token": token})
            for n in range(30)))
        assert statuses(answers) == {401: 20, 429: 10}
        assert "Too many failed sign-ins from your address" in next(a for a in answers if a.status_code == 429).text


async def test_sign_up_and_reset_requests_are_throttled_per_address_and_account(desk):
    async with client(desk) as http:
        token = await portal_csrf(http, "/portal/forgot")
        first = await parallel_posts(http, "/portal/forgot", {"email": "victim@example.com", "csrf_token": token},
                                     count=10)
        assert statuses(first) == {200: 3, 429: 7}
        refused = next(r for r in first if r.status_code == 429)
        assert "Too many requests for a link to victim@example.com. Try again in 15 minutes." in refused.text, refused.text[-1500:]
        assert int(refused.headers["Retry-After"]) <= 900
        # Sign-up mails the same link, so it counts with resets.
        signup = await http.post("/portal/signup", data={"name": "V", "email": "victim@example.com",
                                                         "csrf_token": token})
        assert signup.status_code == 429
        others = await asyncio.gather(*(
            http.post("/portal/signup", data={"name": "X", "email": f"x{n}@example.com", "csrf_token": token})
            for n in range(12)))
        assert statuses(others) == {200: 7, 429: 5}  # ten requests per address, three of them spent above
        assert "requests for sign-in links from your address" in next(o for o in others if o.status_code == 429).text


async def test_guessing_api_tokens_from_one_address_is_paused(desk):
    integration = make_staff(desk.sessions, "shop@desk.test", "integration", token=True)
    async with client(desk) as http:
        answers = await asyncio.gather(*(
            http.get("/api/concerns", headers={"Authorization": f"Bearer ccr_{secrets.token_urlsafe(32)}"})
            for _ in range(30)))
        assert statuses(answers) == {401: 10, 429: 20}
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.json()["detail"].startswith("Too many requests with an unknown API token from your address")
        assert int(refused.headers["Retry-After"]) <= 300
    async with client(desk, "10.2.2.2") as http:  # the shop's own address is not affected
        bearer = {"Authorization": f"Bearer {integration['token']}"}
        for _ in range(15):  # a known token gives its attempt back, so a busy integration is never paused
            assert (await http.get("/api/concerns", headers=bearer)).status_code == 200


async def test_a_spoofed_forwarded_address_does_not_reset_the_throttle(desk):
    """Served as `ccr up` and `ccr web` serve it: X-Forwarded-For is believed only from configured proxies."""
    import uvicorn

    make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    port = free_port()
    options = {**web_server_options(desk.settings), "port": port}
    server = uvicorn.Server(uvicorn.Config(desk.app, **options, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            token = csrf_of((await http.get("/login")).text)
            codes = []
            for n in range(7):
                response = await http.post("/login", data={"email": "ada@desk.test", "password": "guess",
                                                           "csrf_token": token},
                                           headers={"X-Forwarded-For": f"203.0.113.{n}"})
                codes.append(response.status_code)
            assert codes == [401] * 5 + [429] * 2
    finally:
        server.should_exit = True
        await task


async def test_a_configured_proxy_is_believed(tmp_path, temporal_server):
    """Behind a trusted proxy each client counts on its own; the proxy's own address is never blamed."""
    from registry.db import Sessions, make_engine
    from tests.conftest import fresh_database_url, make_settings
    from web.app import create_site

    url = fresh_database_url("sqlite", tmp_path)
    settings = make_settings(tmp_path, url, temporal_server.address, trusted_proxies="127.0.0.1, 10.0.0.0/8")
    app = create_site(settings)
    engine = make_engine(url)
    make_staff(Sessions(engine), "ada@desk.test", "agent", level=1)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://desk") as http:
                token = csrf_of((await http.get("/login")).text)

                async def guess(address: str) -> int:
                    response = await http.post("/login", data={"email": "ada@desk.test", "password": "guess",
                                                               "csrf_token": token},
                                               headers={"X-Forwarded-For": address})
                    return response.status_code

                assert [await guess("198.51.100.1") for _ in range(6)] == [401] * 5 + [429]
                assert await guess("198.51.100.2") == 401  # another client behind the same proxy
    finally:
        engine.dispose()
