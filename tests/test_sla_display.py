"""SLA figures read the same everywhere: one unit (hours), labelled, the due time on hover, met or breached once
stopped, and business time only for paused clocks, which say so."""

from __future__ import annotations

import re
from datetime import timedelta

from registry.models import Concern, Customer
from registry.types import utcnow
from tests.web_support import Agent, make_staff
from web.agent_view import clock_rows, span

NOW = utcnow()


def test_durations_have_one_unit_and_clocks_say_what_they_count():
    assert span(27 * 3600) == "27h 00m"          # three Berlin working days: never "1d 3h"
    assert span(51 * 3600 + 600) == "51h 10m"
    assert span(12 * 60 + 5) == "12m" and span(40) == "40s"
    due = NOW + timedelta(hours=5, minutes=30, seconds=20)
    rows = {r["name"]: r for r in clock_rows([
        {"name": "resolution", "state": "running", "due_at": due.isoformat(), "target": 97200, "elapsed": 0},
        {"name": "first_response", "state": "stopped", "breached": True},
        {"name": "next_response", "state": "stopped", "breached": False},
        {"name": "ola_l1", "state": "paused", "elapsed": 4 * 3600, "target": 27 * 3600},
    ], NOW)}
    assert rows["resolution"]["text"] == "5h 30m left"
    assert rows["resolution"]["hover"] == f"due {due.strftime('%a %Y-%m-%d %H:%M')} UTC"
    assert rows["first_response"]["text"] == "breached" and rows["next_response"]["text"] == "met"
    assert rows["ola_l1"]["text"] == "paused · 23h 00m business time left"
    assert rows["ola_l1"]["hover"].startswith("4h 00m of 27h 00m business time used")


def _concerns(desk) -> dict[str, str]:
    now = utcnow()  # the page counts from the moment it is read, not from when this module was imported
    clocks = lambda **kw: [{"name": "resolution", "target": 97200, "elapsed": 7200, **kw}]  # noqa: E731
    rows = {
        "CCR-RUN00001": dict(status="open", next_due_at=now + timedelta(hours=30, minutes=5),
                             clocks=clocks(state="running")),
        "CCR-LATE0001": dict(status="open", next_due_at=now - timedelta(minutes=45), sla_state="breached",
                             clocks=clocks(state="running", breached=True)),
        "CCR-WAIT0001": dict(status="waiting_customer", sla_state="paused", clocks=clocks(state="paused")),
        "CCR-DONE0001": dict(status="resolved", clocks=clocks(state="stopped")),
        "CCR-MISS0001": dict(status="closed", clocks=clocks(state="stopped", breached=True)),
    }
    with desk.sessions.begin() as session:
        customer = Customer(email="sla@example.com", name="Sal")
        session.add(customer)
        session.flush()
        for n, (cid, values) in enumerate(rows.items()):
            session.add(Concern(id=cid, workflow_id=f"sla-{n}", customer_id=customer.id, subject=f"Subject {cid}",
                                channel="web", level=1, **values))
    return rows


def _cell(page: str, concern_id: str) -> str:
    row = re.search(rf'<tr id="row-{concern_id}".*?</tr>', page, re.S).group(0)
    return re.search(r'<td class="sla [^"]*">(.*?)</td>', row, re.S).group(1)


async def test_the_queue_shows_time_left_business_time_paused_and_the_outcome_of_stopped_concerns(desk):
    _concerns(desk)
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, name="Lee")
    async with Agent(desk, "lee@desk.test") as lee:
        active = (await lee.http.get("/queue?scope=all")).text
        resolved = (await lee.http.get("/queue?scope=all&status=resolved")).text
        closed = (await lee.http.get("/queue?scope=all&status=closed")).text
    running = _cell(active, "CCR-RUN00001")
    assert re.search(r'title="due \w{3} \d{4}-\d\d-\d\d \d\d:\d\d UTC">30h 0[45]m left</time>', running), running
    assert "overdue by 45m" in _cell(active, "CCR-LATE0001") or "overdue by 44m" in _cell(active, "CCR-LATE0001")
    waiting = _cell(active, "CCR-WAIT0001")
    assert "paused · 25h 00m business time left" in waiting and "2h 00m of 27h 00m business time used" in waiting
    assert ">met<" in _cell(resolved, "CCR-DONE0001") and "paused" not in _cell(resolved, "CCR-DONE0001")
    assert ">breached<" in _cell(closed, "CCR-MISS0001")
    assert not re.search(r"\d+d \d+h", active + resolved + closed)  # no "1d 3h" anywhere
