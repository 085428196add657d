"""Activities that write a concern's progress into the registry, idempotently by (concern, seq)."""

from __future__ import annotations

import time

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import select as orm_select
from temporalio import activity

from registry import chain
from registry.audit import chain_tip
from registry.clock_cycles import Facts, apply_clock_events
from registry.db import Sessions
from registry.knowledge import create_article
from registry.models import ClockEvent, Concern, Customer, Interaction, User
from registry.redaction import Redactor
from registry.telemetry import REGISTRY_WRITES, SLA_EVENTS, TIMER_LATENESS, clock_kind
from registry.types import utcnow
from workflows.payloads import (
    ConcernSnapshot,
    CustomerMessage,
    RecordInput,
    RecordReceipt,
    UnheardQuery,
    excerpt,
    receipt_of,
)


def carry_forward(*, session, concern_id: str, resolution: str, user_id: int | None) -> None:
    """Turn an expert's resolution into a draft article for review, so the e-level can answer the next one.

    Knowledge is shared with every customer, so the draft keeps the question and the answer without the
    personal data the registry knows (and the shapes of it that identify anyone), marking each removal."""
    concern = session.get(Concern, concern_id)
    first = session.exec(orm_select(Interaction).where(Interaction.concern_id == concern_id)
                         .order_by(Interaction.id)).first()
    customer = session.get(Customer, concern.customer_id)
    prefs = (customer.preferences or {}) if customer else {}
    redactor = Redactor(
        names=[customer.name] if customer else [], emails=[customer.email] if customer and customer.email else [],
        phones=[customer.phone] if customer and customer.phone else [],
        addresses=[str(v) for k, v in prefs.items() if "address" in k.lower() and isinstance(v, str)],
    )
    title = redactor.redact(concern.subject)
    question = redactor.redact(first.body if first else concern.subject, title.removed)
    answer = redactor.redact(resolution, title.removed)
    body = f"**Question**\n\n{question.text}\n\n**Answer**\n\n{answer.text}\n"
    author = session.get(User, user_id) if user_id is not None else None
    create_article(session=session, title=title.text, body=body, owner_email=author.email if author else "",
                   category=concern.category, source_concern_id=concern_id, redactions=dict(title.removed))


# Statements built once: SQLAlchemy caches their compiled form, so a batch costs the round trips and little else.
_TIMELINE = Interaction.__table__
_CLOCK_EVENTS = ClockEvent.__table__
_CONCERN = Concern.__table__
_SNAPSHOT_FIELDS = [name for name in ConcernSnapshot.model_fields if name != "concern_id"]
_TIMELINE_DONE = select(_TIMELINE.c.seq).where(
    _TIMELINE.c.concern_id == bindparam("cid"), _TIMELINE.c.seq.in_(bindparam("seqs", expanding=True)))
_CLOCK_EVENTS_DONE = select(_CLOCK_EVENTS.c.seq).where(
    _CLOCK_EVENTS.c.concern_id == bindparam("cid"), _CLOCK_EVENTS.c.seq.in_(bindparam("seqs", expanding=True)))
_ADD_TIMELINE = insert(_TIMELINE)
_ADD_CLOCK_EVENTS = insert(_CLOCK_EVENTS)
# Only a newer snapshot replaces the row, so a late retry of an older batch never moves the concern back.
_UPDATE_CONCERN = (
    update(_CONCERN)
    .where(_CONCERN.c.id == bindparam("b_id"), _CONCERN.c.seq <= bindparam("b_seq"))
    .values({name: bindparam(name) for name in [*_SNAPSHOT_FIELDS, "updated_at"]})
)


def _not_written(db, written, cid: str, entries: list) -> list:
    """The entries whose (concern, seq) is not in the registry yet: what a retried batch still has to write."""
    if not entries:
        return []
    done = set(db.execute(written, {"cid": cid, "seqs": [e.seq for e in entries]}).scalars())
    return [e for e in entries if e.seq not in done]


def _chained(db, cid: str, rows: list[dict]) -> list[dict]:
    """The rows with their hashes, continuing the concern's chain. A concern's batches are written one after the
    other in seq order (the workflow awaits each), so reading the chain's tip here cannot race another writer."""
    prev = chain_tip(db, cid)
    for row in rows:
        row["prev_hash"] = prev
        row["row_hash"] = prev = chain.row_hash(chain.clock_content(row), prev)
    return rows


class ProjectionActivities:
    """Writes the concern projection, its timeline and clock events; a retried batch writes nothing twice."""

    def __init__(self, sessions: Sessions, render_mail=None) -> None:
        self.sessions = sessions
        self.render_mail = render_mail

    @activity.defn(name="record")
    def record(self, batch: RecordInput) -> RecordReceipt:
        """Apply one batch of changes from the workflow in one transaction; the receipt lands in the history."""
        started = time.perf_counter()
        fired = self._apply(batch)
        REGISTRY_WRITES.observe(time.perf_counter() - started)
        for event in fired:  # counted once written: a retried batch writes, and counts, nothing twice
            SLA_EVENTS.labels(event.kind, clock_kind(event.clock), batch.snapshot.sla_policy).inc()
            if event.kind == "breach" and event.due_at is not None:
                TIMER_LATENESS.observe(max(0.0, (event.at - event.due_at).total_seconds()))
        return receipt_of(batch)

    def _apply(self, batch: RecordInput) -> list:
        """Write the batch; the warnings and breaches it newly wrote."""
        snap = batch.snapshot
        cid = snap.concern_id
        fired = []
        with self.sessions.begin() as session:
            db = session.connection()
            fresh = _not_written(db, _TIMELINE_DONE, cid, batch.timeline)
            for entry in fresh:
                if entry.kind == "resolution" and entry.meta.get("worth_article") and (entry.meta.get("level") or 0) >= 2:
                    carry_forward(session=session, concern_id=cid, resolution=entry.body, user_id=entry.author_user_id)
            if fresh:
                db.execute(_ADD_TIMELINE, [{
                    "customer_id": batch.customer_id, "concern_id": cid, "seq": e.seq, "source_key": None,
                    "kind": e.kind, "channel": e.channel, "direction": e.direction, "author": e.author,
                    "author_user_id": e.author_user_id, "body": e.body, "meta": e.meta, "created_at": e.at,
                } for e in fresh])
            fresh = _not_written(db, _CLOCK_EVENTS_DONE, cid, batch.clock_events)
            fired = [e for e in fresh if e.kind in ("warn", "breach")]
            if fresh:
                db.execute(_ADD_CLOCK_EVENTS, _chained(db, cid, [{
                    "concern_id": cid, "seq": e.seq, "clock": e.clock, "kind": e.kind, "at": e.at,
                    "workflow_id": batch.workflow_id, "run_id": batch.run_id, "event_id": e.event_id,
                    "elapsed_seconds": e.elapsed, "target_seconds": e.target, "due_at": e.due_at,
                } for e in fresh]))
            # The report's clock cycles move in the same transaction as the events they are made of.
            apply_clock_events(db, concern_id=cid, workflow_id=batch.workflow_id, run_id=batch.run_id, events=fresh,
                               facts=Facts(seq=snap.seq, policy=snap.sla_policy, priority=snap.priority,
                                           sop_id=snap.sop_id, sop_version=snap.sop_version, category=snap.category,
                                           level=snap.level, assignee_id=snap.assignee_id,
                                           assignee_name=snap.assignee_name))
            if batch.mails and self.render_mail is not None:
                self.render_mail(session=session, concern_id=cid, mails=batch.mails)
            values = {name: getattr(snap, name) for name in _SNAPSHOT_FIELDS}
            values["clocks"] = [c.model_dump(mode="json") for c in snap.clocks]
            values["updated_at"] = utcnow()
            db.execute(_UPDATE_CONCERN, {**values, "b_id": cid, "b_seq": snap.seq})
        return fired

    @activity.defn(name="unheard_messages")
    def unheard_messages(self, query: UnheardQuery) -> list[CustomerMessage]:
        """The customer's messages stored since `query.since` that the workflow has not heard, oldest first."""
        heard = set(query.heard)
        with self.sessions.begin() as session:
            rows = session.exec(orm_select(Interaction).where(
                Interaction.concern_id == query.concern_id, Interaction.kind == "customer_message",
                Interaction.direction == "in", Interaction.created_at >= query.since,
            ).order_by(Interaction.id)).all()
            return [CustomerMessage(interaction_id=row.id, text=excerpt(row.body), channel=row.channel,
                                    intent=(row.meta or {}).get("intent", "message"), at=row.created_at)
                    for row in rows if row.id not in heard]
