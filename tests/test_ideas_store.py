"""Product feedback grouped by product and theme, statuses audited, customers told once when a theme ships."""

from __future__ import annotations

import pytest
from sqlmodel import select

from registry.audit import AuditEntry
from registry.ideas import FeedbackRefused, IdeaNotice, ideas, record_feedback, set_status
from registry.models import Interaction, OutboxMail
from tests.ideas_kit import PERIOD, build


def test_feedback_is_grouped_by_product_and_theme_with_concerns_customers_trend_and_csat(sessions):
    build(sessions)
    with sessions.begin() as session:
        groups = ideas(session=session, period=PERIOD)
    export, praise = groups
    assert (export.product, export.theme, export.concerns, export.customers, export.previous, export.trend) == \
        ("Shop app", "Export", 3, 2, 1, 2)
    assert export.csat == 3.0  # ratings 2 and 4; the third concern is not rated
    assert export.kinds == {"bug": 2, "missing_feature": 1}
    assert [q["quote"] for q in export.quotes] == ["The export button does nothing on Safari.",
                                                   "Exports to CSV lose the accents in names",
                                                   "I need an export of last year's invoices"]
    assert (praise.product, praise.theme, praise.concerns, praise.customers, praise.csat) == \
        ("Billing", "(no theme yet)", 1, 1, 5.0)


def test_a_quote_is_one_of_the_concerns_customer_messages_kept_verbatim(sessions):
    kit = build(sessions)
    with sessions.begin() as session:
        # A message of another concern cannot be quoted here.
        with pytest.raises(FeedbackRefused, match="customer messages"):
            record_feedback(session=session, concern_id="CCR-IDEA0001", interaction_id=kit["messages"][2],
                            product="Shop app", kind="bug")
        with pytest.raises(FeedbackRefused, match="already"):
            record_feedback(session=session, concern_id="CCR-IDEA0001", interaction_id=kit["messages"][0],
                            product="Shop app", kind="bug")
        with pytest.raises(FeedbackRefused, match="kind"):
            record_feedback(session=session, concern_id="CCR-IDEA0002", interaction_id=kit["messages"][1],
                            product="Shop app", kind="complaint")


def test_shipping_a_theme_is_audited_and_tells_each_customer_once_through_their_concern(sessions):
    kit = build(sessions)
    with sessions.begin() as session:
        theme, told = set_status(session=session, theme_id=kit["theme_id"], status="planned", actor="pm@desk.test",
                                 support_domain="desk.test")
        assert told == 0
    with sessions.begin() as session:
        _, told = set_status(session=session, theme_id=kit["theme_id"], status="shipped", actor="pm@desk.test",
                             support_domain="desk.test")
        assert told == 4  # every concern of the theme, this period's and the earlier one
    with sessions.begin() as session:
        _, told = set_status(session=session, theme_id=kit["theme_id"], status="shipped", actor="pm@desk.test",
                             support_domain="desk.test")
        assert told == 0
    with sessions.begin() as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.action == "idea.status")
                               .order_by(AuditEntry.seq)).all()
        assert [(e.actor, e.detail["from"], e.detail["to"], e.detail["customers_told"]) for e in entries] == [
            ("pm@desk.test", "new", "planned", 0), ("pm@desk.test", "planned", "shipped", 4),
            ("pm@desk.test", "shipped", "shipped", 0)]
        notices = session.exec(select(IdeaNotice)).all()
        assert sorted(n.concern_id for n in notices) == ["CCR-IDEA0001", "CCR-IDEA0002", "CCR-IDEA0003",
                                                         "CCR-IDEA0005"]
        mails = session.exec(select(OutboxMail).order_by(OutboxMail.concern_id)).all()
        assert [(m.concern_id, m.to_address) for m in mails] == [
            ("CCR-IDEA0001", "ann@shop.test"), ("CCR-IDEA0002", "ann@shop.test"), ("CCR-IDEA0003", "ben@shop.test"),
            ("CCR-IDEA0005", "ben@shop.test")]
        assert all(m.subject.startswith(f"[{m.concern_id}]") and "Export" in m.text for m in mails)
        updates = session.exec(select(Interaction).where(Interaction.kind == "product_update")).all()
        assert len(updates) == 4 and {n.interaction_id for n in notices} == {u.id for u in updates}


def test_a_status_outside_the_list_is_refused(sessions):
    kit = build(sessions)
    with sessions.begin() as session, pytest.raises(FeedbackRefused, match="status"):
        set_status(session=session, theme_id=kit["theme_id"], status="done", actor="pm@desk.test",
                   support_domain="desk.test")
