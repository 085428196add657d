"""The agent queue and concern page at 100,000 concerns, with 8 concurrent clients on loopback.

Seeds the projection in bulk, serves the site with uvicorn in its own process and measures the queue
page, its polling fragment and a concern page: p50, p95 and requests/s, seen by the clients and inside
the server (the `Server-Timing` header the access middleware adds). Once per database:

    python -m bench.queue                                   # SQLite in a temporary folder
    python -m bench.queue --database-url sqlite --database-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import psutil
import sqlalchemy as sa

from api.security import create_user
from bench.seed import seed_projection
from registry.db import Sessions, make_engine
from registry.migrate import upgrade

PASSWORD = "bench-password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TIMING = re.compile(r"app;dur=([\d.]+)")


def prepare(url: str, folder: Path) -> tuple[str, str | None]:
    """A fresh database for `url` (a temp file for `sqlite`, a new schema on PostgreSQL); returns (url, schema)."""
    if url == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}", None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3D{schema}", schema


def seed(url: str, count: int) -> tuple[list[str], float]:
    """Migrate, add the bench agent and `count` concerns; returns some concern ids and the seconds it took."""
    upgrade(url)
    engine = make_engine(url)
    sessions = Sessions(engine)
    with sessions.begin() as session:
        agent = create_user(session=session, email="agent@bench.test", password=PASSWORD, role="agent", level=1,
                            name="Bench Agent", skills=["general", "accounts", "complaints"])
    started = time.perf_counter()
    # A few hundred colleagues hold the claims, as on a real desk; the bench agent holds some of them.
    ids = seed_projection(sessions, count, agent_ids=(agent.id, *range(100_000, 100_300)), timeline_for=2000)
    with engine.begin() as conn:
        for table in ("concern", "customer", "interaction"):
            conn.execute(sa.text(f"ANALYZE {table}"))
    took = time.perf_counter() - started
    engine.dispose()
    return ids[:2000], took


def serve(url: str, port: int, folder: Path, workers: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "CCR_DATABASE_URL": url, "CCR_SECRET_KEY": "bench-secret", "CCR_DATA_DIR": str(folder),
           "CCR_WEB_THREADS": str(threads),
           "CCR_TEMPORAL_ADDRESS": "127.0.0.1:9"}  # pages read the registry only; nothing needs Temporal here
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "web.app:create_site", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        env=env, cwd=Path(__file__).resolve().parent.parent)


async def signed_in_client(base: str) -> aiohttp.ClientSession:
    """A signed-in agent's browser. aiohttp costs the machine a fraction of httpx's CPU per request, which
    here the server would otherwise share with its own clients."""
    client = aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                   timeout=aiohttp.ClientTimeout(total=30),
                                   # A connection per request, as a reverse proxy in front of several web
                                   # processes balances requests: on kept-alive connections each client would
                                   # stay with the process that accepted it, and one process may hold most.
                                   connector=aiohttp.TCPConnector(force_close=True))
    for _ in range(200):
        try:
            async with client.get("/login") as page:
                token = CSRF.search(await page.text()).group(1)
            break
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    async with client.post("/login", data={"email": "agent@bench.test", "password": PASSWORD, "csrf_token": token},
                           allow_redirects=False) as response:
        assert response.status == 303, await response.text()
    return client


def cpu_seconds(server: subprocess.Popen) -> float:
    """CPU time used so far by the server and its worker processes."""
    root = psutil.Process(server.pid)
    total = 0.0
    for proc in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


async def measure(base: str, clients: int, per_client: int, paths, server: subprocess.Popen
                  ) -> tuple[list[float], list[float], float, float]:
    """Latencies seen by the clients and by the server (ms), requests per second over the run, and the
    server's CPU time per request (ms)."""
    pool = [await signed_in_client(base) for _ in range(clients)]
    seen, inside = [], []

    async def run(client: aiohttp.ClientSession, n: int, record: bool) -> None:
        for _ in range(n):
            path, headers = paths()
            started = time.perf_counter()
            async with client.get(path, headers=headers, allow_redirects=False) as response:
                await response.read()
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status == 200, (path, response.status)
            if record:
                seen.append(elapsed)
                inside.append(float(TIMING.search(response.headers["server-timing"]).group(1)))

    await asyncio.gather(*(run(c, 5, False) for c in pool))  # warm up caches and connections
    started, cpu = time.perf_counter(), cpu_seconds(server)
    await asyncio.gather(*(run(c, per_client, True) for c in pool))
    wall, cpu = time.perf_counter() - started, cpu_seconds(server) - cpu
    for client in pool:
        await client.close()
    return seen, inside, len(seen) / wall, cpu * 1000 / len(seen)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def bench_one(url: str, args) -> list[tuple]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        real_url, schema = prepare(url, folder)
        kind = "postgresql" if schema else "sqlite"
        print(f"[{kind}] seeding {args.count:,} concerns…", flush=True)
        ids, took = seed(real_url, args.count)
        print(f"[{kind}] seeded in {took:.1f} s", flush=True)
        port = 18000 + random.randint(0, 999)
        server = serve(real_url, port, folder, args.workers, args.threads)
        base = f"http://127.0.0.1:{port}"
        rows = []
        try:
            pages = {
                "queue page": lambda: ("/queue", {}),
                "queue poll (htmx)": lambda: ("/queue", {"HX-Request": "true"}),
                "concern page": lambda: (f"/concerns/{random.choice(ids)}", {}),
            }
            # One client shows what a page costs the server; eight show it under contention.
            for clients in sorted({1, args.clients}):
                for name, paths in pages.items():
                    seen, inside, rate, cpu = await measure(base, clients, args.requests, paths, server)
                    rows.append((kind, clients, name, len(seen), pct(seen, 50), pct(seen, 95), pct(inside, 50),
                                 pct(inside, 95), rate, cpu))
        finally:
            server.terminate()
            server.wait(15)
            if schema:
                engine = sa.create_engine(url)
                with engine.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                engine.dispose()
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", action="append", help="`sqlite` (a temp file) or a PostgreSQL URL; "
                        "repeat to compare (default: sqlite)")
    parser.add_argument("--count", type=int, default=100_000, help="concerns to seed (default 100,000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--requests", type=int, default=100, help="requests per client and page (default 100)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=40, help="threads per worker, CCR_WEB_THREADS (default 40)")
    args = parser.parse_args()
    rows = []
    for url in args.database_url or ["sqlite"]:
        rows += asyncio.run(bench_one(url, args))
    print(f"\n{args.count:,} concerns, {args.workers} uvicorn worker(s) of {args.threads} threads, loopback; "
          "times in ms")
    print(f"{'database':<11} {'clients':>7} {'page':<18} {'n':>5} {'p50':>7} {'p95':>7} {'server p50':>11} "
          f"{'server p95':>11} {'req/s':>7} {'server CPU/req':>15}")
    for kind, clients, name, n, p50, p95, s50, s95, rate, cpu in rows:
        print(f"{kind:<11} {clients:>7} {name:<18} {n:>5} {p50:>7.1f} {p95:>7.1f} {s50:>11.1f} {s95:>11.1f} "
              f"{rate:>7.0f} {cpu:>15.1f}")


if __name__ == "__main__":
    main()
