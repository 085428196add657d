"""Knowledge carried forward without personal data, published by a second person; unpublish, archive, revisions."""

from __future__ import annotations

import pytest
from sqlmodel import select

from api.security import create_user
from registry.knowledge import (
    Article,
    ArticleEvent,
    ArticleRefused,
    create_article,
    publish_article,
    search_articles,
    update_article,
)
from registry.redaction import Redactor
from tests.engine_support import act
from tests.web_support import PASSWORD, Agent, make_staff
from workflows.payloads import AgentRef

QUESTION = ("Hello, this is Nia Kowalski (nia.k@example.com, +49 151 23456789). My order #A-55317 never came, "
            "tracking number 00340434161094027318 shows nothing since Monday. Please ship to Hauptstraße 12, "
            "10115 Berlin. My earlier request was CCR-7K3M9Q2X.")
ANSWER = ("Dear Nia, the carrier lost parcel 1Z999AA10123456784. We re-sent order A-55317 to Hauptstraße 12; "
          "call us on 030 12345678 if it is not there in three days.")


def test_the_redactor_removes_what_identifies_a_customer_and_keeps_the_know_how():
    redactor = Redactor(names=["Nia Kowalski"], emails=["nia.k@example.com"], phones=["+4915123456789"])
    question, answer = redactor.redact(QUESTION), redactor.redact(ANSWER)
    for secret in ("Nia", "Kowalski", "nia.k@example.com", "151 23456789", "A-55317", "00340434161094027318",
                   "Hauptstraße 12", "10115 Berlin", "CCR-7K3M9Q2X", "1Z999AA10123456784", "030 12345678"):
        assert secret not in question.text + answer.text, secret
    assert "[name removed]" in question.text and "[order number removed]" in answer.text
    assert "[tracking number removed]" in question.text and "[phone number removed]" in answer.text
    assert "[address removed]" in question.text and "[concern reference removed]" in question.text
    kept = "Restart the router, wait 30 seconds and update the firmware to 2.4.1 (released 2024)."
    assert Redactor(names=["Nia Kowalski"]).redact(kept).text == kept


async def _carried_forward_draft(desk) -> Article:
    with desk.sessions.begin() as session:
        expert = create_user(session=session, email="carol@desk.test", password=PASSWORD, role="agent",
                             level=2, name="Carol")
    carol = AgentRef(id=expert.id, name="Carol", level=2)
    ada = AgentRef(id=99, name="Ada", level=1)
    concern = await desk.intake.open(email="nia.k@example.com", phone="+49 151 23456789", name="Nia Kowalski",
                                     subject="Order A-55317 for Nia Kowalski never arrived", body=QUESTION,
                                     channel="web", category="kb-first")
    await desk.wait_for(concern.id, lambda c: c.step == "level1")
    await act(desk, concern, "claim", ada)
    await act(desk, concern, "escalate", ada, reason="carrier case")
    await desk.wait_for(concern.id, lambda c: c.step == "level2")
    await act(desk, concern, "claim", carol)
    await act(desk, concern, "resolve", carol, text=ANSWER, worth_article=True)
    await desk.wait_for(concern.id, lambda c: c.status == "resolved")
    with desk.sessions.begin() as session:
        (draft,) = session.exec(select(Article).where(Article.source_concern_id == concern.id)).all()
        session.expunge(draft)
    return draft


async def test_a_carried_forward_draft_has_no_personal_data_and_says_what_was_removed(desk):
    draft = await _carried_forward_draft(desk)
    text = draft.title + draft.body
    for secret in ("Nia", "Kowalski", "nia.k@example.com", "23456789", "A-55317", "00340434161094027318",
                   "Hauptstraße", "10115", "CCR-7K3M9Q2X", "1Z999AA10123456784", "12345678"):
        assert secret not in text, secret
    assert "carrier lost parcel" in draft.body and "[order number removed]" in draft.title
    assert draft.redactions["name"] >= 3 and draft.redactions["order number"] >= 2
    reader = make_staff(desk.sessions, "lead.reader@desk.test", "lead", level=2)
    async with Agent(desk, reader["email"]) as lead:
        page = await lead.http.get(f"/kb/articles/{draft.id}")
    assert "Removed before review:" in page.text and "order numbers" in page.text and "Kowalski" not in page.text


async def test_a_carried_forward_draft_is_published_only_by_a_second_person_with_review_rights(desk):
    draft = await _carried_forward_draft(desk)
    url = f"/kb/articles/{draft.id}"
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    make_staff(desk.sessions, "lee@desk.test", "lead", level=2)
    make_staff(desk.sessions, "olga@desk.test", "process_owner")
    async with Agent(desk, "carol@desk.test") as carol:
        refused = await carol.http.post(f"{url}/publish", data={"csrf_token": carol.token})
        assert refused.status_code == 409 and "lead or process owner" in refused.text
    async with Agent(desk, "ada@desk.test") as ada:
        refused = await ada.http.post(f"{url}/publish", data={"csrf_token": ada.token})
        assert refused.status_code == 409
    async with Agent(desk, "lee@desk.test") as lee:
        edited = await lee.http.post(url, data={"csrf_token": lee.token, "title": draft.title, "version": "1",
                                                "body": draft.body + "\nAsk the carrier for a trace first."})
        assert edited.status_code == 303
        page = await lee.http.get(url)
        assert "you wrote the current text" in page.text and "disabled" in page.text
        refused = await lee.http.post(f"{url}/publish", data={"csrf_token": lee.token})
        assert refused.status_code == 409 and "you wrote the current text" in refused.text
    async with Agent(desk, "olga@desk.test") as olga:
        published = await olga.http.post(f"{url}/publish", data={"csrf_token": olga.token})
        assert published.status_code == 303
        page = await olga.http.get(url)
        assert "published" in page.text and "by olga@desk.test" in page.text
    with desk.sessions.begin() as session:
        events = [(e.action, e.actor_email) for e in session.exec(
            select(ArticleEvent).where(ArticleEvent.article_id == draft.id).order_by(ArticleEvent.id))]
        assert events == [("created", "carol@desk.test"), ("revised", "lee@desk.test"),
                          ("published", "olga@desk.test")]
        # The store holds the same rule for every caller, not only the page.
        other = create_article(session=session, title="Carried", body="x", owner_email="carol@desk.test",
                               source_concern_id=draft.source_concern_id)
        with pytest.raises(ArticleRefused):
            publish_article(session=session, article_id=other.id)
        with pytest.raises(ArticleRefused, match="you resolved the concern"):
            publish_article(session=session, article_id=other.id, by="carol@desk.test", role="lead")


async def test_articles_are_unpublished_archived_and_reopened_with_who_and_when(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    make_staff(desk.sessions, "olga@desk.test", "process_owner")
    with desk.sessions.begin() as session:
        article = create_article(session=session, title="Reset the router", owner_email="ada@desk.test",
                                 body="Hold the reset button of the router for ten seconds.")
        publish_article(session=session, article_id=article.id, by="ada@desk.test", role="agent")
    url = f"/kb/articles/{article.id}"

    def searchable() -> bool:
        with desk.sessions.begin() as session:
            return any(h.article_id == article.id for h in search_articles(session=session, query="router reset"))

    assert searchable() and "Reset the router" in (await desk.http.get("/portal/kb?q=router reset")).text
    async with Agent(desk, "ada@desk.test") as ada:
        assert (await ada.http.post(f"{url}/archive", data={"csrf_token": ada.token})).status_code == 403
    async with Agent(desk, "olga@desk.test") as olga:
        assert (await olga.http.post(f"{url}/unpublish", data={"csrf_token": olga.token})).status_code == 303
        assert not searchable()
        assert (await olga.http.post(f"{url}/archive", data={"csrf_token": olga.token})).status_code == 303
        page = await olga.http.get(url)
        assert "archived" in page.text and "Reopen as draft" in page.text and "Save as a new version" not in page.text
        refused = await olga.http.post(f"{url}/publish", data={"csrf_token": olga.token})
        assert refused.status_code == 409 and "reopen it as a draft first" in refused.text
        archived_list = await olga.http.get("/kb/articles?status=archived")
        assert "Reset the router" in archived_list.text
        assert (await olga.http.post(f"{url}/reopen", data={"csrf_token": olga.token})).status_code == 303
        history = (await olga.http.get(url)).text
    desk.http.cookies.clear()
    assert (await desk.http.get(f"/portal/kb/{article.id}")).status_code == 404
    assert not searchable()
    for action in ("published", "unpublished", "archived", "reopened"):
        assert action in history
    assert history.count("olga@desk.test") >= 3


async def test_revisions_open_compare_escaped_and_restore_as_a_new_revision(desk):
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1)
    with desk.sessions.begin() as session:
        article = create_article(session=session, title="Printer jams", owner_email="ada@desk.test",
                                 body="Open the tray.\nRemove the paper.")
        update_article(session=session, article_id=article.id, edited_by="ada@desk.test",
                       body="Open the tray.\nRemove the paper <script>alert(1)</script>.\nClose it.")
    url = f"/kb/articles/{article.id}"
    async with Agent(desk, "ada@desk.test") as ada:
        v1 = await ada.http.get(f"{url}/revisions/1")
        assert v1.status_code == 200 and "Remove the paper." in v1.text and "Restore this version" in v1.text
        diff = await ada.http.get(f"{url}/compare?old=1&new=2")
        assert diff.status_code == 200
        assert '<span class="del">-Remove the paper.</span>' in diff.text
        assert '<span class="add">+Remove the paper &lt;script&gt;alert(1)&lt;/script&gt;.</span>' in diff.text
        assert "<script>alert(1)" not in diff.text
        assert (await ada.http.get(f"{url}/compare?old=1&new=9")).status_code == 404
        assert (await ada.http.get(f"{url}/revisions/9223372036854775808")).status_code == 422
        restored = await ada.http.post(f"{url}/revisions/1/restore", data={"csrf_token": ada.token})
        assert restored.status_code == 303
        page = await ada.http.get(url)
    assert "v3" in page.text and "restored the text of v1" in page.text
    with desk.sessions.begin() as session:
        current = session.get(Article, article.id)
        assert (current.version, current.body) == (3, "Open the tray.\nRemove the paper.")
