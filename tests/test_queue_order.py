"""What an agent's queue holds and in which order, on both databases."""

from __future__ import annotations

from datetime import timedelta

from registry.models import Concern, Customer
from registry.queue import QueueAgent, QueueFilter, queue_page
from registry.types import utcnow

NOW = utcnow()


def _concerns(sessions, specs: list[dict]) -> None:
    with sessions.begin() as session:
        customer = Customer(email="q@example.com", name="Quinn")
        session.add(customer)
        session.flush()
        for n, spec in enumerate(specs):
            due = spec.pop("due", None)
            session.add(Concern(
                id=spec.pop("id"), workflow_id=f"wf-{n}", customer_id=customer.id, subject=spec.pop("subject", "S"),
                channel="web", status=spec.pop("status", "open"), level=spec.pop("level", 1),
                skills=spec.pop("skills", []), next_due_at=NOW + timedelta(minutes=due) if due is not None else None,
                created_at=NOW - timedelta(minutes=n), **spec))


def _ids(sessions, agent: QueueAgent, **kw) -> tuple[list[str], bool]:
    with sessions.read() as session:
        rows, more = queue_page(session=session, agent=agent, f=QueueFilter(**kw))
    return [r.id for r in rows], more


def test_my_queue_is_my_level_and_skills_plus_my_claims_due_first_paused_last(sessions):
    _concerns(sessions, [
        {"id": "CCR-A", "due": 30},
        {"id": "CCR-B", "due": 5},
        {"id": "CCR-C", "due": 10, "skills": ["billing"]},
        {"id": "CCR-D", "due": 1, "skills": ["security"]},             # a skill Ada lacks
        {"id": "CCR-E", "due": 2, "level": 2},                         # another level
        {"id": "CCR-F", "due": 20, "level": 3, "assignee_id": 7, "assignee_name": "Ada"},  # hers, escalated
        {"id": "CCR-G", "status": "waiting_customer"},                 # paused: no due time
        {"id": "CCR-H", "due": 3, "assignee_id": 8, "assignee_name": "Bo"},  # claimed by a colleague
        {"id": "CCR-I", "due": 4, "status": "resolved"},
        {"id": "CCR-J", "status": "open"},                             # open without a running clock
        {"id": "CCR-N", "due": 7, "assignee_id": 7, "assignee_name": "Ada"},  # hers, at her level: shown once
        {"id": "CCR-O", "status": "waiting_customer", "assignee_id": 7, "assignee_name": "Ada"},  # hers, paused
    ])
    ada = QueueAgent(id=7, level=1, skills=["billing", "general"])
    mine = ["CCR-H", "CCR-B", "CCR-N", "CCR-C", "CCR-F", "CCR-A", "CCR-G", "CCR-J", "CCR-O"]
    assert _ids(sessions, ada) == (mine, False)
    for limit in (3, 6, 7, 8):
        assert _ids(sessions, ada, limit=limit) == (mine[:limit], True)
    # newest first: created_at goes down with the position in the list above
    newest = ["CCR-A", "CCR-B", "CCR-C", "CCR-F", "CCR-G", "CCR-H", "CCR-J", "CCR-N", "CCR-O"]
    assert _ids(sessions, ada, sort="newest") == (newest, False)
    assert _ids(sessions, ada, sort="newest", limit=4) == (newest[:4], True)
    assert _ids(sessions, ada, status="waiting_customer") == (["CCR-G", "CCR-O"], False)
    # someone without a level of their own sees only their claims
    assert _ids(sessions, QueueAgent(id=7, level=None)) == (["CCR-N", "CCR-F", "CCR-O"], False)
    # everything, or one level of it, whoever holds it
    everything = ["CCR-D", "CCR-E", "CCR-H", "CCR-B", "CCR-N", "CCR-C", "CCR-F", "CCR-A", "CCR-G", "CCR-J", "CCR-O"]
    assert _ids(sessions, ada, scope="all") == (everything, False)
    assert _ids(sessions, ada, scope="all", level=3) == (["CCR-F"], False)
    assert _ids(sessions, ada, scope="all", status="resolved") == (["CCR-I"], False)


def test_filters_and_search_narrow_the_queue(sessions):
    _concerns(sessions, [
        {"id": "CCR-K", "due": 5, "subject": "Refund 100% please", "priority": "urgent"},
        {"id": "CCR-L", "due": 6, "subject": "Where is my parcel", "category": "orders"},
        {"id": "CCR-M", "due": 7, "subject": "refund_missing", "sla_state": "breached"},
    ])
    ada = QueueAgent(id=7, level=1, skills=[])
    # Words, names and parts of ids are searched in tests/test_queue_search.py; a whole id needs no document.
    assert _ids(sessions, ada, q="ccr-l")[0] == ["CCR-L"]
    assert _ids(sessions, ada, priority="urgent")[0] == ["CCR-K"]
    assert _ids(sessions, ada, category="orders")[0] == ["CCR-L"]
    assert _ids(sessions, ada, sla_state="breached")[0] == ["CCR-M"]
    assert _ids(sessions, ada, priority="low") == ([], False)
