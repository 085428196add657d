"""One staff bar on every staff page, listing exactly the pages the role matrix lets the signed-in role open."""

from __future__ import annotations

import re

from web.access import RULES
from web.nav import STAFF_PAGES
from tests.web_support import Agent, make_staff, publish_workspace_sop

BAR = re.compile(r'<nav aria-label="Main">(.*?)</nav>', re.S)
LINK = re.compile(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>')

# What each role sees today, written out so a change to the matrix shows up here as a change people notice.
EXPECTED = {
    "agent": ["Queue", "Customers", "Inbound mail", "Knowledge base", "SOPs", "Reports"],
    "lead": ["Queue", "Customers", "Inbound mail", "Knowledge base", "SOPs", "Reports", "Ideas", "Ops"],
    "admin": ["Queue", "Customers", "Inbound mail", "Knowledge base", "SOPs", "Reports", "Ideas", "Audit", "Ops"],
    "auditor": ["Queue", "Customers", "Inbound mail", "Knowledge base", "SOPs", "Reports", "Ideas", "Audit"],
    "process_owner": ["Queue", "Knowledge base", "SOPs", "Reports", "Ideas"],
    "sre": ["Queue", "Knowledge base", "SOPs", "Ops"],
}


def bar(html: str) -> list[tuple[str, str, bool]]:
    found = BAR.search(html)
    assert found, "the page has no navigation bar"
    return [(label, href, bool(current)) for href, current, label in LINK.findall(found.group(1))]


async def test_every_staff_page_has_the_bar_with_only_what_the_role_may_open(desk):
    publish_workspace_sop(desk.sessions)
    concern = await desk.intake.open(email="rita@example.com", name="Rita", subject="Router", body="Down",
                                     channel="web", category="workspace")
    pages = {"/queue": "Queue", f"/concerns/{concern.id}": "Queue", "/customers": "Customers",
             f"/customers/{concern.customer_id}": "Customers", "/customers/mail": "Inbound mail",
             "/kb/articles": "Knowledge base", "/kb/articles/new": "Knowledge base"}
    for role, expected in EXPECTED.items():
        level = 2 if role in ("agent", "lead") else None
        make_staff(desk.sessions, f"{role}.nav@desk.test", role, level=level, name=role.title())
        assert expected == [p.label for p in STAFF_PAGES if role in RULES.get(f"GET {p.href}", ())]
        async with Agent(desk, f"{role}.nav@desk.test") as who:
            for path, current in pages.items():
                page = await who.http.get(path)
                if page.status_code == 403:  # not for this role: the bar does not offer it either
                    assert current not in expected or path == "/kb/articles/new", (role, path)
                    continue
                assert page.status_code == 200, (role, path, page.status_code)
                links = bar(page.text)
                assert [label for label, _, _ in links] == expected, (role, path)
                assert [label for label, _, now in links if now] == [current], (role, path)
                assert "Sign out" in page.text and f">{role.title()}</span>" in page.text
            # Every page the bar offers opens for the role, and is marked as the current one there.
            for offered in (p for p in STAFF_PAGES if p.label in expected):
                page = await who.http.get(offered.href)
                assert page.status_code == 200, (role, offered.href, page.status_code)
                assert [label for label, _, now in bar(page.text) if now] == [offered.label], (role, offered.href)


async def test_customers_and_visitors_never_see_the_staff_bar(desk):
    login = await desk.http.get("/login")
    assert bar(login.text) == []
    portal = await desk.http.get("/portal")
    assert [label for label, _, _ in bar(portal.text)] == ["Help articles", "Sign in", "Create an account"]
