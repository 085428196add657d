"""The `kb_answer` action: answer a concern with the best published article, when it matches well enough."""

from __future__ import annotations

import asyncio

from activities.elevel.base import Automation, AutomationContext, AutomationRequest, AutomationResult, register
from registry.db import Sessions
from registry.knowledge import Article, ArticleHit, get_article, render_plain_text, search_articles

# Calibrated with the shipped sample concerns against a ten-article knowledge base: concerns about an
# article's topic score 0.5 and up (the same on SQLite and PostgreSQL); between 0.3 and 0.5 the best
# article is as often a neighbour that shares one title word ("order", "request") as the right one.
DEFAULT_KB_THRESHOLD = 0.5


def article_link(base_url: str, article_id: int) -> str:
    """The portal address of a published article."""
    return f"{base_url.rstrip('/')}/portal/kb/{article_id}"


def _best_article(sessions: Sessions, query: str) -> tuple[ArticleHit, Article] | None:
    with sessions.begin() as session:
        hits = search_articles(session=session, query=query, limit=1)
        if not hits:
            return None
        article = get_article(session=session, article_id=hits[0].article_id)
        return (hits[0], article) if article is not None else None


def answer_text(article: Article, link: str) -> str:
    """The message the customer receives: the article as plain text and where to read it online."""
    return f"{article.title}\n\n{render_plain_text(article.body)}\n\nRead this article online: {link}"


@register
class KbAnswer(Automation):
    """Sends the customer the published article that best answers their concern."""

    name = "kb_answer"

    async def run(self, request: AutomationRequest, ctx: AutomationContext) -> AutomationResult:
        """`answered` with the article when its score reaches the threshold, else `no_match`."""
        threshold = float(ctx.options.get("kb_threshold", DEFAULT_KB_THRESHOLD))
        found = await asyncio.to_thread(_best_article, ctx.sessions, f"{request.subject}\n{request.body}")
        if found is None:
            return AutomationResult(outcome="no_match", score=0.0, detail="no published article shares its words")
        hit, article = found
        if hit.score < threshold:
            return AutomationResult(
                outcome="no_match", score=hit.score,
                detail=f"best article {hit.article_id} '{hit.title}' scored {hit.score:.2f}, below {threshold:.2f}",
            )
        return AutomationResult(
            outcome="answered", score=hit.score, article_id=article.id,
            message=answer_text(article, article_link(ctx.settings.base_url, article.id)),
            detail=f"article {article.id} '{article.title}' version {article.version} scored {hit.score:.2f}",
        )
