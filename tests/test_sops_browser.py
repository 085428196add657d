"""A process owner in Chromium: the SOP list, a version, a draft checked as they type, publishing with a
note, comparing versions; concerns opened before and after keep to their versions."""

from __future__ import annotations


import pytest

from tests.web_support import PASSWORD, make_staff, publish_workspace_sop


@pytest.mark.parametrize("width", [1366, 390])
async def test_a_process_owner_edits_checks_publishes_and_compares_a_sop(desk, live_url, page, artifacts, width):
    make_staff(desk.sessions, "olive@desk.test", "process_owner", name="Olive")
    make_staff(desk.sessions, "ada@desk.test", "agent", level=2, skills=("general",), name="Ada")
    publish_workspace_sop(desk.sessions)
    before = await desk.intake.open(email="ivy@example.com", name="Ivy", subject="Before the change", body="Hi",
                                    channel="web", category="workspace")
    await desk.wait_for(before.id, lambda c: c.step == "level1")

    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(f"{live_url}/login")
    await page.get_by_label("E-mail").fill("olive@desk.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    async def look(name: str) -> None:
        await page.screenshot(path=str(artifacts / f"sops-{name}-{width}.png"), full_page=True)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the {name} page is {overflow}px wider than the window"

    # The list: every SOP, what it applies to, its latest version and what runs on it.
    await page.get_by_role("link", name="SOPs").first.click()
    row = page.locator("tr", has=page.get_by_role("link", name="Two levels without timers"))
    await row.get_by_text("workspace", exact=True).first.wait_for()
    assert "v1: 1" in await row.inner_text()
    await look("list")

    # A version: the chart with a box per step, each showing its details when clicked, the YAML and the hash.
    await row.get_by_role("link", name="v1", exact=True).click()
    await page.locator("#chart svg .node[data-step='level2']").wait_for()
    assert await page.locator("#chart svg .node").count() == 4
    await page.locator("#chart svg .node[data-step='level2']").click()
    tip = page.locator("#chart .sop-chart-tip[data-step='level2']")
    await tip.wait_for()
    assert "Second-level support" in await tip.inner_text()
    assert "Second-level support" in await page.locator("#step-level2").inner_text()
    assert "sla: slow" in await page.locator("pre.yaml").inner_text()
    await page.locator("#running").get_by_role("link", name=before.id).wait_for()
    await look("version")

    # A draft: the chart and the problems follow the text as it is typed.
    await page.get_by_role("button", name="Start a draft from v1").click()
    editor = page.locator(".yaml-editor textarea")
    await editor.wait_for()
    original = await editor.input_value()
    assert "next: close" in original
    broken = original.replace("next: close", "next: thanks")
    await editor.fill(broken)
    problem = page.locator("#draft-check .problem", has_text="target 'thanks' does not exist")
    await problem.wait_for()
    thanks_line = next(i for i, text in enumerate(broken.splitlines(), 1) if "next: thanks" in text)
    assert f"line {thanks_line}" in await problem.inner_text() and "survey" in await problem.inner_text()
    assert "error" in await page.locator("#draft-check .check-status").inner_text()
    await look("draft-error")
    # Typing the missing step adds it to the chart and clears the error.
    await editor.press("Control+End")
    await editor.press_sequentially("\n  thanks: {type: notify, title: Say thank you, template: resolution, "
                                    "next: close}", delay=5)
    await page.locator("#draft-check .check-status", has_text="Valid").wait_for()
    await page.locator("#draft-check svg .node[data-step='thanks']").wait_for()
    assert await page.locator("#draft-check .problem").count() == 0
    await look("draft-valid")

    # Publishing: the changes against the latest, a required note.
    await page.get_by_role("link", name="Review and publish…").click()
    await page.locator(".sop-changes", has_text="thanks").wait_for()
    assert "added" in await page.locator(".sop-changes").inner_text()
    await page.locator("#after .node.mark-added[data-step='thanks']").wait_for()
    await look("publish")
    await page.get_by_role("button", name="Publish v2").click()
    assert await page.locator("textarea#note:invalid").count() == 1  # the browser asks for the note first
    await page.get_by_label("Why this version?").fill("Thank customers before closing")
    await page.get_by_role("button", name="Publish v2").click()
    await page.get_by_text("Published as v2.").wait_for()
    assert "Thank customers before closing" in await page.locator(".sop-facts").inner_text()
    await look("published")

    # Compare: the steps added and changed, both charts marked, the YAML diff.
    await page.goto(f"{live_url}/sops/workspace/compare?from=1&to=2")
    changes = page.locator(".sop-changes")
    assert "thanks" in await changes.inner_text() and "survey" in await changes.inner_text()
    await page.locator("#after .node.mark-added[data-step='thanks']").wait_for()
    await page.locator("#before .node.mark-changed[data-step='survey']").wait_for()
    await page.locator(".kb-diff .add", has_text="thanks").first.wait_for()
    await look("compare")

    # The SOP's history names who published and why.
    await page.goto(f"{live_url}/sops/workspace")
    await page.locator(".sop-history li", has_text="Thank customers before closing").wait_for()
    await look("sop")

    # New concerns start on v2; the one opened before stays on v1, and each concern page says which.
    after = await desk.intake.open(email="jo@example.com", name="Jo", subject="After the change", body="Hi",
                                   channel="web", category="workspace")
    await desk.wait_for(after.id, lambda c: c.step == "level1")
    assert (await desk.concern(after.id)).sop_version == 2
    assert (await desk.concern(before.id)).sop_version == 1
    for concern, version in ((before, 1), (after, 2)):
        await page.goto(f"{live_url}/concerns/{concern.id}")
        await page.locator("#live-flow h2", has_text=f"workspace v{version}").wait_for()
    await page.locator("#live-flow svg .node[data-step='thanks']").wait_for()
    await look("concern-after")
