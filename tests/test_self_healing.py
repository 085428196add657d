"""`ccr up` heals itself: a killed dev server (and the worker that lost it) comes back with every concern intact,
and a dev server left behind by a killed `ccr up` does not block the next one. Real processes, kill -9."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
import psutil

from tests.conftest import free_port

ROOT = Path(__file__).parent.parent
CCR = [sys.executable, "-m", "ccr"]


def _up(data: Path, ports: dict, log: Path) -> subprocess.Popen:
    args = [*CCR, "up", "--data", str(data), "--http-port", str(ports["http"]), "--temporal-port",
            str(ports["temporal"]), "--ui-port", str(ports["ui"]), "--smtp-port", str(ports["smtp"])]
    env = {**os.environ, "CCR_LOG_FORMAT": "json"}
    return subprocess.Popen(args, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


def _until(what: str, check, proc: subprocess.Popen | None = None, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            assert proc.poll() is None, f"ccr up exited with {proc.returncode} while waiting for {what}"
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _ready(base: str) -> bool:
    return httpx.get(f"{base}/readyz", timeout=5).status_code == 200


def _dev_server(proc: subprocess.Popen) -> psutil.Process | None:
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if "start-dev" in " ".join(child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def _token(data: Path, email: str) -> dict:
    done = subprocess.run([*CCR, "token", "create", "--email", email, "--data", str(data)], capture_output=True,
                          text=True, cwd=ROOT, check=True)
    return {"Authorization": f"Bearer {done.stdout.strip()}"}


def _lines(log: Path) -> list[dict]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                pass
    return found


def test_a_killed_dev_server_comes_back_and_a_leftover_one_does_not_block_the_next_up(tmp_path):
    data, log = tmp_path / "var", tmp_path / "up.log"
    ports = {k: free_port() for k in ("http", "temporal", "ui", "smtp")}
    base = f"http://127.0.0.1:{ports['http']}"
    proc = _up(data, ports, log)
    try:
        _until("the desk to be ready", lambda: _ready(base), proc)
        admin, agent = _token(data, "admin@demo.test"), _token(data, "agent1@demo.test")
        created = httpx.post(f"{base}/api/concerns", headers=admin, timeout=30, json={
            "customer": {"email": "kept@example.com"}, "subject": "Kept through crashes", "body": "Charged twice",
            "channel": "api"}).json()
        url = f"{base}/api/concerns/{created['id']}"
        _until("level 1", lambda: httpx.get(url, headers=admin, timeout=10).json()["step"] == "level1", proc)

        first = _dev_server(proc)
        first.kill()  # kill -9
        _until("the restart to be logged", lambda: any(
            "restarting the Temporal dev server" in line.get("event", "") for line in _lines(log)), proc)
        _until("the desk to answer again", lambda: _ready(base), proc)
        second = _dev_server(proc)
        assert second is not None and second.pid != first.pid
        stopped = [line for line in _lines(log) if "the Temporal dev server stopped" in line.get("event", "")]
        assert stopped and "killed by signal 9" in stopped[0]["event"]
        assert httpx.get(url, headers=agent, timeout=10).json()["step"] == "level1"
        claimed = _until("the agent's claim", lambda: (r := httpx.post(
            f"{url}/actions", headers=agent, json={"type": "claim"}, timeout=30)).status_code == 200 and r, proc)
        assert claimed.json()["assignee_name"]

        # Mail after the restart: the SMTP listener files it, and its concern's id finds its lines.
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "mo@example.com", "support@ccr.localhost", "Logged"
        message["Message-ID"] = "<healing-1@example.com>"
        message.set_content("Please trace this one")
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30) as smtp:
            smtp.send_message(message)
        mailed = _until("the mailed concern", lambda: next(
            (c for c in httpx.get(f"{base}/api/concerns?limit=200", headers=admin, timeout=10).json()["items"]
             if c["subject"] == "Logged"), None), proc)
        httpx.get(f"{base}/api/concerns/{mailed['id']}", headers=admin, timeout=10)
        about = _until("log lines from web, worker and SMTP", lambda: (lines := [
            line for line in _lines(log) if line.get("concern_id") == mailed["id"]]) and {
            "ccr.web", "api.mail_intake"} <= {line["logger"] for line in lines} and any(
            line.get("workflow_id", "").endswith(mailed["id"]) and line["logger"].startswith(("activities", "temporalio"))
            for line in lines) and lines, proc)
        assert all(line["workflow_id"] == f"concern-{mailed['id']}" for line in about)
    finally:
        leftover = _dev_server(proc)
        proc.kill()  # kill -9 of `ccr up` itself: its dev server is left running
        proc.wait(30)
    assert leftover is not None and leftover.is_running()

    proc = _up(data, ports, log)
    try:
        _until("the second desk to be ready", lambda: _ready(base), proc)
        assert not leftover.is_running() or leftover.status() == psutil.STATUS_ZOMBIE
        assert any(f"(pid {leftover.pid})" in line.get("event", "") for line in _lines(log)) or \
            f"(pid {leftover.pid})" in log.read_text()
        again = httpx.get(url, headers=agent, timeout=10).json()
        assert again["step"] == "level1" and again["assignee_name"]
    finally:
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert proc.returncode == 0
    time.sleep(0.5)
    assert [pid for pid in children if psutil.pid_exists(pid) and
            psutil.Process(pid).status() != psutil.STATUS_ZOMBIE] == []
    assert not (data / "temporal.pid").exists()
