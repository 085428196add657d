"""Moving running concerns to a new SOP version: dry run, subset, safe points, clocks, undo, races, roles."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from tests.engine_support import ADA, act, clock_events, open_concern, say, timeline_kinds
from tests.migration_kit import body, publish_v2, token_for


async def _open(desk, n=1):
    concerns = [await open_concern(desk, category="migrate", subject=f"Help {i}") for i in range(n)]
    for c in concerns:
        await desk.wait_for(c.id, lambda p: p.step == "level1")
    return concerns


async def _progress(desk, m):
    r = await desk.http.get(f"/api/sops/migrate/migrations/{m}", headers=desk.auth)
    assert r.status_code == 200, r.text
    return r.json()


async def _wait_progress(desk, m, done, timeout=20):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        p = await _progress(desk, m)
        if done(p):
            return p
        assert asyncio.get_running_loop().time() < deadline, p
        await asyncio.sleep(0.1)


async def test_a_dry_run_lists_every_concern_and_moves_nothing(desk):
    a, b = await _open(desk, 2)
    v2 = publish_v2(desk)
    r = await desk.http.post("/api/sops/migrate/migrations", json=body(v2, dry_run=True), headers=desk.auth)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["errors"] == [] and {c["id"] for c in plan["concerns"]} == {a.id, b.id}
    row = next(c for c in plan["concerns"] if c["id"] == a.id)
    assert (row["step"], row["target_step"], row["safe_now"]) == ("level1", "first_line", True)
    assert "step:first_line" in {c["name"] for c in row["clocks_after"]}  # v2's escalation timer
    assert {m["source"]: m["target"] for m in plan["mapping"]} == {"level1": "first_line", "level2": "experts"}
    assert (await desk.concern(a.id)).sop_version == 1
    r = await desk.http.get("/api/sops/migrate/migrations", headers=desk.auth)
    assert r.json() == []


async def test_a_subset_moves_at_safe_points_and_its_history_records_the_move(desk):
    a, b, c = await _open(desk, 3)
    await act(desk, a, "claim", ADA)
    v2 = publish_v2(desk)
    r = await desk.http.post("/api/sops/migrate/migrations",
                             json=body(v2, dry_run=False, filter={"ids": [a.id, b.id]}), headers=desk.auth)
    assert r.status_code == 201, r.text
    m = r.json()["id"]
    for concern in (a, b):
        moved = await desk.wait_for(concern.id, lambda p: p.sop_version == v2)
        assert moved.step == "first_line"
    assert (await desk.concern(a.id)).assignee_name == "Ada"  # taken over in place: same level, same skills
    assert (await desk.concern(c.id)).sop_version == 1
    progress = await _wait_progress(desk, m, lambda p: p["progress"]["moved"] == 2)
    assert {i["concern_id"] for i in progress["items"]} == {a.id, b.id}
    # The workflow's own history: the update with who and why, and the continue-as-new onto v2.
    latest = [e async for e in desk.client.get_workflow_handle(a.workflow_id).fetch_history_events()]
    started = latest[0].workflow_execution_started_event_attributes
    assert b'"migration_id"' in started.input.payloads[0].data  # the new run knows what it was and who moved it
    handle = desk.client.get_workflow_handle(a.workflow_id, run_id=started.continued_execution_run_id)
    events = [e async for e in handle.fetch_history_events()]
    accepted = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
                and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == "migrate"]
    assert accepted
    assert b"new ladder" in accepted[0].workflow_execution_update_accepted_event_attributes.accepted_request \
        .input.args.payloads[0].data
    cans = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW]
    assert cans and b'"first_line"' in cans[0].workflow_execution_continued_as_new_event_attributes.input.payloads[0].data
    assert "migrated" in timeline_kinds(desk, a.id)
    # The moved concern works on v2: Ada resolves it there.
    state = await act(desk, a, "resolve", ADA, text="Done on the new ladder")
    assert state.sop_version == v2


async def test_a_concern_not_at_a_safe_point_moves_when_it_reaches_one(desk):
    (a,) = await _open(desk)
    await act(desk, a, "claim", ADA)
    await act(desk, a, "resolve", ADA, text="Fixed")
    await desk.wait_for(a.id, lambda p: p.status == "resolved")
    v2 = publish_v2(desk)
    refused = await desk.http.post("/api/sops/migrate/migrations",
                                   json=body(v2, dry_run=False, when_unsafe="refuse"), headers=desk.auth)
    p = await _progress(desk, refused.json()["id"])
    assert p["progress"]["refused"] == 1 and "not at a safe point" in p["items"][0]["reason"]
    r = await desk.http.post("/api/sops/migrate/migrations", json=body(v2, dry_run=False), headers=desk.auth)
    m = r.json()["id"]
    p = await _progress(desk, m)
    assert p["progress"]["waiting"] == 1 and "end step" in p["items"][0]["reason"]
    assert (await desk.concern(a.id)).sop_version == 1
    await say(desk, a, "It broke again")  # reopens at its last human step, a safe point
    moved = await desk.wait_for(a.id, lambda c: c.sop_version == v2)
    assert moved.step == "first_line" and moved.status == "open"
    await _wait_progress(desk, m, lambda p: p["progress"]["moved"] == 1)


async def test_clocks_keep_their_elapsed_time_or_restart_under_the_target_policy(desk):
    keep, restart = await _open(desk, 2)
    await asyncio.sleep(1.2)  # some elapsed time to keep
    v2 = publish_v2(desk)
    for concern, mode in ((keep, "keep"), (restart, "restart")):
        r = await desk.http.post("/api/sops/migrate/migrations",
                                 json=body(v2, dry_run=False, clocks=mode, filter={"ids": [concern.id]}),
                                 headers=desk.auth)
        assert r.status_code == 201, r.text
        await desk.wait_for(concern.id, lambda p: p.sop_version == v2)
    kept = [(e.kind, e.elapsed_seconds) for e in clock_events(desk, keep.id) if e.clock == "resolution"]
    assert kept == [("start", 0)]  # same policy and target: the clock runs on untouched
    again = [(e.kind, e.elapsed_seconds) for e in clock_events(desk, restart.id) if e.clock == "resolution"]
    assert [k for k, _ in again] == ["start", "stop", "start"] and again[1][1] >= 1 and again[2][1] == 0
    for concern in (keep, restart):
        steps = [e.kind for e in clock_events(desk, concern.id) if e.clock == "step:first_line"]
        assert steps == ["start"]


async def test_undo_moves_back_only_the_concerns_still_at_their_mapped_step(desk):
    a, b = await _open(desk, 2)
    v2 = publish_v2(desk)
    m = (await desk.http.post("/api/sops/migrate/migrations", json=body(v2, dry_run=False),
                              headers=desk.auth)).json()["id"]
    for concern in (a, b):
        await desk.wait_for(concern.id, lambda p: p.sop_version == v2)
    await _wait_progress(desk, m, lambda p: p["progress"]["moved"] == 2)
    await act(desk, b, "claim", ADA)
    await act(desk, b, "escalate", ADA, reason="needs an expert")
    await desk.wait_for(b.id, lambda p: p.step == "experts")
    r = await desk.http.post(f"/api/sops/migrate/migrations/{m}/undo", json={"reason": "wrong ladder"},
                             headers=desk.auth)
    assert r.status_code == 201, r.text
    undo = r.json()
    back = await desk.wait_for(a.id, lambda p: p.sop_version == 1)
    assert back.step == "level1"
    assert (await desk.concern(b.id)).sop_version == v2
    refused = next(i for i in undo["items"] if i["concern_id"] == b.id)
    assert refused["state"] == "refused" and "left step 'first_line'" in refused["reason"]
    p = await _wait_progress(desk, m, lambda p: p["progress"]["undone"] == 1)
    assert p["progress"]["moved"] == 1


async def test_a_migration_racing_an_agent_action_lets_one_win_cleanly(desk):
    concerns = await _open(desk, 3)
    v2 = publish_v2(desk)
    for c in concerns:
        await act(desk, c, "claim", ADA)

    async def resolve(c):
        try:
            return await act(desk, c, "resolve", ADA, text="Fixed")
        except WorkflowUpdateFailedError as err:
            return err

    results = await asyncio.gather(
        desk.http.post("/api/sops/migrate/migrations", json=body(v2, dry_run=False, when_unsafe="refuse"),
                       headers=desk.auth),
        *[resolve(c) for c in concerns])
    m = results[0].json()["id"]
    items = {i["concern_id"]: i for i in (await _progress(desk, m))["items"]}
    for c, outcome in zip(concerns, results[1:]):
        item = items[c.id]
        final = await desk.wait_for(c.id, lambda p: item["state"] == "refused" or p.sop_version == v2)
        kinds = timeline_kinds(desk, c.id)
        if item["state"] == "refused":  # the resolution won: nothing of the move happened
            assert "leaving" in item["reason"] or "safe point" in item["reason"], item
            assert "migrated" not in kinds and final.sop_version == 1
        else:  # the move won: the resolution was refused, or taken on v2
            assert final.sop_version == v2
        assert kinds.count("resolution") == (0 if isinstance(outcome, Exception) else 1)
        if isinstance(outcome, Exception):
            assert "being moved" in str(outcome.cause), outcome.cause


async def test_bad_plans_are_refused_with_every_reason_and_nothing_moves(desk):
    (a,) = await _open(desk)
    v2 = publish_v2(desk)
    r = await desk.http.post("/api/sops/migrate/migrations",
                             json=body(v2, dry_run=False, mapping={"level1": "first_line", "level2": "nowhere"}),
                             headers=desk.auth)
    assert r.status_code == 422 and "'nowhere', which v2 does not have" in r.text
    r = await desk.http.post("/api/sops/migrate/migrations", json=body(9, dry_run=True), headers=desk.auth)
    assert r.status_code == 404
    odd = publish_v2(desk, """
id: migrate
title: Only automation
applies_to: {categories: [migrate]}
sla: slow
start: triage
steps:
  triage: {type: ask_customer, message: ask_details, wait: 1h, outcomes: {replied: done, no_reply: done}}
  done: {type: end, result: resolved}
""")
    r = await desk.http.post("/api/sops/migrate/migrations", json={"from": 1, "to": odd, "reason": "x",
                                                                   "dry_run": False}, headers=desk.auth)
    assert r.status_code == 422 and "step 'level2' of v1 is not mapped" in r.text  # no step of its type to propose
    typed = {"from": 1, "to": odd, "reason": "x", "dry_run": False, "mapping": {"level1": "triage", "level2": "triage"}}
    r = await desk.http.post("/api/sops/migrate/migrations", json=typed, headers=desk.auth)
    assert r.status_code == 422 and "needs confirmation" in r.text and r.json()["detail"]["needs_confirmation"]
    assert (await desk.concern(a.id)).sop_version == 1
    r = await desk.http.post("/api/sops/migrate/migrations", json=body(v2, dry_run=False, reason=""),
                             headers=desk.auth)
    assert r.status_code == 422 and "say why" in r.text


async def test_two_migrations_of_the_same_concern_get_a_clear_answer(desk):
    (a,) = await _open(desk)
    await act(desk, a, "claim", ADA)
    await act(desk, a, "resolve", ADA, text="Fixed")
    await desk.wait_for(a.id, lambda p: p.status == "resolved")
    v2 = publish_v2(desk)
    first = (await desk.http.post("/api/sops/migrate/migrations", json=body(v2, dry_run=False),
                                  headers=desk.auth)).json()["id"]
    second = (await desk.http.post("/api/sops/migrate/migrations", json=body(v2, dry_run=False),
                                   headers=desk.auth)).json()
    assert second["progress"]["refused"] == 1
    assert f"migration {first} is still moving" in second["items"][0]["reason"]


async def test_only_process_owners_and_admins_move_concerns(desk):
    await _open(desk)
    v2 = publish_v2(desk)
    agent = token_for(desk, "agent", level=1)
    owner = token_for(desk, "process_owner")
    r = await desk.http.post("/api/sops/migrate/migrations", json=body(v2), headers=agent)
    assert r.status_code == 403
    r = await desk.http.get("/api/sops/migrate/migrations", headers=agent)
    assert r.status_code == 200
    r = await desk.http.post("/api/sops/migrate/migrations", json=body(v2), headers=owner)
    assert r.status_code == 200 and len(r.json()["concerns"]) == 1
