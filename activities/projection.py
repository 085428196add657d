"""Activities that write a concern's progress into the registry, idempotently by (concern, seq)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import select
from temporalio import activity

from registry.db import Sessions
from registry.knowledge import create_article
from registry.models import ClockEvent, Concern, Interaction, OutboxMail, User
from registry.types import utcnow
from workflows.payloads import RecordInput


def carry_forward(*, session, concern_id: str, resolution: str, user_id: int | None) -> None:
    """Turn an expert's resolution into a draft article for review, so the e-level can answer the next one."""
    concern = session.get(Concern, concern_id)
    first = session.exec(select(Interaction).where(Interaction.concern_id == concern_id)
                         .order_by(Interaction.id)).first()
    body = (f"**Question**\n\n{first.body if first else concern.subject}\n\n"
            f"**Answer**\n\n{resolution}\n")
    author = session.get(User, user_id) if user_id is not None else None
    create_article(session=session, title=concern.subject, body=body, owner_email=author.email if author else "",
                   category=concern.category, source_concern_id=concern_id)


class ProjectionActivities:
    """Writes the concern projection, its timeline and clock events; a retried batch writes nothing twice."""

    def __init__(self, sessions: Sessions, render_mail=None) -> None:
        self.sessions = sessions
        self.render_mail = render_mail

    @activity.defn(name="record")
    def record(self, batch: RecordInput) -> None:
        """Apply one batch of changes from the workflow in one transaction."""
        snap = batch.snapshot
        cid = snap.concern_id
        with self.sessions.begin() as session:
            seqs = [e.seq for e in batch.timeline] + [e.seq for e in batch.clock_events]
            done_timeline = set(
                session.exec(select(Interaction.seq).where(Interaction.concern_id == cid, Interaction.seq.in_(seqs)))
            ) if seqs else set()
            for entry in batch.timeline:
                if entry.seq in done_timeline:
                    continue
                if entry.kind == "resolution" and entry.meta.get("worth_article") and (entry.meta.get("level") or 0) >= 2:
                    carry_forward(session=session, concern_id=cid, resolution=entry.body, user_id=entry.author_user_id)
                session.add(Interaction(
                    customer_id=batch.customer_id, concern_id=cid, seq=entry.seq, kind=entry.kind,
                    channel=entry.channel, direction=entry.direction, author=entry.author,
                    author_user_id=entry.author_user_id, body=entry.body, meta=entry.meta, created_at=entry.at,
                ))
            done_clock = set(
                session.exec(select(ClockEvent.seq).where(ClockEvent.concern_id == cid, ClockEvent.seq.in_(seqs)))
            ) if batch.clock_events else set()
            for ev in batch.clock_events:
                if ev.seq in done_clock:
                    continue
                session.add(ClockEvent(
                    concern_id=cid, seq=ev.seq, clock=ev.clock, kind=ev.kind, at=ev.at, workflow_id=batch.workflow_id,
                    run_id=batch.run_id, event_id=ev.event_id, elapsed_seconds=ev.elapsed, target_seconds=ev.target,
                    due_at=ev.due_at,
                ))
            if batch.mails and self.render_mail is not None:
                self.render_mail(session=session, concern_id=cid, mails=batch.mails)
            values = snap.model_dump(exclude={"concern_id", "clocks"})
            values["clocks"] = [c.model_dump(mode="json") for c in snap.clocks]
            values["updated_at"] = utcnow()
            session.exec(update(Concern).where(Concern.id == cid, Concern.seq <= snap.seq).values(**values))
