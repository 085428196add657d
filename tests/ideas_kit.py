"""A small registry of concerns with customer messages and ratings, for the ideas tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from registry.ideas import ProductFeedback, last_days, record_feedback
from registry.models import Concern, Customer, Interaction
from registry.ratings import Rating

NOW = datetime.now(timezone.utc).replace(microsecond=0)
PERIOD = last_days(30)


def concern(session, cid: str, customer: Customer, words: str, *, csat: int | None = None) -> int:
    """A concern with one customer message; returns the message's id."""
    session.add(Concern(id=cid, workflow_id=f"wf-{cid}", customer_id=customer.id, subject=f"About {cid}",
                        channel="web", status="resolved", created_at=NOW, updated_at=NOW))
    session.flush()
    message = Interaction(customer_id=customer.id, concern_id=cid, seq=1, kind="customer_message", channel="web",
                          direction="in", body=words, created_at=NOW)
    session.add(message)
    if csat is not None:
        session.add(Rating(concern_id=cid, customer_id=customer.id, csat=csat, comment="", created_at=NOW))
    session.flush()
    return message.id


def build(sessions) -> dict:
    """Two products; the export theme has three concerns from two customers this period and one the period before."""
    with sessions.begin() as s:
        ann = Customer(email="ann@shop.test", name="Ann Archer")
        ben = Customer(email="ben@shop.test", name="Ben Baker")
        s.add_all([ann, ben])
        s.flush()
        m1 = concern(s, "CCR-IDEA0001", ann, "The export button does nothing on Safari.", csat=2)
        m2 = concern(s, "CCR-IDEA0002", ann, "Exports to CSV lose the accents in names", csat=4)
        m3 = concern(s, "CCR-IDEA0003", ben, "I need an export of last year's invoices")
        m4 = concern(s, "CCR-IDEA0004", ben, "The app is lovely, thank you!", csat=5)
        m5 = concern(s, "CCR-IDEA0005", ben, "Export broke again last month")
        record_feedback(session=s, concern_id="CCR-IDEA0001", interaction_id=m1, product="Shop app", kind="bug",
                        theme="Export", by_name="Ada")
        record_feedback(session=s, concern_id="CCR-IDEA0002", interaction_id=m2, product="Shop app", kind="bug",
                        theme="Export", by_name="Ada")
        record_feedback(session=s, concern_id="CCR-IDEA0003", interaction_id=m3, product="Shop app",
                        kind="missing_feature", theme="Export", by_name="Bo")
        record_feedback(session=s, concern_id="CCR-IDEA0004", interaction_id=m4, product="Billing", kind="praise",
                        by_name="Bo")
        old = record_feedback(session=s, concern_id="CCR-IDEA0005", interaction_id=m5, product="Shop app",
                              kind="bug", theme="Export", by_name="Bo")
        old.created_at = NOW - timedelta(days=40)
        s.add(old)
        theme_id = s.get(ProductFeedback, old.id).theme_id
    return {"theme_id": theme_id, "messages": [m1, m2, m3, m4, m5]}
