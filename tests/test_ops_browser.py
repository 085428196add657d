"""In Chromium, at a desktop and a phone width: an SRE finds a concern whose workflow no longer replays on /ops,
follows the link to the failing event of its history, and resets the workflow with a reason."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect
from temporalio.api.enums.v1 import EventType
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.engine_support import history_events
from tests.ops_support import ChangedConcernWorkflow, ops_of, publish_ops_sops, sre
from tests.web_support import PASSWORD
from worker import build_worker


@pytest.mark.parametrize("width, height", [(1366, 900), (390, 844)], ids=["desktop", "phone"])
async def test_an_sre_goes_from_ops_to_the_failing_event_and_resets_the_workflow(desk, live_url, page, artifacts,
                                                                                 width, height):
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    await page.set_viewport_size({"width": width, "height": height})
    publish_ops_sops(desk.sessions)
    ops = sre(desk)
    concern = await desk.intake.open(email="gil@example.com", name="Gil", subject="Stuck after the deploy",
                                     body="Hello", channel="web", category="ops-unstaffed")
    await desk.wait_for(concern.id, lambda c: c.step == "expert")
    await desk.worker.shutdown()
    changed = Worker(desk.client, task_queue=desk.settings.temporal_task_queue, workflows=[ChangedConcernWorkflow],
                     workflow_runner=UnsandboxedWorkflowRunner())
    async with changed:
        await desk.intake.message(concern_id=concern.id, text="Any news?", channel="web", author="Gil")
        view = await ops_of(desk, ops["auth"], lambda v: v["task_failures"], timeout=60)
    [failure] = view["task_failures"]
    href = f"/concerns/{concern.id}/history#event-{failure['event_id']}"

    await page.goto(f"{live_url}/login?next=/ops")
    await page.get_by_label("E-mail").fill("sre@desk.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{live_url}/ops")
    row = page.locator("tr.task-failure")
    await expect(row).to_contain_text(concern.id)
    await expect(row).to_contain_text("non-determinism")
    link = row.locator("a.history-link")
    await expect(link).to_have_attribute("href", href)
    await expect(page.locator('[data-count="nondeterminism"], [data-count="task_failures"]').first).to_have_text("1")
    await page.screenshot(path=str(artifacts / f"ops-{width}.png"), full_page=True)
    events = await history_events(desk, concern.workflow_id)
    assert next(e for e in events if e.event_id == failure["event_id"]).event_type == \
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    # The link opens the concern's history at the failing event, told as a failure.
    await link.click()
    await page.wait_for_url(f"**{href}")
    failing = page.locator(f"#event-{failure['event_id']}")
    await expect(failing).to_be_visible()
    await expect(failing).to_have_attribute("title", re.compile("workflow task failed"))
    await page.screenshot(path=str(artifacts / f"ops-history-{width}.png"), full_page=True)
    await page.goto(f"{live_url}/ops")
    row = page.locator("tr.task-failure")
    await expect(row).to_contain_text(concern.id)

    # The shipped code is back; the SRE resets to the first completed workflow task, giving a reason.
    first_done = next(e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    async with build_worker(desk.client, desk.settings, desk.sessions):
        await row.locator("details.op-action summary").click()
        form = row.locator("details.op-action form")
        await form.get_by_label("Event id").fill(str(first_done))
        await form.get_by_label("Reason").fill("rolled back the bad deploy")
        await page.screenshot(path=str(artifacts / f"ops-reset-{width}.png"), full_page=True)
        await form.get_by_role("button", name="Reset the workflow").click()
        await expect(page.locator("p.notice[role=status]")).to_contain_text(f"reset to event {first_done}")
        await expect(page.locator("#operator-actions")).to_contain_text("rolled back the bad deploy")
        await expect(page.locator("tr.task-failure")).to_have_count(0, timeout=30_000)
        await page.screenshot(path=str(artifacts / f"ops-after-reset-{width}.png"), full_page=True)
