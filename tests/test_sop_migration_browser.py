"""A process owner in Chromium previews and runs a migration of running concerns, then opens a moved concern."""

from __future__ import annotations

import pytest

from tests.engine_support import open_concern
from tests.migration_kit import publish_v2
from tests.web_support import PASSWORD, make_staff


@pytest.mark.parametrize("width", [1366, 390])
async def test_a_process_owner_previews_runs_a_migration_and_opens_a_moved_concern(desk, live_url, page, artifacts,
                                                                                   width):
    make_staff(desk.sessions, "olive@desk.test", "process_owner", name="Olive")
    concern = await open_concern(desk, category="migrate", subject="Cannot sign in")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    v2 = publish_v2(desk)

    async def look(name: str) -> None:
        await page.screenshot(path=str(artifacts / f"migration-{name}-{width}.png"), full_page=True)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the {name} page is {overflow}px wider than the window"

    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill("olive@desk.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{live_url}/sops/migrate")
    await page.get_by_role("link", name="Move running concerns…").click()
    assert await page.locator("select[name='map.level1']").input_value() == "first_line"
    assert await page.locator("select[name='map.level2']").input_value() == "experts"
    await page.get_by_label("Why").fill("the new ladder")
    await page.get_by_role("button", name="Preview").click()
    preview = page.locator("section.mig-preview")
    await preview.get_by_role("link", name=concern.id).wait_for()
    assert "first_line" in await preview.locator("tbody tr").first.inner_text()
    assert (await desk.concern(concern.id)).sop_version == 1
    await look("preview")

    await page.get_by_role("button", name="Run this plan").click()
    await page.locator("#mig-progress .badge", has_text="1 moved").wait_for()  # htmx refreshes the progress
    await look("progress")

    await page.locator("#mig-progress").get_by_role("link", name=concern.id).click()
    line = page.locator("#live-flow .flow-moved")
    await line.wait_for()
    text = await line.inner_text()
    assert f"Runs on v{v2}; moved from v1" in text and "level1" in text and "first_line" in text
    assert await page.locator("#live-flow h2").get_by_role("link", name=f"migrate v{v2}").count() == 1
    await look("concern")
