"""The pages for moving running concerns: preview moves nothing, run moves them, undo, refusals, roles."""

from __future__ import annotations

import asyncio
import html
import re

from tests.engine_support import open_concern
from tests.migration_kit import publish_v2
from tests.web_support import as_session, make_staff

ODD = """
id: migrate
title: Only a customer step
applies_to: {categories: [migrate]}
sla: slow
start: triage
steps:
  triage: {type: ask_customer, message: ask_details, wait: 1h, outcomes: {replied: done, no_reply: done}}
  done: {type: end, result: resolved}
"""
FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


async def _open(desk, n):
    concerns = [await open_concern(desk, category="migrate", subject=f"Help {i}") for i in range(n)]
    for c in concerns:
        await desk.wait_for(c.id, lambda p: p.step == "level1")
    return concerns


def _owner(desk) -> dict:
    person = make_staff(desk.sessions, "olive@desk.test", "process_owner", name="Olive")
    return as_session(desk, user_id=person["id"])


def _run_form(page: str) -> dict[str, str]:
    """The hidden fields of the preview's "Run this plan" form, as the browser would send them."""
    form = page.split('class="mig-run">', 1)[1].split("</form>", 1)[0]
    fields: dict[str, list[str]] = {}
    for name, value in FIELD.findall(form):
        fields.setdefault(name, []).append(html.unescape(value))
    return {k: v if len(v) > 1 else v[0] for k, v in fields.items()}


async def _page_until(desk, url, headers, text, timeout=20):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await desk.http.get(url, headers=headers)
        if text in r.text:
            return r
        assert asyncio.get_running_loop().time() < deadline, r.text
        await asyncio.sleep(0.1)


async def test_preview_moves_nothing_run_moves_the_previewed_concerns_and_undo_moves_them_back(desk):
    a, b = await _open(desk, 2)
    v2 = publish_v2(desk)
    owner = _owner(desk)
    sop = await desk.http.get("/sops/migrate", headers=owner)
    assert "Move running concerns…" in sop.text and "No running concern has been moved" in sop.text
    new = await desk.http.get(f"/sops/migrate/migrations/new?from=1&to={v2}", headers=owner)
    assert new.status_code == 200, new.text
    assert re.search(r'name="map.level1">.*?<option value="first_line" selected>', new.text, re.S)  # proposed
    assert "Run this plan" not in new.text

    form = {"from": "1", "to": str(v2), "map.level1": "first_line", "map.level2": "experts", "clocks": "keep",
            "when_unsafe": "wait", "reason": "new ladder"}
    preview = await desk.http.post("/sops/migrate/migrations/preview", data=form, headers=owner)
    assert preview.status_code == 200, preview.text
    assert a.id in preview.text and b.id in preview.text and "Preview: 2 concerns" in preview.text
    assert "step:first_line" in preview.text  # v2's escalation timer among the clocks after
    assert (await desk.concern(a.id)).sop_version == 1
    assert (await desk.http.get("/api/sops/migrate/migrations", headers=desk.auth)).json() == []

    run = await desk.http.post("/sops/migrate/migrations", data=_run_form(preview.text), headers=owner,
                               follow_redirects=False)
    assert run.status_code == 303, run.text
    url = run.headers["location"]
    for concern in (a, b):
        moved = await desk.wait_for(concern.id, lambda p: p.sop_version == v2)
        assert moved.step == "first_line"
    page = await _page_until(desk, url, owner, "2 moved")
    assert "new ladder" in page.text and "Undo" in page.text
    fragment = await desk.http.get(url, headers={**owner, "HX-Request": "true"})
    assert fragment.text.lstrip().startswith("<section id=\"mig-progress\"") and "hx-trigger" not in fragment.text
    sop = await desk.http.get("/sops/migrate", headers=owner)
    assert f'href="{url}"' in sop.text and "2 moved" in sop.text

    concern_page = await desk.http.get(f"/concerns/{a.id}", headers=as_session(desk, user_id=1))
    assert f"Runs on <strong>v{v2}</strong>; moved from" in concern_page.text
    assert 'href="/sops/migrate/versions/1">v1</a>' in concern_page.text

    undo = await desk.http.post(f"{url}/undo", data={"reason": "wrong ladder"}, headers=owner,
                                follow_redirects=False)
    assert undo.status_code == 303, undo.text
    for concern in (a, b):
        back = await desk.wait_for(concern.id, lambda p: p.sop_version == 1)
        assert back.step == "level1"
    await _page_until(desk, undo.headers["location"], owner, "2 moved")
    await _page_until(desk, url, owner, "2 undone")


async def test_an_unmapped_step_is_refused_with_a_message_and_nothing_moves(desk):
    (a,) = await _open(desk, 1)
    odd = publish_v2(desk, ODD)
    owner = _owner(desk)
    form = {"from": "1", "to": str(odd), "reason": "try"}
    preview = await desk.http.post("/sops/migrate/migrations/preview", data=form, headers=owner)
    assert preview.status_code == 422
    assert "This plan cannot run" in preview.text and "step &#39;level1&#39; of v1 is not mapped" in preview.text
    assert "Run this plan" not in preview.text
    run = await desk.http.post("/sops/migrate/migrations", data={**form, "planned_ids": a.id}, headers=owner)
    assert run.status_code == 422 and "nothing was moved" in run.text

    typed = {**form, "map.level1": "triage", "map.level2": "triage"}
    preview = await desk.http.post("/sops/migrate/migrations/preview", data=typed, headers=owner)
    assert preview.status_code == 422 and "needs confirmation" in preview.text
    assert 'name="confirm_type_changes"' in preview.text
    unpreviewed = await desk.http.post("/sops/migrate/migrations", data={**typed, "confirm_type_changes": "yes"},
                                       headers=owner)
    assert unpreviewed.status_code == 422 and "preview the plan first" in unpreviewed.text
    assert (await desk.concern(a.id)).sop_version == 1
    assert (await desk.http.get("/api/sops/migrate/migrations", headers=desk.auth)).json() == []


async def test_only_process_owners_and_admins_move_concerns_and_forms_need_the_csrf_token(desk):
    (a,) = await _open(desk, 1)
    v2 = publish_v2(desk)
    agent = as_session(desk, user_id=make_staff(desk.sessions, "ada@desk.test", "agent", level=1)["id"])
    form = {"from": "1", "to": str(v2), "reason": "x", "planned_ids": a.id}
    assert (await desk.http.get("/sops/migrate/migrations/new", headers=agent)).status_code == 403
    assert (await desk.http.post("/sops/migrate/migrations/preview", data=form, headers=agent)).status_code == 403
    assert (await desk.http.post("/sops/migrate/migrations", data=form, headers=agent)).status_code == 403
    sop = await desk.http.get("/sops/migrate", headers=agent)
    assert sop.status_code == 200 and "Move running concerns" not in sop.text
    owner = _owner(desk)
    forged = {k: v for k, v in owner.items() if k != "X-CSRF-Token"}
    r = await desk.http.post("/sops/migrate/migrations", data=form, headers=forged)
    assert r.status_code == 403
    assert (await desk.concern(a.id)).sop_version == 1
    admin = as_session(desk, user_id=1)
    assert (await desk.http.get("/sops/migrate/migrations/new", headers=admin)).status_code == 200
