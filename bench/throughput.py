"""Concerns end to end versus a raw Temporal baseline, on one dev server in one run.

Concern path: open (registry + start) → e-level `classify` → human step → claim and resolve updates → end.
Baseline: start → one activity → one signal → complete. Prints both rates and their ratio.

    python -m bench.throughput --count 2000 --in-flight 100
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import yaml
from sqlmodel import select
from temporalio.worker import Worker

from api.catalog import Catalog
from bench.raw import RawWorkflow, raw_step
from api.intake import Intake
from registry.db import Sessions, make_engine
from registry.migrate import upgrade
from registry.models import Concern
from registry.settings import Settings
from registry.sop_store import publish
from sops.schema import SopDefinition
from worker import build_worker
from workflows.client import make_client
from workflows.concern import ConcernWorkflow
from workflows.payloads import AgentAction, AgentRef

AGENT = AgentRef(id=1, name="Bench", level=1)


async def _bounded(count: int, in_flight: int, one) -> float:
    gate = asyncio.Semaphore(in_flight)

    async def run(i: int) -> None:
        async with gate:
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(count)))
    return count / (time.perf_counter() - start)


async def raw_rate(client, count: int, in_flight: int) -> float:
    queue = f"raw-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[RawWorkflow], activities=[raw_step]):
        async def one(i: int) -> None:
            handle = await client.start_workflow(RawWorkflow.run, str(i), id=f"{queue}-{i}", task_queue=queue)
            await handle.signal(RawWorkflow.finish)
            await handle.result()

        return await _bounded(count, in_flight, one)


class QueueWatcher:
    """Learns when concerns reach the agents' queue the way the queue page does: one query for all of them."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.waiting: dict[str, asyncio.Future] = {}

    async def arrived(self, concern_id: str) -> None:
        future = asyncio.get_running_loop().create_future()
        self.waiting[concern_id] = future
        await future

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            if not self.waiting:
                continue
            with self.sessions.begin() as session:
                ids = list(self.waiting)
                rows = session.exec(select(Concern.id).where(Concern.id.in_(ids), Concern.step == "level1"))
                for concern_id in rows:
                    self.waiting.pop(concern_id).set_result(None)


async def concern_rate(client, settings: Settings, sessions: Sessions, count: int, in_flight: int) -> float:
    intake = Intake(sessions=sessions, client=client, settings=settings, catalog=Catalog.load())
    watcher = QueueWatcher(sessions)
    watching = asyncio.create_task(watcher.run())
    async with build_worker(client, settings, sessions):
        async def one(i: int) -> None:
            concern = await intake.open(email=f"bench{i}@example.com", subject=f"Bench {i}", body="Help",
                                        channel="api", category="bench")
            handle = client.get_workflow_handle_for(ConcernWorkflow.run, concern.workflow_id)
            await watcher.arrived(concern.id)
            await handle.execute_update(ConcernWorkflow.act, AgentAction(type="claim", agent=AGENT))
            await handle.execute_update(ConcernWorkflow.act, AgentAction(type="resolve", agent=AGENT, text="Done"))
            await handle.result()

        try:
            return await _bounded(count, in_flight, one)
        finally:
            watching.cancel()


class CpuMeter:
    """CPU seconds spent per workflow by this process (clients, worker, registry) and by the dev server.

    Less noisy than rates on a shared machine: it shows where the work goes, not how long it waited.
    """

    def __init__(self, server_pid: int) -> None:
        self.server = psutil.Process(server_pid)
        self.last = self._now()

    def _now(self) -> tuple[float, float]:
        server = self.server.cpu_times()
        return time.process_time(), server.user + server.system

    def lap(self, count: int) -> str:
        now = self._now()
        here, server = ((b - a) * 1000 / count for a, b in zip(self.last, now))
        self.last = now
        return f"CPU per workflow: {here:.1f} ms here, {server:.1f} ms dev server"


def start_dev_server(folder: Path, port: int, in_memory: bool) -> subprocess.Popen:
    binary = Path(sys.executable).parent / "temporal"
    cmd = [str(binary), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless",
           "--log-level", "error"]
    if not in_memory:
        cmd += ["--db-filename", str(folder / "temporal.db")]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--database-url", default=None, help="registry database (default: SQLite in a temp folder)")
    parser.add_argument("--in-memory", action="store_true", help="dev server without a database file")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ccr-bench-"))
    port = 17000 + (uuid.uuid4().int % 2000)
    server = start_dev_server(folder, port, args.in_memory)
    try:
        url = args.database_url or f"sqlite:///{folder / 'registry.db'}"
        upgrade(url)
        settings = Settings(data_dir=folder, database_url=url, temporal_address=f"127.0.0.1:{port}",
                            temporal_task_queue=f"bench-{uuid.uuid4().hex[:6]}", secret_key="bench")
        sessions = Sessions(make_engine(url))
        with sessions.begin() as session:
            definition = yaml.safe_load((Path(__file__).parent / "bench_sop.yaml").read_text())
            publish(session=session, definition=SopDefinition.model_validate(definition), by="bench")
        client = None
        for _ in range(100):
            try:
                client = await make_client(settings)
                break
            except Exception:
                await asyncio.sleep(0.2)
        meter = CpuMeter(server.pid)
        raw = await raw_rate(client, args.count, args.in_flight)
        raw_cpu = meter.lap(args.count)
        path = await concern_rate(client, settings, sessions, args.count, args.in_flight)
        path_cpu = meter.lap(args.count)
        print(f"raw Temporal baseline : {raw:7.1f} workflows/s ({args.count}, {args.in_flight} in flight; {raw_cpu})")
        print(f"concern path          : {path:7.1f} concerns/s ({args.count}, {args.in_flight} in flight; {path_cpu})")
        print(f"ratio                 : {path / raw:7.2f} (target ≥ 0.50)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    asyncio.run(main())
