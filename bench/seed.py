"""Bulk-seed the concern projection with realistic rows, for the queue benchmark and the page tests."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import insert

from registry.concern_search import ConcernSearch, search_document
from registry.db import Sessions
from registry.models import Concern, Customer, Interaction
from registry.sop_store import publish
from registry.types import utcnow
from sops.loader import load_definitions

SUBJECTS = [
    "Invoice shows the wrong amount", "Cannot sign in", "Where is my order?", "Refund not received",
    "Password reset link expired", "Charged twice this month", "Parcel arrived damaged", "Change my address",
    "App crashes on start", "Cancel my subscription", "Two-factor code never arrives", "Wrong item delivered",
]
PRIORITIES = ["urgent"] * 5 + ["high"] * 20 + ["normal"] * 60 + ["low"] * 15
CHANNELS = ["web", "email", "api", "phone", "walk_in"]
STATUSES = ["open"] * 55 + ["waiting_customer"] * 10 + ["resolved"] * 15 + ["closed"] * 20


def _human_steps(definition: dict) -> list[tuple[str, int, list[str]]]:
    return [(sid, s["level"], list(s.get("skills") or [])) for sid, s in definition["steps"].items()
            if s["type"] == "human"]


def seed_projection(sessions: Sessions, count: int, *, seed: int = 7, agent_ids: tuple[int, ...] = (),
                    timeline_for: int = 200, batch: int = 5000, prefix: str = "Z") -> list[str]:
    """Insert `count` concerns (ids `CCR-<prefix>nnnnnnn`) with customers and first messages; returns the ids."""
    rnd = random.Random(seed)
    with sessions.begin() as session:
        sops = [publish(session=session, definition=d, by="bench")[0] for d in load_definitions().values()]
    sops = [(row, _human_steps(row.definition)) for row in sops if _human_steps(row.definition)]
    now = utcnow()
    customer_ids: list[int] = []
    with sessions.begin() as session:
        people = [{"email": f"bench-{prefix.lower()}{n}@example.test", "name": f"Customer {prefix}{n}",
                   "tier": "standard", "preferences": {}, "created_at": now} for n in range(max(1, count // 20))]
        for start in range(0, len(people), batch):
            customer_ids += session.execute(insert(Customer).returning(Customer.id), people[start:start + batch]
                                            ).scalars().all()
    ids: list[str] = []
    for start in range(0, count, batch):
        concerns, messages, documents = [], [], []
        for n in range(start, min(count, start + batch)):
            cid = f"CCR-{prefix}{n:07d}"
            ids.append(cid)
            row = _concern(rnd, cid, rnd.choice(customer_ids), sops, agent_ids, now)
            concerns.append(row)
            messages.append({"customer_id": row["customer_id"], "concern_id": cid, "kind": "customer_message",
                             "channel": row["channel"], "direction": "in", "author": "Customer", "meta": {},
                             "body": f"{row['subject']}: please help, reference {n}.", "created_at": row["created_at"]})
            documents.append({"concern_id": cid, "document": search_document(
                concern_id=cid, subject=row["subject"], body=messages[-1]["body"])})
            if n < timeline_for:
                messages += _timeline(row, now)
        with sessions.begin() as session:
            session.execute(insert(Concern), concerns)
            session.execute(insert(Interaction), messages)
            session.execute(insert(ConcernSearch), documents)
    return ids


def _concern(rnd: random.Random, cid: str, customer_id: int, sops, agent_ids, now) -> dict:
    sop, steps = rnd.choice(sops)
    status = rnd.choice(STATUSES)
    created = now - timedelta(seconds=rnd.randint(60, 30 * 86400))
    step, level, skills = rnd.choice(steps)
    due = sla = None
    assignee = None
    if status == "open":
        due = now + timedelta(seconds=rnd.randint(-7200, 86400))
        sla = "breached" if due < now else "warning" if due < now + timedelta(hours=1) else "ok"
        if agent_ids and rnd.random() < 0.3:
            assignee = rnd.choice(agent_ids)
    elif status == "waiting_customer":
        sla = "paused"
    else:
        step, level, skills, sla = "done", None, [], "ok"
    clocks = [{"name": "resolution", "target": 97200, "state": "running" if due else "stopped", "elapsed": 0,
               "due_at": due.isoformat() if due else None, "warned": sla in ("warning", "breached"),
               "breached": sla == "breached", "run_started": None, "warn_due_at": None}]
    category = ((sop.definition.get("applies_to") or {}).get("categories") or [None])[0]
    return {
        "id": cid, "workflow_id": f"bench-{cid}", "customer_id": customer_id, "subject": rnd.choice(SUBJECTS),
        "channel": rnd.choice(CHANNELS), "category": category, "priority": rnd.choice(PRIORITIES),
        "status": status, "step": step, "step_type": "human" if level else "end", "level": level,
        "skills": skills, "assignee_id": assignee, "assignee_name": f"Agent {assignee}" if assignee else None,
        "sop_id": sop.sop_id, "sop_version": sop.version, "sla_policy": sop.definition.get("sla"),
        "sla_state": sla or "ok", "next_due_at": due, "clocks": clocks, "seq": 3, "created_at": created,
        "updated_at": created, "resolved_at": now if status in ("resolved", "closed") else None,
        "closed_at": now if status == "closed" else None,
    }


def _timeline(row: dict, now) -> list[dict]:
    base = {"customer_id": row["customer_id"], "concern_id": row["id"], "channel": "web", "meta": {}}
    at = row["created_at"]
    return [
        {**base, "kind": "step", "direction": "internal", "author": "", "body": "In the level 1 queue",
         "created_at": at + timedelta(seconds=1)},
        {**base, "kind": "note", "direction": "internal", "author": "Ada", "body": "Looked at the account.",
         "created_at": at + timedelta(seconds=60)},
        {**base, "kind": "reply", "direction": "out", "author": "Ada", "body": "We are on it.",
         "created_at": at + timedelta(seconds=120)},
    ]
