"""An auditor reads and filters the staff audit log in Chromium, on a laptop and on a phone, without overflow."""

from __future__ import annotations

import pytest

from api.security import create_token, update_user
from registry import audit
from tests.web_support import PASSWORD, make_staff


@pytest.mark.parametrize("width", [1366, 390])
async def test_an_auditor_filters_the_log_and_finds_each_change(desk, live_url, page, artifacts, width):
    make_staff(desk.sessions, "aud@desk.test", "auditor", name="Audrey")
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, name="Ada")
    with desk.sessions.begin() as session:
        update_user(session=session, email="ada@desk.test", role="lead", level=2, skills=["general", "billing"],
                    by="admin@desk.test")
        create_token(session=session, user=audit_user(session, "ada@desk.test"), name="webshop-integration",
                     by="admin@desk.test")
        audit.record(session=session, actor="lena@desk.test", action="concern.moved", target="concern:CCR-7K3M9Q2X",
                     detail={"from": "level1", "to": "level3", "reason": "the customer's database is corrupt"},
                     ip="203.0.113.24", user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")
    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill("aud@desk.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{live_url}/audit")
    await page.get_by_role("heading", name="Staff audit log").wait_for()

    async def fits(name: str) -> None:
        await page.screenshot(path=str(artifacts / f"audit-{name}-{width}.png"), full_page=True)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the {name} view is {overflow}px wider than the window"

    log = page.locator("table.audit-log tbody tr")
    for action in ("user.updated", "token.created", "concern.moved", "staff.sign_in"):
        await log.filter(has_text=action).first.wait_for()
    await fits("log")
    await page.get_by_label("Action").select_option("concern.moved")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**/audit?*action=concern.moved*")
    await page.wait_for_function("document.querySelectorAll('table.audit-log tbody tr').length === 1")
    row = log.first
    assert "lena@desk.test" in await row.inner_text() and "203.0.113.24" in await row.inner_text()
    await fits("filtered")
    csv_href = await page.get_by_role("link", name="Export CSV").get_attribute("href")
    assert csv_href == "/api/audit.csv?action=concern.moved"


def audit_user(session, email):
    from api.security import user_by_email

    return user_by_email(session=session, email=email)
