"""Search attributes: Temporal's CLI finds concerns by their business fields, kept current by the workflow."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

from tests.conftest import TEMPORAL_BIN
from tests.engine_support import ADA, act, open_concern


async def _listed(address: str, query: str, timeout: float = 20) -> list[dict]:
    """Rows of `temporal workflow list --query` once it lists something (visibility lags a moment behind)."""
    deadline = time.monotonic() + timeout
    while True:
        done = await asyncio.to_thread(subprocess.run, [
            str(TEMPORAL_BIN), "workflow", "list", "--address", address, "--query", query, "--output", "json"],
            capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout or "[]") if done.stdout.strip().startswith("[") else \
            [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        if rows or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.3)


async def test_the_cli_finds_a_concern_by_status_level_assignee_and_reopen_window(desk, temporal_server):
    concern = await open_concern(desk, category="breach", priority="low", channel="email")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    mine = f"WorkflowId='{concern.workflow_id}'"

    rows = await _listed(temporal_server.address, f"CcrStatus='open' AND CcrLevel=1 AND {mine}")
    assert [r["execution"]["workflowId"] for r in rows] == [concern.workflow_id]
    assert await _listed(temporal_server.address, f"CcrSopId='breach' AND CcrChannel='email' AND CcrPriority='low' "
                                                  f"AND CcrCustomerId={concern.customer_id} AND {mine}")

    await act(desk, concern, "claim", ADA)
    assert await _listed(temporal_server.address, f"CcrAssignee='Ada' AND CcrStep='level1' AND {mine}")

    await act(desk, concern, "resolve", ADA, text="Fixed")
    await desk.wait_for(concern.id, lambda c: c.status == "resolved")
    # Resolved, yet Temporal shows the workflow as running: the attribute says it only waits out its reopen window.
    rows = await _listed(temporal_server.address,
                         f"CcrStatus='resolved' AND CcrWaitingReopen=true AND ExecutionStatus='Running' AND {mine}")
    assert [r["execution"]["workflowId"] for r in rows] == [concern.workflow_id]
    assert not await _listed(temporal_server.address, f"CcrStatus='open' AND {mine}", timeout=1)


def test_ccr_temporal_setup_registers_the_attributes_on_a_bare_namespace_once(tmp_path):
    """A cluster's namespace starts without them: setup adds them, and a second run finds them all there."""
    import os
    import sys
    from pathlib import Path

    from tests.conftest import DevServer

    server = DevServer(search_attributes=False).start()
    env = {**os.environ, "CCR_TEMPORAL_ADDRESS": server.address, "CCR_DATA_DIR": str(tmp_path / "var")}
    root = Path(__file__).parent.parent
    try:
        first = subprocess.run([sys.executable, "-m", "ccr", "temporal", "setup"], capture_output=True, text=True,
                               env=env, cwd=root, timeout=120)
        assert first.returncode == 0, first.stderr
        assert "added 12 search attributes" in first.stdout and "CcrWaitingReopen" in first.stdout
        again = subprocess.run([sys.executable, "-m", "ccr", "temporal", "setup"], capture_output=True, text=True,
                               env=env, cwd=root, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "added" not in again.stdout and "already there: CcrStatus" in again.stdout
        listed = subprocess.run([str(TEMPORAL_BIN), "operator", "search-attribute", "list", "--address",
                                 server.address], capture_output=True, text=True, timeout=30)
        assert "CcrLevel" in listed.stdout and "Int" in listed.stdout
    finally:
        server.stop()
