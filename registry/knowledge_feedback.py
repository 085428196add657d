"""How customers use the help centre: views and "was this helpful?" answers per article, popular articles and the
categories to browse."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from registry.knowledge import Article
from registry.types import UTCDateTime, utcnow


class ArticleFeedback(SQLModel, table=True):
    """One published article's counters: how often customers opened it and answered "was this helpful?"."""

    article_id: int = Field(foreign_key="article.id", primary_key=True)
    views: int = 0
    helpful: int = 0
    not_helpful: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Feedback(BaseModel):
    """An article's counters as pages show them."""

    views: int = 0
    helpful: int = 0
    not_helpful: int = 0

    @property
    def votes(self) -> int:
        return self.helpful + self.not_helpful


def _bump(session: Session, article_id: int, changes: dict[str, int]) -> None:
    """Add `changes` to an article's counters in one statement, creating its row on first use (no lost
    updates when two customers vote at once, on SQLite and PostgreSQL alike)."""
    table = ArticleFeedback.__table__
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    statement = insert(table).values(article_id=article_id, updated_at=now,
                                     **{k: max(v, 0) for k, v in changes.items()})
    statement = statement.on_conflict_do_update(
        index_elements=["article_id"],
        set_={**{k: func.max(table.c[k] + v, 0) if session.get_bind().dialect.name == "sqlite"
                 else func.greatest(table.c[k] + v, 0) for k, v in changes.items()}, "updated_at": now})
    session.execute(statement)


def record_view(*, session: Session, article_id: int) -> None:
    """Count one customer's visit of an article."""
    _bump(session, article_id, {"views": 1})


def record_vote(*, session: Session, article_id: int, helpful: bool, previous: bool | None = None) -> None:
    """Count a "was this helpful?" answer; `previous` is the same visitor's earlier answer, which it replaces."""
    column = "helpful" if helpful else "not_helpful"
    if previous is helpful:
        return
    changes = {column: 1}
    if previous is not None:
        changes["not_helpful" if helpful else "helpful"] = -1
    _bump(session, article_id, changes)


def feedback_for(*, session: Session, article_ids: list[int]) -> dict[int, Feedback]:
    """The counters of each article in `article_ids` (zero for those nobody has opened)."""
    rows = session.exec(select(ArticleFeedback).where(col(ArticleFeedback.article_id).in_(article_ids))) \
        if article_ids else []
    found = {r.article_id: Feedback(views=r.views, helpful=r.helpful, not_helpful=r.not_helpful) for r in rows}
    return {i: found.get(i, Feedback()) for i in article_ids}


def popular_articles(*, session: Session, limit: int = 5) -> list[Article]:
    """The published articles customers open and find helpful most (a "yes" counts as three visits, a "no"
    takes three away); articles nobody has found useful yet are not popular."""
    score = (func.coalesce(ArticleFeedback.views, 0) + 3 * func.coalesce(ArticleFeedback.helpful, 0)
             - 3 * func.coalesce(ArticleFeedback.not_helpful, 0))
    statement = (
        select(Article).join(ArticleFeedback, col(ArticleFeedback.article_id) == col(Article.id))
        .where(Article.status == "published", score > 0)
        .order_by(score.desc(), col(Article.published_at).desc(), col(Article.id).desc())
        .limit(limit)
    )
    return list(session.exec(statement))


def published_categories(*, session: Session) -> list[tuple[str, int]]:
    """The categories of published articles with how many each has, by name."""
    statement = (select(Article.category, func.count()).where(Article.status == "published",
                                                               col(Article.category).is_not(None))
                 .group_by(Article.category).order_by(Article.category))
    return [(category, count) for category, count in session.exec(statement)]


def published_in(*, session: Session, category: str) -> list[Article]:
    """The published articles of one category, by title."""
    return list(session.exec(select(Article).where(Article.status == "published", Article.category == category)
                             .order_by(Article.title)))


def category_label(category: str | None) -> str:
    """"Account access" for account-access."""
    return (category or "").replace("-", " ").replace("_", " ").strip().capitalize()
