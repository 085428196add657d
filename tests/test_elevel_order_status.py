"""The `order_status` connector against a small order system on a real local socket: found, unknown, slow, failing."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from activities.elevel import AutomationContext, AutomationRequest
from activities.elevel.order_status import OrderStatus, find_order_number
from registry.db import Sessions, make_engine
from registry.settings import Settings

FAST_RETRIES = {"order_status_attempts": 3, "order_status_wait_initial": 0.05, "order_status_wait_max": 0.1}


class OrderSystem(ThreadingHTTPServer):
    """A shop's order API: each order number behaves as its test needs, and every request is counted."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OrderHandler)
        self.hits: Counter[str] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/orders/{{order}}"


class _OrderHandler(BaseHTTPRequestHandler):
    server: OrderSystem

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        order = self.path.rsplit("/", 1)[-1]
        self.server.hits[order] += 1
        self.server.headers_seen.append(dict(self.headers))
        seen = self.server.hits[order]
        if order == "10001":
            self._send(200, {"status": "shipped", "carrier": "DHL"})
        elif order == "AB-2002":
            self._send(200, "in transit", content_type="text/plain")
        elif order == "50303":
            self._send(503, {"error": "warming up"}) if seen <= 2 else self._send(200, {"status": "delivered"})
        elif order == "50000":
            self._send(500, {"error": "database down"})
        elif order == "77777":
            self.server.release.wait(10)  # slower than any client waits
            self._send(200, {"status": "too late"})
        elif order == "40100":
            self._send(401, {"error": "bad key"})
        else:
            self._send(404, {"error": "no such order"})

    def _send(self, status: int, body, content_type: str = "application/json") -> None:
        data = (json.dumps(body) if content_type == "application/json" else body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting, as the slow order is meant to make it

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
        pass


@pytest.fixture
def order_system() -> Iterator[OrderSystem]:
    server = OrderSystem()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


async def _lookup(subject: str, body: str = "", **options):
    engine = make_engine("sqlite://")
    request = AutomationRequest(action="order_status", concern_id="C-9", workflow_id="concern-C-9", step="status",
                                seq=2, customer_id=1, customer_name="Ann", subject=subject, body=body)
    try:
        async with httpx.AsyncClient() as http:
            ctx = AutomationContext(sessions=Sessions(engine), settings=Settings(), http=http,
                                    options={**FAST_RETRIES, **options})
            return await OrderStatus().run(request, ctx)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("Where is my order #48213?", "48213"),
        ("order 55120 has not arrived", "55120"),
        ("Order number: 77102 is stuck", "77102"),
        ("my order no. ab-2002 please", "AB-2002"),
        ("re: # 60311 cancel", "60311"),
        ("I ordered 3 items on 12 May", None),
        ("call me on 0612345678", None),
        ("order 12", None),
    ],
)
def test_order_numbers_are_found_in_what_customers_write(text, order):
    assert find_order_number(text) == order


async def test_a_known_order_reports_its_status(order_system):
    result = await _lookup("Where is my order?", "Order #10001 was due yesterday", order_status_url=order_system.url,
                           order_status_headers={"Authorization": "Bearer shop-key"})
    assert result.outcome == "found"
    assert result.message == "The status of your order 10001 is: shipped."
    assert order_system.hits["10001"] == 1
    assert order_system.headers_seen[0]["Authorization"] == "Bearer shop-key"


async def test_a_plain_text_answer_and_a_lettered_order_number(order_system):
    result = await _lookup("Status of order AB-2002", order_status_url=order_system.url)
    assert result.outcome == "found" and "order AB-2002 is: in transit." in result.message


async def test_an_unknown_order_or_no_order_number_is_not_found(order_system):
    unknown = await _lookup("order 40404", order_status_url=order_system.url)
    assert unknown.outcome == "not_found" and unknown.message is None
    assert order_system.hits["40404"] == 1, "a 404 is an answer, not a failure to retry"
    nameless = await _lookup("Where is my parcel?", "It should have come last week", order_status_url=order_system.url)
    assert nameless.outcome == "not_found" and "no order number" in nameless.detail
    assert sum(order_system.hits.values()) == 1


async def test_server_errors_are_retried_until_the_answer_comes(order_system):
    result = await _lookup("order #50303", order_status_url=order_system.url)
    assert result.outcome == "found" and "is: delivered." in result.message
    assert order_system.hits["50303"] == 3
    assert "(3 attempts)" in result.detail


async def test_a_slow_order_system_is_unavailable_after_every_attempt_timed_out(order_system):
    result = await _lookup("order #77777", order_status_url=order_system.url, order_status_timeout=0.2)
    assert result.outcome == "unavailable" and result.message is None
    assert order_system.hits["77777"] == 3
    assert "after 3 attempts" in result.detail


async def test_a_failing_order_system_is_unavailable_after_the_configured_attempts(order_system):
    result = await _lookup("order #50000", order_status_url=order_system.url, order_status_attempts=2)
    assert result.outcome == "unavailable" and "answered 500 after 2 attempts" in result.detail
    assert order_system.hits["50000"] == 2


async def test_a_refusal_is_not_retried(order_system):
    result = await _lookup("order #40100", order_status_url=order_system.url)
    assert result.outcome == "unavailable" and "refused with 401" in result.detail
    assert order_system.hits["40100"] == 1


async def test_an_unreachable_or_unconfigured_order_system_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = await _lookup("order #10001", order_status_url=f"http://127.0.0.1:{closed_port}/orders/{{order}}")
    assert down.outcome == "unavailable" and "after 3 attempts" in down.detail
    unconfigured = await _lookup("order #10001")
    assert unconfigured.outcome == "unavailable" and "order_status_url" in unconfigured.detail
