"""The knowledge store on SQLite and PostgreSQL: articles, version history and ranked full-text search."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from tests.conftest import DATABASES, fresh_database_url
from tests.knowledge_corpus import load_corpus
from sqlmodel import SQLModel

import registry.tables  # noqa: F401
from registry.db import Sessions, make_engine
from registry.knowledge import (
    ArticleConflict,
    ArticleNotFound,
    create_article,
    get_article,
    list_articles,
    list_revisions,
    publish_article,
    search_articles,
    update_article,
)
from registry.migrate import alembic_config, current_heads


def _search(sessions: Sessions, query: str, **kw) -> list:
    with sessions.begin() as session:
        return search_articles(session=session, query=query, **kw)


def test_an_article_keeps_every_version_and_publishing_makes_it_listed(sessions):
    with sessions.begin() as session:
        article = create_article(session=session, title="  Change your address ", body="Go to *Profile*.",
                                 owner_email="ann@desk.example", category="account-access",
                                 tags=["Profile", "address", "profile", " "])
    assert (article.version, article.status, article.title) == (1, "draft", "Change your address")
    assert article.tags == ["profile", "address"]

    with sessions.begin() as session:
        update_article(session=session, article_id=article.id, edited_by="bob@desk.example",
                       body="Go to *Profile* > *Address*.", expected_version=1)
        with pytest.raises(ArticleConflict, match="version 2, not 1"):
            update_article(session=session, article_id=article.id, edited_by="eve@desk.example",
                           title="Stale edit", expected_version=1)
    with sessions.begin() as session:
        published = publish_article(session=session, article_id=article.id)
        first_published_at = published.published_at
        assert publish_article(session=session, article_id=article.id).published_at == first_published_at
        revisions = list_revisions(session=session, article_id=article.id)
        stored = get_article(session=session, article_id=article.id)
        assert [a.id for a in list_articles(session=session, status="published")] == [article.id]
        assert list_articles(session=session, status="draft") == []
        assert [a.id for a in list_articles(session=session, category="account-access")] == [article.id]
        assert list_articles(session=session, category="billing") == []

    assert stored.version == 2 and stored.status == "published" and stored.body == "Go to *Profile* > *Address*."
    assert [(r.version, r.edited_by, r.body) for r in revisions] == [
        (2, "bob@desk.example", "Go to *Profile* > *Address*."),
        (1, "ann@desk.example", "Go to *Profile*."),
    ]


def test_unknown_articles_and_bad_input_are_refused_clearly(sessions):
    with sessions.begin() as session:
        assert get_article(session=session, article_id=999) is None
        with pytest.raises(ArticleNotFound, match="article 999 does not exist"):
            update_article(session=session, article_id=999, edited_by="x@desk.example", title="x")
        with pytest.raises(ArticleNotFound):
            publish_article(session=session, article_id=999)
        with pytest.raises(ValueError, match="needs a title"):
            create_article(session=session, title="  ", body="x", owner_email="x@desk.example")
        with pytest.raises(ValueError, match="unknown article status"):
            list_articles(session=session, status="retired")


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("password reset", "Reset a forgotten password"),
        ("I forgot my password and the login page says my credentials are wrong", "Reset a forgotten password"),
        ("my account is locked after too many attempts", "Unlock a locked account"),
        ("Where is my parcel? The tracking page shows nothing", "Track your order"),
        ("refund", "Request a refund"),
        ("I need copies of all invoices for our accounting", "Download your invoices"),
        ("switch to direct debit", "Change your payment method"),
        ("new phone lost my authenticator app", "Set up two-factor authentication on a new phone"),
        ("opening hours on public holidays", "Opening hours and holidays"),
    ],
)
def test_the_best_article_comes_first(sessions, query, best):
    ids = load_corpus(sessions)
    hits = _search(sessions, query)
    assert hits, f"nothing found for {query!r}"
    assert hits[0].article_id == ids[best], [(h.title, h.score) for h in hits]
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_scores_are_the_same_on_every_database(tmp_path):
    if len(DATABASES) < 2:
        pytest.skip("PostgreSQL is not reachable")
    queries = ["password reset", "Where is my parcel? The tracking page shows nothing", "invoice payment refund",
               "my data does not sync between the desktop app and the phone"]
    results = {}
    for kind in DATABASES:
        engine = make_engine(fresh_database_url(kind, tmp_path))
        sessions = Sessions(engine)
        ids = {v: k for k, v in load_corpus(sessions).items()}
        results[kind] = [{(ids[h.article_id], h.score) for h in _search(sessions, q, limit=10)} for q in queries]
        engine.dispose()
    assert results["sqlite"] == results["postgresql"]


def test_drafts_are_found_only_when_asked_for(sessions):
    ids = load_corpus(sessions, publish=False)
    assert _search(sessions, "refund") == []
    drafts = _search(sessions, "refund", published_only=False)
    assert drafts[0].article_id == ids["Request a refund"]
    with sessions.begin() as session:
        publish_article(session=session, article_id=ids["Request a refund"])
    assert [hit.article_id for hit in _search(sessions, "refund")] == [ids["Request a refund"]]


def test_editing_an_article_updates_the_index(sessions):
    ids = load_corpus(sessions)
    refund = ids["Request a refund"]
    assert _search(sessions, "chargeback") == []
    with sessions.begin() as session:
        update_article(session=session, article_id=refund, edited_by="ann@desk.example",
                       title="Refunds and chargebacks",
                       body="Ask us before you start a chargeback with your bank; we refund faster.")
    hits = _search(sessions, "chargeback")
    assert [hit.article_id for hit in hits] == [refund]
    assert hits[0].title == "Refunds and chargebacks"
    assert "<mark>chargeback</mark>" in hits[0].snippet
    assert _search(sessions, "statement") == [], "the old body must leave the index"


def test_snippets_highlight_matches_and_are_safe_html(sessions):
    with sessions.begin() as session:
        article = create_article(session=session, title="Scripts in articles",
                                 body="Never paste <script>alert('x')</script> into the password field.",
                                 owner_email="ann@desk.example")
        publish_article(session=session, article_id=article.id)
    (hit,) = _search(sessions, "password field")
    assert "<mark>password</mark>" in hit.snippet and "<mark>field</mark>" in hit.snippet
    # SQLite's snippet keeps the tag as escaped text, PostgreSQL's headline drops it: never live markup.
    assert "<script" not in hit.snippet and "alert(" in hit.snippet


def test_queries_without_words_find_nothing(sessions):
    load_corpus(sessions)
    assert _search(sessions, "") == []
    assert _search(sessions, "the and of ??? ''' \"\" OR NOT *") == []
    assert _search(sessions, "zebra quantum") == []
    assert len(_search(sessions, "password invoice order sync hours", limit=3)) == 3


def test_migration_matches_the_models_and_downgrades(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        ours = [d for d in diffs if "article" in repr(d) and "search_vector" not in repr(d)
                and "article_fts" not in repr(d)]
        assert ours == []
        config = alembic_config(database_url)
        command.downgrade(config, "knowledge@-1")
        assert "0100" not in current_heads(database_url)
        command.upgrade(config, "heads")
        # Back at the newest revision of every branch: each head of the scripts is applied, 0100 included.
        script = ScriptDirectory.from_config(config)
        applied = {r.revision for r in script.iterate_revisions(tuple(current_heads(database_url)), "base")}
        assert "0100" in applied and set(script.get_heads()) <= applied
        sessions = Sessions(engine)
        load_corpus(sessions)
        assert _search(sessions, "refund")[0].title == "Request a refund"
    finally:
        engine.dispose()

