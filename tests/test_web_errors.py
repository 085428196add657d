"""Errors are pages for browsers, in the layout of the part of the site they belong to, and JSON for programs."""

from __future__ import annotations

from tests.intake_kit import open_in_portal, signed_in
from tests.web_support import Agent, make_staff, publish_workspace_sop

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


def is_page(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    assert f"Error {status}" in response.text and '<link rel="icon"' in response.text
    return response.text


def is_json(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_an_unknown_address_is_a_page_for_browsers_and_json_for_programs(desk):
    page = is_page(await desk.http.get("/no/such/page", headers=BROWSER), 404)
    assert "There is no page at this address" in page and "Not Found" not in page
    assert 'href="/login"' in page  # nobody is signed in: the way in, not a staff bar
    assert is_json(await desk.http.get("/no/such/page"), 404) == {"detail": "Not Found"}
    assert is_json(await desk.http.get("/no/such/page", headers=JSON), 404) == {"detail": "Not Found"}
    # The API answers JSON whatever the client accepts, and so does any request with a bearer token.
    assert is_json(await desk.http.get("/api/nothing-here", headers=BROWSER), 404) == {"detail": "Not Found"}
    missing = await desk.http.get("/api/concerns/CCR-NOSUCH00", headers={**BROWSER, **desk.auth})
    assert is_json(missing, 404) == {"detail": "no concern CCR-NOSUCH00"}
    mail = await desk.http.get("/customers/mail/99999", headers={**BROWSER, **desk.auth})
    assert is_json(mail, 404) == {"detail": "no inbound mail 99999"}


async def test_another_customers_concern_and_an_unknown_article_are_portal_pages(desk):
    alice = await signed_in(desk, "alice@example.com", name="Alice")
    bob = await signed_in(desk, "bob@example.com", name="Bob")
    opened = await open_in_portal(bob, subject="Bob's salary slip", body="Private")
    bobs = opened.headers["location"].rsplit("/", 1)[-1]

    page = is_page(await alice.get(f"/portal/concerns/{bobs}", headers=BROWSER), 404)
    assert f"no concern {bobs}" in page and "salary" not in page
    assert 'class="brand" href="/portal"' in page and 'href="/portal/concerns"' in page  # the portal's layout
    assert "Sign out" in page and ">Alice<" in page
    assert 'href="/queue"' not in page
    assert is_json(await alice.get(f"/portal/concerns/{bobs}", headers=JSON), 404) == {"detail": f"no concern {bobs}"}

    article = is_page(await desk.http.get("/portal/kb/99999", headers=BROWSER), 404)
    assert "no such help article" in article and 'href="/portal/kb"' in article
    # A customer who tries the agent workspace is sent back to the portal, in the portal's layout.
    refused = is_page(await alice.get("/queue", headers=BROWSER), 403)
    assert "Go to the customer portal" in refused and 'class="brand" href="/portal"' in refused


async def test_staff_error_pages_carry_the_staff_bar(desk):
    publish_workspace_sop(desk.sessions)
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "sam@desk.test", "sre", name="Sam")
    async with Agent(desk, "ada@desk.test") as ada:
        page = is_page(await ada.http.get("/customers/mail/99999", headers=BROWSER), 404)
        assert "no inbound mail 99999" in page
        assert '<nav aria-label="Main">' in page and 'href="/queue"' in page and 'href="/customers"' in page
        assert 'aria-current="page">Inbound mail' in page
        assert is_json(await ada.http.get("/customers/mail/99999", headers=JSON), 404) == {
            "detail": "no inbound mail 99999"}
        # The page for a concern that does not exist is the workspace's own, with the same bar.
        missing = await ada.http.get("/concerns/CCR-NOSUCH00", headers=BROWSER)
        assert missing.status_code == 404 and 'aria-current="page">Queue' in missing.text
    async with Agent(desk, "sam@desk.test") as sam:
        refused = is_page(await sam.http.get("/customers", headers=BROWSER), 403)
        assert "it needs one of: admin, agent, auditor, lead" in refused
        assert 'href="/customers"' not in refused  # the bar offers only what an SRE may open
        assert is_json(await sam.http.get("/customers", headers=JSON), 403)["detail"].startswith("this is not open")


async def test_an_address_that_does_not_parse_is_a_page_in_the_browser(desk):
    text = is_page(await desk.http.get("/portal/kb/not-a-number", headers=BROWSER), 422)
    assert "article_id" in text and "Something was missing or not right" in text and 'href="/portal/kb"' in text
    as_json = await desk.http.get("/portal/kb/not-a-number")
    assert is_json(as_json, 422)["detail"][0]["loc"] == ["path", "article_id"]
