"""Real trouble for /ops to show: a relay that refuses, an order system that fails, a workflow whose code changed."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from temporalio import workflow

from tests.conftest import free_port
from tests.web_support import make_staff
from sops.schema import SopDefinition
from registry.sop_store import publish


class RefusingRelay:
    """An SMTP relay that answers 451 (try later) to every recipient while `refusing`, and keeps what it takes."""

    def __init__(self) -> None:
        self.refusing = True
        self.taken: list = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refusing:
            return "451 4.3.0 relay overloaded, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.taken.append(envelope)
        return "250 2.0.0 Ok: queued"


class FailingOrderSystem(ThreadingHTTPServer):
    """An order API that answers 500 for every order until an order is `released`, then 404 for it."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.released: set[str] = set()
        self.hits = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/orders/{{order}}"

    def start(self) -> FailingOrderSystem:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: FailingOrderSystem

    def do_GET(self) -> None:  # noqa: N802
        self.server.hits += 1
        order = self.path.rsplit("/", 1)[-1]
        status = 404 if order in self.server.released else 500
        body = json.dumps({"error": "database down" if status == 500 else "no such order"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass


OPS_SOPS = [
    {"id": "ops-unstaffed", "title": "Needs a skill nobody has", "applies_to": {"categories": ["ops-unstaffed"]},
     "sla": "slow", "start": "ack",
     "steps": {"ack": {"type": "notify", "template": "acknowledge", "next": "expert"},
               "expert": {"type": "human", "level": 1, "skills": ["klingon"], "outcomes": {"resolved": "close"}},
               "close": {"type": "end", "result": "resolved"}}},
    {"id": "ops-orders", "title": "Where is my order", "applies_to": {"categories": ["ops-orders"]},
     "sla": "slow", "start": "status",
     "steps": {"status": {"type": "automate", "action": "order_status",
                          "outcomes": {"found": "close", "not_found": "level1", "unavailable": "level1"}},
               "level1": {"type": "human", "level": 1, "outcomes": {"resolved": "close"}},
               "close": {"type": "end", "result": "resolved"}}},
]


def publish_ops_sops(sessions) -> None:
    with sessions.begin() as session:
        for sop in OPS_SOPS:
            publish(session=session, definition=SopDefinition.model_validate(sop), by="tests")


def sre(desk) -> dict:
    staff = make_staff(desk.sessions, "sre@desk.test", "sre", name="Sam Sre", token=True, skills=())
    staff["auth"] = {"Authorization": f"Bearer {staff['token']}"}
    return staff


async def ops_of(desk, auth, predicate, timeout: float = 30) -> dict:
    """Poll GET /api/ops until `predicate(view)` holds."""
    deadline = time.monotonic() + timeout
    view = None
    while time.monotonic() < deadline:
        response = await desk.http.get("/api/ops", headers=auth)
        assert response.status_code == 200, response.text
        view = response.json()
        if predicate(view):
            return view
        desk.app.state.ops_temporal = None  # ask Temporal afresh rather than wait out the cache
        await asyncio.sleep(0.3)
    raise AssertionError(f"/api/ops never showed it: {json.dumps(view, default=str)[:3000]}")


@workflow.defn(name="ConcernWorkflow", sandboxed=False)
class ChangedConcernWorkflow:
    """The concern workflow after a careless change: it starts a timer where the shipped one writes the registry."""

    @workflow.run
    async def run(self, inp: dict) -> None:
        await workflow.sleep(3600)
