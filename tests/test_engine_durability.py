"""Durability: continue-as-new, a worker killed mid-flow, a restarted Temporal server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlmodel import func, select

from api.intake import Intake
from registry.db import Sessions, make_engine
from registry.models import Interaction, OutboxMail
from tests.conftest import DevServer, catalog_with_test_policies, fresh_database_url, make_settings, publish_all
from tests.engine_support import ADA, act, open_concern, timeline_kinds
from worker import build_worker
from workflows.client import make_client
from workflows.concern import ConcernWorkflow

ROOT = Path(__file__).parent.parent


async def test_long_concern_continues_as_new_with_its_state(desk):
    desk.settings.continue_after_events = 40
    desk.settings.reopen_window = "1s"
    concern = await open_concern(desk, category="breach", priority="low")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    handle = desk.client.get_workflow_handle_for(ConcernWorkflow.run, concern.workflow_id)
    first_run = (await handle.describe()).run_id
    await act(desk, concern, "claim", ADA)
    for i in range(12):
        await act(desk, concern, "note", ADA, text=f"note {i}")
    await desk.wait_for(concern.id, lambda c: c.seq > 12)
    described = await handle.describe()
    assert described.run_id != first_run
    state = await handle.query(ConcernWorkflow.state)
    assert state.assignee_name == "Ada" and state.step == "level1"
    await act(desk, concern, "resolve", ADA, text="Done after a long talk")
    await desk.wait_for(concern.id, lambda c: c.status == "closed", timeout=15)
    kinds = timeline_kinds(desk, concern.id)
    assert kinds.count("note") == 12 and kinds.count("claimed") == 1 and kinds.count("resolution") == 1


def _worker_process(settings) -> subprocess.Popen:
    env = {**os.environ, "CCR_DATABASE_URL": settings.database_url, "CCR_TEMPORAL_ADDRESS": settings.temporal_address,
           "CCR_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue, "CCR_DATA_DIR": str(settings.data_dir)}
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT, start_new_session=True)


class _Desk:
    def __init__(self, settings, sessions, client, intake):
        self.settings, self.sessions, self.client, self.intake = settings, sessions, client, intake

    async def wait_for(self, concern_id, predicate, timeout=20):
        from tests.conftest import Desk

        return await Desk.wait_for(self, concern_id, predicate, timeout)

    async def concern(self, concern_id):
        from tests.conftest import Desk

        return await Desk.concern(self, concern_id)


async def test_killed_worker_restarted_finishes_the_concern_with_nothing_duplicated(tmp_path, temporal_server,
                                                                                   temporal_client):
    url = fresh_database_url("sqlite", tmp_path)
    settings = make_settings(tmp_path, url, temporal_server.address, reopen_window="1s")
    sessions = Sessions(make_engine(url))
    publish_all(sessions)
    desk = _Desk(settings, sessions, temporal_client,
                 Intake(sessions=sessions, client=temporal_client, settings=settings,
                        catalog=catalog_with_test_policies()))
    proc = _worker_process(settings)
    try:
        concern = await open_concern(desk, category="breach", priority="low")
        await desk.wait_for(concern.id, lambda c: c.step == "level1", timeout=30)
        await act(desk, concern, "claim", ADA)
        await act(desk, concern, "reply", ADA, text="Working on it")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    worker = build_worker(temporal_client, settings, sessions)
    async with worker:
        await act(desk, concern, "resolve", ADA, text="Fixed")
        await desk.wait_for(concern.id, lambda c: c.status == "closed", timeout=20)
    kinds = timeline_kinds(desk, concern.id)
    assert kinds.count("claimed") == 1 and kinds.count("reply") == 1 and kinds.count("resolution") == 1
    assert [k for k in kinds if k == "step"] == ["step", "step"]  # level1 and close, each once
    with sessions.begin() as session:
        mails = session.exec(select(func.count()).select_from(OutboxMail)
                             .where(OutboxMail.concern_id == concern.id)).one()
        rows = session.exec(select(func.count()).select_from(Interaction)
                            .where(Interaction.concern_id == concern.id)).one()
    assert mails == 2  # the reply and the resolution, once each
    assert rows == len(kinds)


async def test_restarted_temporal_server_continues_the_concern(tmp_path):
    server = DevServer(db_file=tmp_path / "temporal.db").start()
    url = fresh_database_url("sqlite", tmp_path)
    settings = make_settings(tmp_path, url, server.address, reopen_window="1s")
    sessions = Sessions(make_engine(url))
    publish_all(sessions)
    client = None
    for _ in range(50):
        try:
            client = await make_client(settings)
            break
        except Exception:
            await asyncio.sleep(0.2)
    desk = _Desk(settings, sessions, client,
                 Intake(sessions=sessions, client=client, settings=settings, catalog=catalog_with_test_policies()))
    try:
        async with build_worker(client, settings, sessions):
            concern = await open_concern(desk, category="breach", priority="low")
            await desk.wait_for(concern.id, lambda c: c.step == "level1")
            await act(desk, concern, "claim", ADA)
        server.stop()
        server.start()  # same ports, same database file
        client = None
        for _ in range(100):
            try:
                client = await make_client(settings)
                await client.get_workflow_handle(concern.workflow_id).describe()
                break
            except Exception:
                await asyncio.sleep(0.2)
        desk.client = client
        async with build_worker(client, settings, sessions):
            state = await act(desk, concern, "resolve", ADA, text="Fixed after the restart")
            assert state.assignee_name == "Ada"
            await desk.wait_for(concern.id, lambda c: c.status == "closed", timeout=20)
    finally:
        server.stop()
