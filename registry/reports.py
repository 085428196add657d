"""Figures for the reporting pages, computed from the projection and the timeline."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, select

from registry.models import Concern, Interaction


class DeflectionRow(BaseModel):
    """How well the e-level kept concerns of one SOP and category away from humans."""

    sop_id: str | None
    category: str | None
    concerns: int
    automated_answers: int
    deflected: int
    rejected: int
    deflection_rate: float
    deflected_ids: list[str]


@dataclass
class ElevelFacts:
    """What the timeline says about the e-level's part in one concern, fed its entries in order."""

    answered: bool = False
    solved: bool = False
    not_solved: bool = False
    human: bool = False

    def see(self, kind: str, meta: dict | None) -> None:
        if kind == "automated_answer":
            self.answered = True
        elif kind == "step" and (meta or {}).get("type") == "human":
            self.human = True
        elif kind == "customer_message" and self.answered:
            intent = (meta or {}).get("intent")
            self.solved |= intent == "solved"
            self.not_solved |= intent == "not_solved"

    @property
    def deflected(self) -> bool:
        """Answered by the e-level, confirmed by the customer, never handed to a person (and then resolved)."""
        return self.answered and self.solved and not self.human

    @property
    def rejected(self) -> bool:
        """An automated answer the customer said did not help, or that a person had to take over from."""
        return self.answered and (self.not_solved or self.human)


def elevel_facts(*, session: Session, concern_ids: list[str]) -> dict[str, ElevelFacts]:
    """The e-level facts of each concern, from its timeline in the order it was written."""
    facts = {cid: ElevelFacts() for cid in concern_ids}
    if concern_ids:
        rows = session.exec(select(Interaction.concern_id, Interaction.kind, Interaction.meta)
                            .where(Interaction.concern_id.in_(concern_ids),
                                   Interaction.kind.in_(["automated_answer", "customer_message", "step"]))
                            .order_by(Interaction.id))
        for concern_id, kind, meta in rows:
            facts[concern_id].see(kind, meta)
    return facts


def deflection(*, session: Session, since: datetime, until: datetime) -> list[DeflectionRow]:
    """Per SOP and category: concerns closed by the e-level with the customer's confirmation, and rejections."""
    concerns = {c.id: c for c in session.exec(
        select(Concern).where(Concern.created_at >= since, Concern.created_at < until))}
    facts = elevel_facts(session=session, concern_ids=list(concerns))
    groups: dict[tuple, list[str]] = defaultdict(list)
    for cid, concern in concerns.items():
        groups[(concern.sop_id, concern.category)].append(cid)
    report = []
    for (sop_id, category), ids in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")):
        deflected = sorted(cid for cid in ids if facts[cid].deflected and concerns[cid].status in ("resolved", "closed"))
        report.append(DeflectionRow(
            sop_id=sop_id, category=category, concerns=len(ids),
            automated_answers=sum(facts[c].answered for c in ids), deflected=len(deflected),
            rejected=sum(facts[c].rejected for c in ids),
            deflection_rate=round(len(deflected) / len(ids), 4), deflected_ids=deflected,
        ))
    return report
