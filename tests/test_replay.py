"""Saved histories of every shipped SOP replay against today's interpreter (a non-deterministic change fails)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.concern import ConcernWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_shipped_sop_has_a_saved_history():
    shipped = {p.stem for p in (Path(__file__).parent.parent / "sops" / "definitions").glob("*.yaml")} - {"sla"}
    assert shipped <= {p.stem for p in HISTORIES}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path):
    replayer = Replayer(workflows=[ConcernWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()),
                                            raise_on_replay_failure=True)
    assert result.replay_failure is None


async def test_a_history_from_another_process_flow_fails_to_replay(tmp_path):
    """A history whose recorded commands differ from what the code decides is refused, not silently accepted."""
    history = json.loads(HISTORIES[0].read_text())
    for event in history["events"]:
        attrs = event.get("activityTaskScheduledEventAttributes")
        if attrs and attrs["activityType"]["name"] == "run_automation":
            attrs["activityType"]["name"] = "some_other_activity"
            break
    else:
        pytest.fail("the saved history has no automation step to tamper with")
    replayer = Replayer(workflows=[ConcernWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(WorkflowHistory.from_json("tampered", json.dumps(history)),
                                            raise_on_replay_failure=False)
    assert result.replay_failure is not None


def test_ccr_replay_command_checks_the_saved_histories():
    done = subprocess.run([sys.executable, "-m", "ccr", "replay", *map(str, HISTORIES)], capture_output=True,
                          text=True, cwd=Path(__file__).parent.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("replays") == len(HISTORIES)
