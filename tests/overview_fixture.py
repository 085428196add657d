"""A hand-computed week of concerns, written straight into the registry, for the overview's arithmetic.

The period is Monday 2026-03-02 to Sunday 2026-03-08; the previous period is 2026-02-23 to 2026-03-01."""

from __future__ import annotations

from datetime import UTC, date, datetime

from api.security import create_user
from registry.models import ClockEvent, Concern, Customer, Interaction, Organisation
from registry.ratings import Rating

START, END = date(2026, 3, 2), date(2026, 3, 8)
NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def build(sessions) -> dict:
    """Six concerns (C1-C4 in the period, C5-C6 before it), two agents, two customers; returns their ids."""
    with sessions.begin() as s:
        acme = Organisation(name="Acme")
        s.add(acme)
        s.flush()
        gold = Customer(email="gold@acme.test", name="Gail Gold", organisation_id=acme.id, tier="gold")
        plain = Customer(email="pat@plain.test", name="Pat Plain")
        s.add_all([gold, plain])
        ada = create_user(session=s, email="ada@desk.test", password="pw-ada-123456", role="agent", name="Ada", level=2)
        bob = create_user(session=s, email="bob@desk.test", password="pw-bob-123456", role="agent", name="Bob", level=2)
        s.flush()
        ids = {"ada": ada.id, "bob": bob.id, "acme": acme.id, "gold": gold.id, "plain": plain.id}
        seqs: dict[str, int] = {}

        def concern(cid, customer, channel, category, created, *, status, resolved=None, assignee=None, level=None,
                    closed=None):
            s.add(Concern(id=cid, workflow_id=f"wf-{cid}", customer_id=customer.id, subject=f"Subject of {cid}",
                          channel=channel, category=category, status=status, created_at=created, updated_at=created,
                          resolved_at=resolved, closed_at=closed, assignee_id=assignee and assignee.id,
                          assignee_name=assignee and assignee.name, level=level, sop_id="billing", sop_version=1))
            s.flush()
            seqs[cid] = 0
            entry(cid, customer, "customer_message", created, direction="in")

        def entry(cid, customer, kind, when, *, direction="internal", author=None, meta=None):
            seqs[cid] += 1
            s.add(Interaction(customer_id=customer.id, concern_id=cid, seq=seqs[cid], kind=kind, channel="web",
                              direction=direction, author_user_id=author and author.id, meta=meta or {},
                              created_at=when, body=kind))

        def clock(cid, name, when, elapsed):
            seqs[cid] += 1
            s.add(ClockEvent(concern_id=cid, seq=seqs[cid], clock=name, kind="stop", at=when, workflow_id=f"wf-{cid}",
                             run_id="r", event_id=seqs[cid], elapsed_seconds=elapsed))

        def rating(cid, customer, csat, nps, comment, when):
            s.add(Rating(concern_id=cid, customer_id=customer.id, csat=csat, nps=nps, comment=comment, created_at=when))

        human1, human2 = {"type": "human", "level": 1}, {"type": "human", "level": 2}
        # C1: web, billing, Ada resolves at L1 with one public message; rated 5 / 10.
        concern("C1", gold, "web", "billing", at(2, 9), status="closed", resolved=at(2, 10), closed=at(2, 12),
                assignee=ada, level=1)
        entry("C1", gold, "step", at(2, 9), meta=human1)
        entry("C1", gold, "resolution", at(2, 10), direction="out", author=ada)
        clock("C1", "first_response", at(2, 10), 600)
        clock("C1", "resolution", at(2, 10), 3600)
        rating("C1", gold, 5, 10, "Quick and kind", at(2, 11))
        # C2: e-mail, billing, Bob; escalated L1 -> L2, the customer wrote again, reopened, two resolution cycles.
        concern("C2", gold, "email", "billing", at(3, 16), status="resolved", resolved=at(5, 10), assignee=bob,
                level=2)
        entry("C2", gold, "step", at(3, 16), meta=human1)
        entry("C2", gold, "reply", at(3, 17), direction="out", author=bob)
        entry("C2", gold, "escalated", at(4, 9), meta={"reason": "needs billing expert"})
        entry("C2", gold, "step", at(4, 9), meta=human2)
        entry("C2", gold, "customer_message", at(4, 10), direction="in")
        entry("C2", gold, "reopened", at(4, 12))
        entry("C2", gold, "resolution", at(5, 10), direction="out", author=bob)
        clock("C2", "first_response", at(3, 17), 1800)
        clock("C2", "resolution", at(4, 11), 7200)
        clock("C2", "resolution", at(5, 10), 3600)
        rating("C2", gold, 2, 3, "Took too long", at(5, 12))
        # C3: web, account-access, deflected by the e-level (answered, confirmed, closed); rated 4 / 8.
        concern("C3", plain, "web", "account-access", at(4, 8), status="closed", resolved=at(4, 9), closed=at(4, 9))
        entry("C3", plain, "automated_answer", at(4, 8), direction="out")
        entry("C3", plain, "customer_message", at(4, 9), direction="in", meta={"intent": "solved"})
        clock("C3", "first_response", at(4, 9), 120)
        clock("C3", "resolution", at(4, 9), 120)
        rating("C3", plain, 4, 8, "", at(4, 10))
        # C4: web, account-access, automated answer rejected, Ada at L1, the timer escalates to L2; still open.
        concern("C4", plain, "web", "account-access", at(6, 10), status="open", assignee=ada, level=2)
        entry("C4", plain, "automated_answer", at(6, 10), direction="out")
        entry("C4", plain, "customer_message", at(6, 11), direction="in", meta={"intent": "not_solved"})
        entry("C4", plain, "step", at(6, 11), meta=human1)
        entry("C4", plain, "escalated", at(7, 11), meta={"reason": "timeout"})
        entry("C4", plain, "step", at(7, 11), meta=human2)
        # C5: e-mail, billing, the previous period; Ada; rated 3.
        concern("C5", gold, "email", "billing", at(25, 9, 2), status="closed", resolved=at(26, 9, 2),
                closed=at(26, 12, 2), assignee=ada, level=1)
        entry("C5", gold, "step", at(25, 9, 2), meta=human1)
        entry("C5", gold, "resolution", at(26, 9, 2), direction="out", author=ada)
        clock("C5", "first_response", at(26, 9, 2), 300)
        clock("C5", "resolution", at(26, 9, 2), 900)
        rating("C5", gold, 3, None, "Fine", at(26, 10, 2))
        # C6: phone, no category, the previous period, still open and unassigned.
        concern("C6", plain, "phone", None, at(1, 10), status="open", level=1)
        entry("C6", plain, "step", at(1, 10), meta=human1)
    return ids
