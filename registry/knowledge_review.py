"""Knowledge articles after writing: unpublish, archive and reopen, revisions opened, compared and restored."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlmodel import Session, select

from registry.knowledge import (
    Article,
    ArticleEvent,
    ArticleNotFound,
    ArticleRefused,
    ArticleRevision,
    record_event,
    update_article,
)
from registry.types import utcnow


def _existing(session: Session, article_id: int) -> Article:
    article = session.get(Article, article_id, with_for_update=True)
    if article is None:
        raise ArticleNotFound(f"article {article_id} does not exist")
    return article


def _move(session: Session, article_id: int, *, to: str, allowed_from: tuple[str, ...], action: str, by: str,
          note: str) -> Article:
    article = _existing(session, article_id)
    if article.status == to:
        return article
    if article.status not in allowed_from:
        raise ArticleRefused(f"a {article.status} article cannot be {action}")
    article.status = to
    article.updated_at = utcnow()
    if to != "published":
        article.published_at, article.published_by = None, None
    session.add(article)
    session.flush()
    record_event(session=session, article=article, action=action, by=by, note=note)
    return article


def unpublish_article(*, session: Session, article_id: int, by: str, note: str = "") -> Article:
    """Take a published article out of the portal and away from the e-level; it stays as a draft."""
    return _move(session, article_id, to="draft", allowed_from=("published",), action="unpublished", by=by,
                 note=note)


def archive_article(*, session: Session, article_id: int, by: str, note: str = "") -> Article:
    """Retire an article (published or draft): out of every search, kept with its revisions."""
    return _move(session, article_id, to="archived", allowed_from=("draft", "published"), action="archived",
                 by=by, note=note)


def reopen_article(*, session: Session, article_id: int, by: str, note: str = "") -> Article:
    """Bring an archived article back as a draft (publishing it again is a separate step)."""
    return _move(session, article_id, to="draft", allowed_from=("archived",), action="reopened", by=by, note=note)


def get_revision(*, session: Session, article_id: int, version: int) -> ArticleRevision | None:
    """Version `version` of an article's text, or None."""
    return session.exec(select(ArticleRevision).where(
        ArticleRevision.article_id == article_id, ArticleRevision.version == version)).first()


def restore_revision(*, session: Session, article_id: int, version: int, by: str) -> Article:
    """Make an old version's title and text current again, as a new revision (history is never rewritten)."""
    old = get_revision(session=session, article_id=article_id, version=version)
    if old is None:
        raise ArticleNotFound(f"article {article_id} has no version {version}")
    article = _existing(session, article_id)
    if article.status == "archived":
        raise ArticleRefused("the article is archived; reopen it as a draft first")
    return update_article(session=session, article_id=article_id, edited_by=by, title=old.title, body=old.body,
                          action="restored", note=f"restored the text of v{version}")


def list_events(*, session: Session, article_id: int) -> list[ArticleEvent]:
    """Every staff change to an article, newest first."""
    statement = select(ArticleEvent).where(ArticleEvent.article_id == article_id)
    return list(session.exec(statement.order_by(ArticleEvent.id.desc())))


@dataclass
class DiffLine:
    """One line of a unified diff: `kind` is "add", "del", "hunk" or "same"; `text` is raw (escape to show)."""

    kind: str
    text: str


def diff_revisions(old: ArticleRevision, new: ArticleRevision) -> list[DiffLine]:
    """The unified diff from `old` to `new` (title first, then text), line by line."""
    before = [f"# {old.title}", "", *old.body.splitlines()]
    after = [f"# {new.title}", "", *new.body.splitlines()]
    lines = []
    for line in difflib.unified_diff(before, after, f"v{old.version}", f"v{new.version}", lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        kind = {"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "same")
        lines.append(DiffLine(kind=kind, text=line))
    return lines
