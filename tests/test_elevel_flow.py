"""The e-level in the running desk: answered and confirmed without a human, rejected to L1, or straight to L1."""

from __future__ import annotations

from sqlmodel import select

from api.security import create_user
from registry.knowledge import Article, create_article, publish_article
from tests.engine_support import act, say, timeline_kinds
from workflows.payloads import AgentRef


def _publish(desk, title, body, category="kb-first"):
    with desk.sessions.begin() as session:
        article = create_article(session=session, title=title, body=body, owner_email="owner@desk.test",
                                 category=category)
        publish_article(session=session, article_id=article.id)
        return article.id


async def _open(desk, subject, body, email="kim@example.com"):
    return await desk.intake.open(email=email, name="Kim", subject=subject, body=body, channel="web",
                                  category="kb-first")


ARTICLE = ("How to reset your password", "Use **Forgot password** on the sign-in page; the link works one hour.")


async def test_matching_article_answers_and_the_confirmed_concern_closes_without_a_human(desk):
    desk.settings.reopen_window = "1s"
    article_id = _publish(desk, *ARTICLE)
    concern = await _open(desk, "Reset my password", "How do I reset my password? I forgot it.")
    c = await desk.wait_for(concern.id, lambda c: c.step == "confirm")
    got = (await desk.http.get(f"/api/concerns/{concern.id}", headers=desk.auth)).json()
    answer = next(t for t in got["timeline"] if t["kind"] == "automated_answer")
    assert answer["author"] == "e-level" and answer["meta"]["article_id"] == article_id
    assert answer["meta"]["score"] >= 0.5 and "Forgot password" in answer["body"]
    await say(desk, concern, "Yes, that worked", intent="solved")
    c = await desk.wait_for(concern.id, lambda c: c.status == "closed", timeout=15)
    assert c.level is None and "claimed" not in timeline_kinds(desk, concern.id)
    report = (await desk.http.get("/api/reports/deflection", headers=desk.auth)).json()
    row = next(r for r in report if r["sop_id"] == "kb-first")
    assert row["deflected"] == 1 and row["deflected_ids"] == [concern.id] and row["rejected"] == 0


async def test_a_rejected_answer_goes_to_level1_and_counts_as_rejected(desk):
    _publish(desk, *ARTICLE)
    concern = await _open(desk, "Reset my password", "How do I reset my password? I forgot it.")
    await desk.wait_for(concern.id, lambda c: c.step == "confirm")
    await say(desk, concern, "The link never arrives", intent="not_solved")
    c = await desk.wait_for(concern.id, lambda c: c.step == "level1")
    assert c.level == 1
    report = (await desk.http.get("/api/reports/deflection", headers=desk.auth)).json()
    row = next(r for r in report if r["sop_id"] == "kb-first")
    assert (row["deflected"], row["rejected"], row["automated_answers"]) == (0, 1, 1)


async def test_an_unmatched_concern_goes_straight_to_level1(desk):
    _publish(desk, *ARTICLE)
    concern = await _open(desk, "Printer on fire", "Smoke comes out of the paper tray.")
    c = await desk.wait_for(concern.id, lambda c: c.step == "level1")
    assert "automated_answer" not in timeline_kinds(desk, concern.id)
    assert c.status == "open"


async def test_an_expert_resolution_marked_worth_an_article_becomes_a_draft(desk):
    with desk.sessions.begin() as session:
        expert = create_user(session=session, email="carol@desk.test", password="carol-password", role="agent",
                             level=2, name="Carol")
    carol = AgentRef(id=expert.id, name="Carol", level=2)
    concern = await _open(desk, "VPN drops every hour", "The VPN disconnects at the full hour.")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", AgentRef(id=99, name="Ada", level=1))
    await act(desk, concern, "escalate", AgentRef(id=99, name="Ada", level=1), reason="needs network team")
    await desk.wait_for(concern.id, lambda c: c.step == "level2")
    await act(desk, concern, "claim", carol)
    await act(desk, concern, "resolve", carol, text="Disable the idle timeout in the VPN profile.",
              worth_article=True)
    await desk.wait_for(concern.id, lambda c: c.status == "resolved")
    with desk.sessions.begin() as session:
        drafts = list(session.exec(select(Article).where(Article.source_concern_id == concern.id)))
    assert len(drafts) == 1
    assert drafts[0].status == "draft" and drafts[0].owner_email == "carol@desk.test"
    assert "idle timeout" in drafts[0].body and drafts[0].title == "VPN drops every hour"

