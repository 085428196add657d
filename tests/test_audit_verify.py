"""Figures recompute from Temporal's history, and tampering with clock events shows: `ccr audit verify` and the
evidence bundle on concerns run through the workflow (a breach, pauses, a reopen), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType

from api.audit_verify import verify
from api.evidence import build_bundle
from registry import audit, chain
from registry.models import ClockEvent
from registry.types import utcnow
from tests.engine_support import CAROL, act, clock_events, history_events, open_concern, say

ROOT = Path(__file__).resolve().parent.parent
SETTLED = {EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED}


async def settled(desk, concern, timeout: float = 20) -> None:
    """Wait until the concern's workflow has no workflow task in flight, so history and registry agree."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        events = await history_events(desk, concern.workflow_id)
        done = max(i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        if not any(e.event_type in SETTLED for e in events[done:]):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{concern.id} kept moving")


async def drive(desk):
    """A concern that breaches its first response and escalates; one that pauses twice, resolves and reopens."""
    breach = await open_concern(desk, category="breach")
    paused = await open_concern(desk, category="everything", email="pat@example.com", subject="Printer jams",
                                body="The printer jams on every page")
    await desk.wait_for(paused.id, lambda c: c.step == "confirm")
    await say(desk, paused, "It is the blue one")
    await desk.wait_for(paused.id, lambda c: c.level in (1, 2), timeout=20)
    await act(desk, paused, "claim", CAROL)
    await act(desk, paused, "request_info", CAROL, text="Which model is it?")
    await desk.wait_for(paused.id, lambda c: c.status == "waiting_customer")
    await say(desk, paused, "Model 7")
    await desk.wait_for(paused.id, lambda c: c.status == "open")
    await act(desk, paused, "resolve", CAROL, text="Replaced the toner")
    await desk.wait_for(paused.id, lambda c: c.status == "resolved")
    await say(desk, paused, "It jams again")
    await desk.wait_for(paused.id, lambda c: c.status == "open" and c.level in (1, 2))
    await desk.wait_for(breach.id, lambda c: c.step == "level2", timeout=20)
    for concern in (breach, paused):
        await settled(desk, concern)
    return breach, paused


def ccr(desk, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CCR_DATABASE_URL": desk.settings.database_url,
           "CCR_TEMPORAL_ADDRESS": desk.settings.temporal_address, "CCR_DATA_DIR": str(desk.settings.data_dir)}
    return subprocess.run([sys.executable, str(ROOT / "ccr.py"), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def sql(desk, statement: str, **params) -> None:
    with desk.sessions.begin() as session:
        session.connection().execute(sa.text(statement), params)


def row_of(desk, concern_id: str, seq: int) -> dict:
    with desk.sessions.read() as session:
        return next(r for r in audit.clock_rows(session.connection(), concern_id) if r["seq"] == seq)


async def check(desk) -> list[str]:
    result = await verify(sessions=desk.sessions, client=desk.client, actor="auditor@desk.test")
    return result.lines()


async def test_verify_rebuilds_every_clock_from_history_and_names_each_tampered_row(desk_on_both, tmp_path):
    desk = desk_on_both
    breach, paused = await drive(desk)
    kinds = {(e.clock, e.kind) for e in clock_events(desk, paused.id)}
    assert {("first_response", "pause"), ("resolution", "resume"), ("resolution", "start")} <= kinds
    assert [e.kind for e in clock_events(desk, paused.id) if e.clock == "resolution"].count("start") == 2  # reopened
    assert ("first_response", "breach") in {(e.clock, e.kind) for e in clock_events(desk, breach.id)}

    done = await asyncio.to_thread(ccr, desk, "audit", "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: 2 concerns" in done.stdout
    today = utcnow().date().isoformat()
    assert f"anchor clock_events {today} " in done.stdout and f"anchor audit_log {today} " in done.stdout

    # Edited: the breach's elapsed time made smaller by a minute.
    hit = next(e for e in clock_events(desk, breach.id) if e.kind == "breach")
    sql(desk, "UPDATE clockevent SET elapsed_seconds = elapsed_seconds - 60 WHERE id = :id", id=hit.id)
    done = await asyncio.to_thread(ccr, desk, "audit", "verify", "--concern", breach.id)
    assert done.returncode == 1
    named = f"clock event {breach.id} #{hit.seq} (first_response breach, event {hit.event_id})"
    assert f"{breach.id} first_response #{hit.seq} (breach, event {hit.event_id}): elapsed_seconds differs" in done.stdout
    assert f"{named}: the row's content does not match its hash: it was edited" in done.stdout
    sql(desk, "UPDATE clockevent SET elapsed_seconds = elapsed_seconds + 60 WHERE id = :id", id=hit.id)
    assert await check(desk) == []

    # Deleted: a pause of the paused concern.
    pause = next(e for e in clock_events(desk, paused.id) if e.kind == "pause")
    kept = row_of(desk, paused.id, pause.seq)
    sql(desk, "DELETE FROM clockevent WHERE id = :id", id=pause.id)
    lines = await check(desk)
    assert any(line.startswith(f"{paused.id} {pause.clock} #{pause.seq} (pause") and "missing from the registry" in line
               for line in lines), lines
    assert any("the link to the previous row is broken" in line and line.startswith(f"clock event {paused.id} #")
               for line in lines), lines
    with desk.sessions.begin() as session:
        session.connection().execute(sa.insert(ClockEvent.__table__).values(**kept))
    assert await check(desk) == []

    # Inserted: a forged stop between two real rows, hashed by someone who knows the scheme.
    rows = [r for r in row_of_all(desk, paused.id)]
    gap = next(a["seq"] + 1 for a, b in zip(rows, rows[1:]) if b["seq"] > a["seq"] + 1)
    before = max((r for r in rows if r["seq"] < gap), key=lambda r: r["seq"])
    forged = {**{k: before[k] for k in chain.CLOCK_FIELDS}, "seq": gap, "kind": "stop"}
    forged["prev_hash"] = before["row_hash"]
    forged["row_hash"] = chain.row_hash(chain.clock_content(forged), before["row_hash"])
    with desk.sessions.begin() as session:
        session.connection().execute(sa.insert(ClockEvent.__table__).values(**forged))
    lines = await check(desk)
    assert any(line.startswith(f"{paused.id} {forged['clock']} #{gap} (stop") and "not in the history (inserted)" in line
               for line in lines), lines
    assert any("the link to the previous row is broken" in line for line in lines), lines
    sql(desk, "DELETE FROM clockevent WHERE concern_id = :c AND seq = :s", c=paused.id, s=gap)

    # A recorded evaluation is kept beside the data, which it never changes.
    count = len(clock_events(desk, paused.id)) + len(clock_events(desk, breach.id))
    result = await verify(sessions=desk.sessions, client=desk.client, actor="auditor@desk.test", keep=True,
                          reason="quarterly review")
    assert result.ok and result.verification_id is not None and result.concerns == 2
    with desk.sessions.read() as session:
        kept = session.get(audit.Verification, result.verification_id)
        assert kept.ok and kept.reason == "quarterly review" and kept.events == count
        verified = audit.entries(session=session, action="audit.verified")
    assert len(clock_events(desk, paused.id)) + len(clock_events(desk, breach.id)) == count
    assert len(verified) >= 5 and verified[0].detail["verification_id"] == result.verification_id

    # The evidence bundle checks out offline, without the product, and a changed cell is named.
    out = tmp_path / "evidence.zip"
    since, until = utcnow() - timedelta(hours=1), utcnow() + timedelta(minutes=1)
    summary = await build_bundle(sessions=desk.sessions, client=desk.client, since=since, until=until,
                                 actor="auditor@desk.test", out=out)
    assert summary.concerns == 2 and summary.clock_events == count
    offline = tmp_path / "offline"
    offline.mkdir()
    with zipfile.ZipFile(out) as bundle:
        bundle.extractall(offline)
        assert {"clock_events.csv", "audit_log.csv", "governing.json", "manifest.json", "verify_bundle.py"} <= \
            set(bundle.namelist())
    plain = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    ran = subprocess.run([plain, "-I", "verify_bundle.py"], cwd=offline, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.startswith(f"OK: {count} clock events")
    assert f"anchor clock_events {today} {summary.anchors['clock_events'][today]}" in ran.stdout
    assert '"policies"' in (offline / "governing.json").read_text()
    # The SLA compliance report of the period travels with the rows it is computed from.
    report = (offline / "sla_report.csv").read_text().splitlines()
    assert len(report) >= 2 and "breach" in report[0].lower()

    text = (offline / "clock_events.csv").read_text().splitlines()
    victim = next(i for i, line in enumerate(text) if line.startswith(f"{breach.id},") and ",breach," in line)
    text[victim] = text[victim].replace(",breach,", ",stop,")
    (offline / "clock_events.csv").write_text("\n".join(text) + "\n")
    ran = subprocess.run([plain, "-I", "verify_bundle.py"], cwd=offline, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert ran.returncode == 1
    assert "clock_events.csv: its SHA-256 differs from the manifest's" in ran.stdout
    assert f"clock event {breach.id} #{hit.seq} (first_response stop" in ran.stdout and "it was edited" in ran.stdout

    # The command writes the same bundle for whole days.
    done = await asyncio.to_thread(ccr, desk, "audit", "export", "--from", today, "--to", today,
                                   str(tmp_path / "cli.zip"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"wrote {tmp_path / 'cli.zip'}: 2 concerns, {count} clock events")


def row_of_all(desk, concern_id: str) -> list[dict]:
    with desk.sessions.read() as session:
        return audit.clock_rows(session.connection(), concern_id)


async def test_verify_follows_a_concern_across_continue_as_new(desk):
    from tests.engine_support import ADA

    desk.settings.continue_after_events = 40
    concern = await open_concern(desk, category="breach", priority="low")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", ADA)
    await act(desk, concern, "request_info", ADA, text="Which order?")
    for i in range(12):
        await act(desk, concern, "note", ADA, text=f"note {i}")
    await say(desk, concern, "Order 12")  # the clocks resume in a later run than the one that paused them
    await desk.wait_for(concern.id, lambda c: c.status == "open" and c.seq > 14)
    await settled(desk, concern)
    runs = {e.run_id for e in clock_events(desk, concern.id)}
    assert len(runs) == 2, runs
    result = await verify(sessions=desk.sessions, client=desk.client, actor="auditor@desk.test", concern_id=concern.id)
    assert result.lines() == [] and result.events == len(clock_events(desk, concern.id))
    resume = next(e for e in clock_events(desk, concern.id) if e.kind == "resume")
    sql(desk, "UPDATE clockevent SET at = :at WHERE id = :id", at=resume.at.replace(tzinfo=None) - timedelta(hours=1)
        if desk.sessions.dialect == "sqlite" else resume.at - timedelta(hours=1), id=resume.id)
    lines = (await verify(sessions=desk.sessions, client=desk.client, actor="auditor@desk.test",
                          concern_id=concern.id)).lines()
    assert any(line.startswith(f"{concern.id} {resume.clock} #{resume.seq} (resume") and "at differs" in line
               for line in lines), lines
