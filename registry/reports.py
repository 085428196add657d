"""Figures for the reporting pages, computed from the projection and the timeline."""

from __future__ import annotations

from collections import defaultdict
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


def deflection(*, session: Session, since: datetime, until: datetime) -> list[DeflectionRow]:
    """Per SOP and category: concerns closed by the e-level with the customer's confirmation, and rejections."""
    concerns = {c.id: c for c in session.exec(
        select(Concern).where(Concern.created_at >= since, Concern.created_at < until))}
    facts: dict[str, dict] = {cid: {"answered": False, "solved": False, "not_solved": False, "human": False}
                              for cid in concerns}
    if concerns:
        rows = session.exec(select(Interaction.concern_id, Interaction.kind, Interaction.meta)
                            .where(Interaction.concern_id.in_(list(concerns)),
                                   Interaction.kind.in_(["automated_answer", "customer_message", "step"])))
        for concern_id, kind, meta in rows:
            f = facts[concern_id]
            if kind == "automated_answer":
                f["answered"] = True
            elif kind == "step" and (meta or {}).get("type") == "human":
                f["human"] = True
            elif kind == "customer_message" and f["answered"]:
                intent = (meta or {}).get("intent")
                f["solved"] |= intent == "solved"
                f["not_solved"] |= intent == "not_solved"
    groups: dict[tuple, list[str]] = defaultdict(list)
    for cid, concern in concerns.items():
        groups[(concern.sop_id, concern.category)].append(cid)
    report = []
    for (sop_id, category), ids in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")):
        deflected = sorted(cid for cid in ids if facts[cid]["answered"] and facts[cid]["solved"]
                           and not facts[cid]["human"] and concerns[cid].status in ("resolved", "closed"))
        report.append(DeflectionRow(
            sop_id=sop_id, category=category, concerns=len(ids),
            automated_answers=sum(facts[c]["answered"] for c in ids), deflected=len(deflected),
            rejected=sum(facts[c]["answered"] and (facts[c]["not_solved"] or facts[c]["human"]) for c in ids),
            deflection_rate=round(len(deflected) / len(ids), 4), deflected_ids=deflected,
        ))
    return report
