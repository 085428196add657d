"""`ccr replay --running`: the histories of running concerns replay against the code at hand before a deploy."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import workflows.concern
from tests.changed_workflow import ChangedConcernWorkflow
from tests.engine_support import ADA, act, open_concern, say

ROOT = Path(__file__).parent.parent


async def _running_concerns(desk, n: int = 3) -> list:
    """A few concerns left running at different points: queued, claimed, and heard from."""
    concerns = [await open_concern(desk, category="breach", priority="low", subject=f"Concern {i}") for i in range(n)]
    for c in concerns:
        await desk.wait_for(c.id, lambda row: row.step == "level1")
    await act(desk, concerns[1], "claim", ADA)
    await act(desk, concerns[2], "claim", ADA)
    await say(desk, concerns[2], "Any news?")
    await desk.wait_for(concerns[2].id, lambda row: row.seq >= 6)
    return concerns


def _env(desk) -> dict:
    return {**os.environ, "CCR_TEMPORAL_ADDRESS": desk.settings.temporal_address,
            "CCR_DATA_DIR": str(desk.settings.data_dir)}


async def test_running_concerns_replay_cleanly_on_the_current_code(desk):
    await _running_concerns(desk)
    query = f"TaskQueue='{desk.settings.temporal_task_queue}'"
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ccr", "replay", "--running", "--query",
                                                    query], capture_output=True, text=True, cwd=ROOT, env=_env(desk),
                                   timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 replayed cleanly, 0 failed" in done.stdout
    limited = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "ccr", "replay", "--running", "--query",
                                                       query, "--limit", "2"], capture_output=True, text=True,
                                      cwd=ROOT, env=_env(desk), timeout=180)
    assert "2 replayed cleanly, 0 failed" in limited.stdout, limited.stdout + limited.stderr


async def test_a_changed_workflow_fails_naming_each_concern_and_the_diverging_event(desk, monkeypatch):
    concerns = await _running_concerns(desk)
    # The command replays whatever the code at hand calls ConcernWorkflow: here, a deliberately changed one.
    monkeypatch.setattr(workflows.concern, "ConcernWorkflow", ChangedConcernWorkflow)
    for name, value in _env(desk).items():
        monkeypatch.setenv(name, value)
    from ccr import app

    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "replay", "--running", "--query", f"TaskQueue='{desk.settings.temporal_task_queue}'"])
    assert result.exit_code == 1, result.output
    assert "0 replayed cleanly, 3 failed" in result.output
    for concern in concerns:
        line = next(line for line in result.output.splitlines() if line.startswith(f"FAILED {concern.id} "))
        assert f"(workflow {concern.workflow_id}) at event " in line
    assert "at event 5 (marker_recorded): [TMPRL1100] Nondeterminism error" in result.output
