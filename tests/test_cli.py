"""The `ccr` command as an operator meets it: `ccr up` end to end, and one clear line for each mistake."""

from __future__ import annotations


import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).parent.parent
CCR = [sys.executable, "-m", "ccr"]


def ccr(*args, env=None, cwd=None, timeout=120):
    return subprocess.run([*CCR, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT,
                          env={**os.environ, **(env or {})})


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "ccr up exited"
        try:
            r = httpx.get(url, timeout=3)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("ccr up never became ready")


def _up(data: Path, ports: dict) -> subprocess.Popen:
    args = [*CCR, "up", "--data", str(data), "--http-port", str(ports["http"]), "--temporal-port",
            str(ports["temporal"]), "--ui-port", str(ports["ui"]), "--smtp-port", str(ports["smtp"])]
    return subprocess.Popen(args, cwd=data.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen) -> tuple[str, list[int]]:
    children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    time.sleep(0.5)
    return out, [pid for pid in children if psutil.pid_exists(pid) and
                 psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def test_ccr_up_runs_the_whole_desk_and_stops_cleanly(tmp_path):
    data = tmp_path / "var"
    ports = {k: free_port() for k in ("http", "temporal", "ui", "smtp")}
    base = f"http://127.0.0.1:{ports['http']}"
    proc = _up(data, ports)
    try:
        ready = _wait_ready(f"{base}/readyz", proc)
        assert ready["checks"]["worker"]["ok"]
        token = ccr("token", "create", "--email", "admin@demo.test", "--data", str(data)).stdout.strip()
        auth = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{base}/api/concerns", headers=auth, timeout=30, json={
            "customer": {"email": "first@example.com"}, "subject": "Invoice wrong", "body": "Charged twice",
            "channel": "api"}).json()
        concern = _poll(base, auth, created["id"], lambda c: c["step"] == "level1")
        assert httpx.get(f"http://127.0.0.1:{ports['ui']}/", timeout=10).status_code == 200
        with socket.create_connection(("127.0.0.1", ports["smtp"]), timeout=5) as smtp:
            assert smtp.recv(100).startswith(b"220")
    finally:
        out, survivors = _stop(proc)
    assert proc.returncode == 0, out
    assert "demo-password" in out and f"http://127.0.0.1:{ports['ui']}/" in out
    assert survivors == []
    # A second run continues where the first stopped: the same concern, still in its queue, still acting.
    proc = _up(data, ports)
    try:
        _wait_ready(f"{base}/readyz", proc)
        token = ccr("token", "create", "--email", "agent1@demo.test", "--data", str(data)).stdout.strip()
        agent = {"Authorization": f"Bearer {token}"}
        again = httpx.get(f"{base}/api/concerns/{concern['id']}", headers=agent, timeout=10).json()
        assert again["step"] == "level1" and again["status"] == "open"
        claimed = httpx.post(f"{base}/api/concerns/{concern['id']}/actions", headers=agent, json={"type": "claim"},
                             timeout=30)
        assert claimed.status_code == 200, claimed.text
        listed = httpx.get(f"{base}/api/concerns?limit=200", headers=agent, timeout=10).json()["items"]
        assert len([c for c in listed if c["subject"] == "Cannot sign in"]) == 1  # demo data seeded once
    finally:
        out, survivors = _stop(proc)
    assert survivors == []


def _poll(base, auth, concern_id, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = httpx.get(f"{base}/api/concerns/{concern_id}", headers=auth, timeout=10).json()
        if predicate(got):
            return got
        time.sleep(0.3)
    raise AssertionError(got)


def _one_clear_line(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if line]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_wrong_database_url_says_what_to_fix(tmp_path):
    done = ccr("db", "upgrade", env={"CCR_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}, cwd=tmp_path)
    _one_clear_line(done, "CCR_DATABASE_URL")


def test_an_unreachable_temporal_says_what_to_fix(tmp_path):
    # Port 1 is privileged and never served here, so the connection is refused at once.
    done = ccr("worker", env={"CCR_TEMPORAL_ADDRESS": "127.0.0.1:1",
                              "CCR_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    _one_clear_line(done, "cannot reach Temporal", "CCR_TEMPORAL_ADDRESS")


def test_a_missing_temporal_binary_says_what_to_fix(tmp_path):
    done = ccr("up", "--data", str(tmp_path / "var"), "--http-port", str(free_port()), "--temporal-port",
               str(free_port()), "--ui-port", str(free_port()), "--smtp-port", str(free_port()),
               env={"CCR_TEMPORAL_BIN": str(tmp_path / "no-temporal")}, cwd=tmp_path)
    _one_clear_line(done, "no-temporal")


def test_a_port_in_use_says_which_option_to_change(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = ccr("up", "--data", str(tmp_path / "var"), "--http-port", str(port), cwd=tmp_path)
    _one_clear_line(done, f"port {port}", "--http-port")


@pytest.mark.parametrize("name", ["general-inquiry", "account-access", "complaint"])
def test_sop_validate_and_graph_on_shipped_sops(name):
    path = ROOT / "sops" / "definitions" / f"{name}.yaml"
    done = ccr("sop", "validate", str(path))
    assert done.returncode == 0 and done.stdout.strip().endswith("valid")
    graph = ccr("sop", "graph", str(path)).stdout
    assert graph.startswith("flowchart TD")


def test_sop_validate_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\ntitle: Bad\nsla: standard\nstart: a\nsteps:\n"
                   "  a: {type: automate, action: nope, outcomes: {x: b}}\n"
                   "  c: {type: human, level: 1, escalate_after: soon, outcomes: {resolved: z}}\n")
    done = ccr("sop", "validate", str(bad))
    assert done.returncode == 1
    for needle in ("'nope'", "'b' does not exist", "soon", "'z' does not exist"):
        assert needle in done.stdout, (needle, done.stdout)


def test_user_add_and_token_create(tmp_path):
    data = str(tmp_path / "var")
    added = ccr("user", "add", "--email", "ann@desk.test", "--password", "long-enough", "--role", "agent",
                "--level", "2", "--skills", "billing,orders", "--data", data)
    assert added.returncode == 0 and "created agent ann@desk.test" in added.stdout
    refused = ccr("user", "add", "--email", "bo@desk.test", "--password", "long-enough", "--role", "agent",
                  "--data", data)
    _one_clear_line(refused, "level")
    prompted = subprocess.run([*CCR, "user", "add", "--email", "cy@desk.test", "--role", "auditor", "--data", data],
                              input="typed-not-shown\ntyped-not-shown\n", capture_output=True, text=True, timeout=120,
                              cwd=ROOT)
    assert prompted.returncode == 0 and "typed-not-shown" not in prompted.stdout, prompted.stdout
    assert "created auditor cy@desk.test" in prompted.stdout
    token = ccr("token", "create", "--email", "ann@desk.test", "--data", data)
    assert token.stdout.startswith("ccr_")
    published = ccr("sop", "publish", str(ROOT / "sops/definitions/complaint.yaml"), "--data", data)
    assert "complaint v1 published" in published.stdout
    again = ccr("sop", "publish", str(ROOT / "sops/definitions/complaint.yaml"), "--data", data)
    assert "complaint v1 unchanged" in again.stdout



def test_tokens_are_listed_and_revoked_and_staff_deactivated(tmp_path):
    data = str(tmp_path / "var")
    ccr("user", "add", "--email", "ann@desk.test", "--password", "long-enough", "--role", "integration",
        "--data", data)
    first = ccr("token", "create", "--email", "ann@desk.test", "--name", "shop", "--data", data).stdout.strip()
    ccr("token", "create", "--email", "ann@desk.test", "--name", "crm", "--data", data)
    listed = ccr("token", "list", "--data", data).stdout.splitlines()
    assert [line.split("\t")[1:3] for line in listed] == [["ann@desk.test", "shop"], ["ann@desk.test", "crm"]]
    assert all("never used" in line for line in listed) and first not in "\n".join(listed)
    shop_id = listed[0].split("\t")[0]
    revoked = ccr("token", "revoke", shop_id, "--data", data)
    assert revoked.returncode == 0 and f"revoked token {shop_id} (shop) of ann@desk.test" in revoked.stdout
    assert [line.split("\t")[2] for line in ccr("token", "list", "--data", data).stdout.splitlines()] == ["crm"]
    _one_clear_line(ccr("token", "revoke", shop_id, "--data", data), f"no API token with id {shop_id}")
    _one_clear_line(ccr("token", "list", "--email", "nobody@desk.test", "--data", data), "nobody@desk.test")

    assert "deactivated integration ann@desk.test" in ccr("user", "deactivate", "--email", "ann@desk.test",
                                                          "--data", data).stdout
    assert ccr("user", "list", "--data", data).stdout.split("\t")[-1].strip() == "deactivated"
    assert "activated integration ann@desk.test" in ccr("user", "activate", "--email", "Ann@desk.test",
                                                        "--data", data).stdout
    assert ccr("user", "list", "--data", data).stdout.split("\t")[-1].strip() == "active"
    _one_clear_line(ccr("user", "deactivate", "--email", "nobody@desk.test", "--data", data), "ccr user list")


def test_staff_are_promoted_and_given_a_new_password(tmp_path):
    data = str(tmp_path / "var")
    ccr("user", "add", "--email", "bo@desk.test", "--password", "long-enough", "--role", "agent", "--level", "1",
        "--skills", "general", "--data", data)
    updated = ccr("user", "update", "--email", "bo@desk.test", "--level", "2", "--skills", "billing, orders",
                  "--data", data)
    assert "updated bo@desk.test: agent L2, skills billing, orders" in updated.stdout, updated.stderr
    assert ccr("user", "list", "--data", data).stdout.split("\t")[2:5] == ["agent", "L2", "billing,orders"]
    _one_clear_line(ccr("user", "update", "--email", "bo@desk.test", "--role", "boss", "--data", data), "'boss'")
    _one_clear_line(ccr("user", "update", "--email", "bo@desk.test", "--level", "7", "--data", data), "level")
    assert ccr("user", "list", "--data", data).stdout.split("\t")[2:4] == ["agent", "L2"]  # refusals change nothing
    moved = ccr("user", "update", "--email", "bo@desk.test", "--role", "auditor", "--data", data)
    assert "updated bo@desk.test: auditor, skills billing, orders" in moved.stdout, moved.stderr
    prompted = subprocess.run([*CCR, "user", "password", "--email", "bo@desk.test", "--data", data],
                              input="new-secret-1\nnew-secret-1\n", capture_output=True, text=True, timeout=120,
                              cwd=ROOT)
    assert prompted.returncode == 0 and "password set for bo@desk.test" in prompted.stdout
    assert "new-secret-1" not in prompted.stdout
    short = ccr("user", "password", "--email", "bo@desk.test", "--data", data, env={"CCR_NEW_PASSWORD": "short"})
    _one_clear_line(short, "8 characters")


def test_a_sop_naming_an_unregistered_action_fails_validation_and_publishing(tmp_path):
    sop = tmp_path / "robot.yaml"
    sop.write_text("id: robot\ntitle: Robot\nsla: standard\nstart: a\nsteps:\n"
                   "  a: {type: automate, action: ask_the_robot, outcomes: {done: z}}\n"
                   "  z: {type: end}\n")
    done = ccr("sop", "validate", str(sop))
    assert done.returncode == 1 and "ask_the_robot" in done.stdout
    refused = ccr("sop", "publish", str(sop), "--data", str(tmp_path / "var"))
    _one_clear_line(refused, "ask_the_robot")


def test_ccr_web_serves_one_desk_from_several_processes(tmp_path):
    """`ccr web --workers 2`: every process accepts the session signed by another, and all stop together."""
    import re

    data = tmp_path / "var"
    env = {"CCR_DATA_DIR": str(data), "CCR_TEMPORAL_ADDRESS": "127.0.0.1:1", "CCR_WEB_THREADS": "4"}
    added = ccr("user", "add", "--email", "dee@desk.test", "--password", "long-enough-pw", "--role", "agent",
                "--level", "1", "--data", str(data), env=env)
    assert added.returncode == 0, added.stderr
    port = free_port()
    proc = subprocess.Popen([*CCR, "web", "--port", str(port), "--workers", "2"], cwd=tmp_path,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/healthz", proc)
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True) if "python" in c.name()]
        assert len(workers) >= 2, workers
        with httpx.Client(base_url=base, timeout=10) as browser:
            form = browser.get("/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            signed_in = browser.post("/login", data={"email": "dee@desk.test", "password": "long-enough-pw",
                                                     "csrf_token": token})
            assert signed_in.status_code == 303
            cookies = dict(browser.cookies)
        for _ in range(12):  # a new connection each time, so both processes get some of them
            with httpx.Client(base_url=base, cookies=cookies, timeout=10) as fresh:
                page = fresh.get("/queue")
                assert page.status_code == 200 and "My queue" in page.text
    finally:
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    time.sleep(0.5)
    assert [p for p in children if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE] == []
