"""Knowledge articles: tables, version history, ranked full-text search on SQLite and PostgreSQL, safe Markdown."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Column, Text, UniqueConstraint, text
from sqlmodel import Field, Session, SQLModel, select

from registry import audit
from registry.knowledge_markdown import render_markdown, render_plain_text
from registry.types import JSONType, UTCDateTime, utcnow

__all__ = ["render_markdown", "render_plain_text"]  # kept here for the callers that read articles

ArticleStatus = Literal["draft", "published", "archived"]
STATUSES: tuple[str, ...] = ("draft", "published", "archived")
# Who may publish a draft carried forward from a resolution: a second person who reviews it.
REVIEWER_ROLES = frozenset({"lead", "process_owner", "admin"})


class Article(SQLModel, table=True):
    """A knowledge article that agents write and customers read once it is published."""

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    category: str | None = Field(default=None, max_length=60, index=True)
    tags: list[str] = Field(default_factory=list, sa_type=JSONType)
    status: str = Field(default="draft", max_length=10, index=True)
    owner_email: str = Field(max_length=320)
    version: int = 1
    source_concern_id: str | None = Field(default=None, foreign_key="concern.id", max_length=20, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    published_by: str | None = Field(default=None, max_length=320)
    # For drafts carried forward from a resolution: what kinds of personal data were removed, and how many.
    redactions: dict | None = Field(default=None, sa_type=JSONType)


class ArticleRevision(SQLModel, table=True):
    """One version of an article's text, kept forever so every edit can be traced."""

    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    version: int
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    edited_by: str = Field(max_length=320)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ArticleEvent(SQLModel, table=True):
    """Who did what to an article and when: created, revised, published, unpublished, archived, reopened, restored."""

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    action: str = Field(max_length=20)
    actor_email: str = Field(max_length=320)
    version: int
    note: str = Field(default="", max_length=500)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ArticleNotFound(LookupError):
    """No article has the given id."""


class ArticleConflict(ValueError):
    """The article changed since the editor loaded it."""


class ArticleRefused(ValueError):
    """The change is not allowed for this article or this person; the message says why and what to do."""


# Changes of what customers and the e-level see go to the staff audit log too; edits stay in the article's history.
AUDITED_EVENTS = ("published", "unpublished", "archived", "reopened")


def record_event(*, session: Session, article: Article, action: str, by: str, note: str = "") -> ArticleEvent:
    """Add one line to the article's history of staff changes (and to the audit log for a change of circulation)."""
    event = ArticleEvent(article_id=article.id, action=action, actor_email=by or "", version=article.version,
                         note=note[:500])
    session.add(event)
    session.flush()
    if action in AUDITED_EVENTS:
        audit.record(session=session, actor=by, action=f"kb.{action}", target=f"article:{article.id}",
                     detail={"title": article.title[:200], "version": article.version, "note": note[:500]})
    return event


class ArticleHit(BaseModel):
    """A search result; `score` is 0..1 on the same scale on every database, `snippet` is safe HTML."""

    article_id: int
    title: str
    score: float
    snippet: str
    category: str | None = None


# Control characters other than tab and newlines break PostgreSQL (NUL) and would forge snippet markers.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(value: str) -> str:
    return _CONTROL.sub("", value)


def _tag_list(tags: list[str] | tuple[str, ...]) -> list[str]:
    seen: dict[str, None] = {}
    for tag in tags:
        tag = _clean(tag).strip().lower()
        if tag:
            seen.setdefault(tag[:60], None)
    return list(seen)


def create_article(
    *,
    session: Session,
    title: str,
    body: str,
    owner_email: str,
    category: str | None = None,
    tags: list[str] | tuple[str, ...] = (),
    source_concern_id: str | None = None,
    redactions: dict | None = None,
) -> Article:
    """Write a new draft article and its first revision."""
    article = Article(
        title=_clean(title).strip(), body=_clean(body), owner_email=owner_email, category=category,
        tags=_tag_list(tags), source_concern_id=source_concern_id, redactions=redactions,
    )
    if not article.title:
        raise ValueError("an article needs a title")
    session.add(article)
    session.flush()
    session.add(ArticleRevision(article_id=article.id, version=1, title=article.title, body=article.body,
                                edited_by=owner_email, created_at=article.created_at))
    record_event(session=session, article=article, action="created", by=owner_email,
                 note=f"carried forward from {source_concern_id}" if source_concern_id else "")
    return article


def get_article(*, session: Session, article_id: int) -> Article | None:
    """The article with `article_id`, or None."""
    return session.get(Article, article_id)


def _existing(session: Session, article_id: int) -> Article:
    article = session.get(Article, article_id, with_for_update=True)
    if article is None:
        raise ArticleNotFound(f"article {article_id} does not exist")
    return article


def update_article(
    *,
    session: Session,
    article_id: int,
    edited_by: str,
    title: str | None = None,
    body: str | None = None,
    category: str | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    expected_version: int | None = None,
    action: str = "revised",
    note: str = "",
) -> Article:
    """Change an article, bump its version and keep the new text as a revision; a published article stays live."""
    article = _existing(session, article_id)
    if article.status == "archived":
        raise ArticleRefused("the article is archived; reopen it as a draft to change it")
    if expected_version is not None and article.version != expected_version:
        raise ArticleConflict(
            f"article {article_id} is at version {article.version}, not {expected_version}: someone else edited it"
        )
    if title is not None:
        article.title = _clean(title).strip()
        if not article.title:
            raise ValueError("an article needs a title")
    if body is not None:
        article.body = _clean(body)
    if category is not None:
        article.category = category or None
    if tags is not None:
        article.tags = _tag_list(tags)
    article.version += 1
    article.updated_at = utcnow()
    session.add(article)
    session.add(ArticleRevision(article_id=article.id, version=article.version, title=article.title,
                                body=article.body, edited_by=edited_by, created_at=article.updated_at))
    session.flush()
    record_event(session=session, article=article, action=action, by=edited_by, note=note)
    return article


def current_editor(*, session: Session, article: Article) -> str:
    """Who wrote the article's current text."""
    revision = session.exec(select(ArticleRevision).where(
        ArticleRevision.article_id == article.id, ArticleRevision.version == article.version)).first()
    return revision.edited_by if revision else article.owner_email


def publish_refusal(*, session: Session, article: Article, by: str | None, role: str | None) -> str | None:
    """Why `by` may not publish `article`, or None: a draft carried forward from a resolution needs a second person."""
    if article.status == "archived":
        return "the article is archived; reopen it as a draft first"
    if article.source_concern_id is None:
        return None
    if role not in REVIEWER_ROLES:
        return "a draft carried forward from a resolution is published by a lead or process owner after review"
    who = (by or "").lower()
    if who and who == (article.owner_email or "").lower():
        return "you resolved the concern this draft comes from; another lead or process owner reviews and publishes it"
    if who and who == current_editor(session=session, article=article).lower():
        return "you wrote the current text; another lead or process owner reviews and publishes it"
    return None


def publish_article(*, session: Session, article_id: int, by: str | None = None, role: str | None = None) -> Article:
    """Make an article visible to customers and to the e-level; publishing twice keeps the first date.

    A draft carried forward from a resolution is published only by a reviewer (`REVIEWER_ROLES`) who neither
    resolved its concern nor wrote its current text."""
    article = _existing(session, article_id)
    if article.status == "published":
        return article
    reason = publish_refusal(session=session, article=article, by=by, role=role)
    if reason:
        raise ArticleRefused(reason)
    article.status = "published"
    article.published_at = article.published_at or utcnow()
    article.published_by = by
    session.add(article)
    session.flush()
    record_event(session=session, article=article, action="published", by=by or "",
                 note="reviewed by a second person" if article.source_concern_id else "")
    return article


def list_articles(
    *, session: Session, status: ArticleStatus | None = None, category: str | None = None
) -> list[Article]:
    """Articles, most recently changed first, optionally of one status and category."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown article status {status!r} (use {', '.join(STATUSES)})")
    statement = select(Article)
    if status is not None:
        statement = statement.where(Article.status == status)
    if category is not None:
        statement = statement.where(Article.category == category)
    return list(session.exec(statement.order_by(Article.updated_at.desc(), Article.id.desc())))


def list_revisions(*, session: Session, article_id: int) -> list[ArticleRevision]:
    """An article's versions, newest first."""
    statement = select(ArticleRevision).where(ArticleRevision.article_id == article_id)
    return list(session.exec(statement.order_by(ArticleRevision.version.desc())))


# Search. The database finds and ranks candidates (FTS5 bm25, PostgreSQL ts_rank_cd); the score that
# thresholds compare against is computed here, identically for both, because raw bm25 and ts_rank_cd
# values live on unrelated scales (and bm25 collapses to ~0 for words found in most of a small corpus).

_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can cannot could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours out over own same she should so some such than that
    the their theirs them then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself dear hi hello hey
    thanks thank please regards cheers kind best help get got still also since"""
    # Weak verbs and fillers: "wifi not working" is about wifi, and must not find "two working days".
    """ work works working worked problem problems issue issues need needs want wants try trying tried use using
    used know like way thing things something anything nothing doesn don isn won didn wasn aren cant dont doesnt
    isnt wont seem seems seemed anymore""".split()
)
_WORD = re.compile(r"[^\W_]+")
_MAX_QUERY_TERMS = 32
# A question covered on this many of its words counts as fully covered, so long e-mails are not punished.
_COVERAGE_SATURATES_AT = 6
_MARK_OPEN, _MARK_CLOSE = "\x02", "\x03"
_MARKDOWN_PUNCTUATION = re.compile(r"(?m)^\s*(?:#{1,6}|>|[-*+]|\d+\.)\s+|\*\*|__|[*`|\[]|\]\([^)]*\)|\]")


def query_terms(query: str) -> list[str]:
    """The distinct content words of a search text, in order, without stop words (at most 32)."""
    terms: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in _STOPWORDS and (len(word) > 1 or word.isdigit()):
            terms.setdefault(word, None)
        if len(terms) == _MAX_QUERY_TERMS:
            break
    return list(terms)


def _stem(word: str) -> str:
    for suffix in ("ation", "ing", "ed", "es", "s", "e", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not (suffix == "s" and word.endswith("ss")):
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]
    # Truncation meets the variants the suffix rules miss (forgot/forgotten, deliver/delivery).
    return word[:6]


def _stems(value: str) -> set[str]:
    return {_stem(word) for word in query_terms(value)} if value else set()


def _stems_of_text(value: str) -> set[str]:
    return {_stem(word) for word in _WORD.findall(value.lower()) if word not in _STOPWORDS}


def match_score(query: str, *, title: str, body: str, category: str | None = None, tags: list[str] = ()) -> float:
    """How well an article answers `query`, 0..1: half for the share of the question it covers, half for its title."""
    asked = _stems(query)
    title_stems = _stems_of_text(title)
    if not asked or not title_stems:
        return 0.0
    article = title_stems | _stems_of_text(body) | _stems_of_text(category or "") | _stems_of_text(" ".join(tags))
    covered = min(1.0, len(asked & article) / min(len(asked), _COVERAGE_SATURATES_AT))
    named = len(asked & title_stems) / len(title_stems)
    return round(0.5 * covered + 0.5 * named, 4)


def _snippet_html(raw: str | None) -> str:
    plain = " ".join(_MARKDOWN_PUNCTUATION.sub("", raw or "").split())
    return html.escape(plain).replace(_MARK_OPEN, "<mark>").replace(_MARK_CLOSE, "</mark>")


_CANDIDATE_COLUMNS = {"tags": JSONType}


def _candidates_sqlite(session: Session, terms: list[str], pool: int, published_only: bool) -> list[Any]:
    match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
    status = "AND a.status = 'published'" if published_only else ""
    statement = text(
        f"""
        SELECT a.id, a.title, a.body, a.category, a.tags,
               snippet(article_fts, 1, :mark_open, :mark_close, ' … ', 24) AS snippet
        FROM article_fts JOIN article AS a ON a.id = article_fts.rowid
        WHERE article_fts MATCH :match {status}
        ORDER BY bm25(article_fts, 4.0, 1.0, 2.0, 2.0), a.id
        LIMIT :pool
        """
    ).columns(**_CANDIDATE_COLUMNS)
    params = {"match": match, "pool": pool, "mark_open": _MARK_OPEN, "mark_close": _MARK_CLOSE}
    return list(session.execute(statement, params))


def _candidates_postgresql(session: Session, terms: list[str], pool: int, published_only: bool) -> list[Any]:
    status = "AND a.status = 'published'" if published_only else ""
    headline = (
        f"StartSel={_MARK_OPEN}, StopSel={_MARK_CLOSE}, MaxWords=30, MinWords=12, "
        'MaxFragments=2, FragmentDelimiter=" … "'
    )
    statement = text(
        f"""
        SELECT a.id, a.title, a.body, a.category, a.tags,
               ts_headline('english', a.body, q, :headline) AS snippet
        FROM article AS a, websearch_to_tsquery('english', :query) AS q
        WHERE a.search_vector @@ q {status}
        ORDER BY ts_rank_cd(a.search_vector, q, 1) DESC, a.id
        LIMIT :pool
        """
    ).columns(**_CANDIDATE_COLUMNS)
    # websearch syntax ORs the words, so a long e-mail still finds articles that share some of them.
    params = {"query": " or ".join(terms), "pool": pool, "headline": headline}
    return list(session.execute(statement, params))


def search_articles(
    *, session: Session, query: str, limit: int = 5, published_only: bool = True, min_score: float = 0.0
) -> list[ArticleHit]:
    """The articles best matching `query`, best first, with a 0..1 score comparable across databases; those
    scoring below `min_score` are left out (a word in passing is not an answer)."""
    terms = query_terms(query)
    if not terms or limit < 1:
        return []
    pool = max(limit * 4, 20)
    if session.get_bind().dialect.name == "postgresql":
        rows = _candidates_postgresql(session, terms, pool, published_only)
    else:
        rows = _candidates_sqlite(session, terms, pool, published_only)
    query_text = " ".join(terms)
    hits = [
        ArticleHit(
            article_id=row.id, title=row.title, category=row.category, snippet=_snippet_html(row.snippet),
            score=match_score(query_text, title=row.title, body=row.body, category=row.category, tags=row.tags or []),
        )
        for row in rows
    ]
    hits.sort(key=lambda hit: -hit.score)  # stable, so the database's rank orders equal scores
    return [hit for hit in hits if hit.score >= min_score][:limit]
