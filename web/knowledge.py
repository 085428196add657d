"""Knowledge-base pages for staff: write, revise, review and publish, unpublish and archive articles, compare
and restore revisions (customers read published articles in the portal)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse

from api.deps import SessionsDep
from registry.knowledge import (
    STATUSES,
    ArticleConflict,
    ArticleNotFound,
    ArticleRefused,
    create_article,
    get_article,
    list_articles,
    list_revisions,
    publish_article,
    publish_refusal,
    render_markdown,
    update_article,
)
from registry.knowledge_feedback import feedback_for
from registry.knowledge_review import (
    archive_article,
    diff_revisions,
    get_revision,
    list_events,
    reopen_article,
    restore_revision,
    unpublish_article,
)
from registry.redaction import Redacted
from web.csrf import verify_csrf
from web.templating import render

router = APIRouter(include_in_schema=False)

# Versions beyond any database's integer are answered 422 by the route, not 500 by the database.
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
OptionalVersion = Annotated[int, Query(ge=0, le=2**31 - 1)]

WRITERS = ("agent", "lead", "process_owner", "admin")
# Who takes articles out of circulation and back (the role matrix says the same for the routes).
CURATORS = ("lead", "process_owner", "admin")
LIMITS = {"title": 200, "body": 50_000, "category": 60}


def _form_errors(form: dict) -> list[str]:
    errors = [f"the {name} is longer than {n} characters" for name, n in LIMITS.items() if len(form[name]) > n]
    if not form["title"].strip():
        errors.append("give the article a title")
    if not form["body"].strip():
        errors.append("write the article's text")
    return errors


async def _read_form(request: Request) -> dict:
    data = await request.form()
    form = {k: str(data.get(k, "")) for k in ("title", "body", "category", "tags", "version")}
    form["tag_list"] = [t.strip() for t in form["tags"].split(",") if t.strip()][:20]
    return form


@router.get("/kb/articles")
def articles(request: Request, sessions: SessionsDep, status: str = ""):
    with sessions.begin() as session:
        rows = list_articles(session=session, status=status if status in STATUSES else None)
        feedback = feedback_for(session=session, article_ids=[a.id for a in rows])
    return render(request, "kb/list.html", {"articles": rows, "status": status, "feedback": feedback})


@router.get("/kb/articles/new")
def new_article(request: Request):
    return render(request, "kb/edit.html", {"article": None, "form": {}, "errors": []})


@router.post("/kb/articles", dependencies=[Depends(verify_csrf)])
async def create(request: Request, sessions: SessionsDep):
    form = await _read_form(request)
    errors = _form_errors(form)
    if errors:
        return render(request, "kb/edit.html", {"article": None, "form": form, "errors": errors}, status_code=422)
    with sessions.begin() as session:
        article = create_article(session=session, title=form["title"], body=form["body"],
                                 owner_email=request.state.principal.email or "", category=form["category"] or None,
                                 tags=form["tag_list"])
    return RedirectResponse(f"/kb/articles/{article.id}", status_code=303)


def _actor(request: Request) -> tuple[str, str]:
    principal = request.state.principal
    return principal.email or "", principal.role


def _page(request: Request, sessions, article_id: int, *, form=None, errors=(), status_code=200):
    email, role = _actor(request)
    with sessions.begin() as session:
        article = get_article(session=session, article_id=article_id)
        if article is None:
            return render(request, "kb/missing.html", {"article_id": article_id}, status_code=404)
        revisions = list_revisions(session=session, article_id=article_id)
        events = list_events(session=session, article_id=article_id)
        cannot_publish = publish_refusal(session=session, article=article, by=email, role=role)
        feedback = feedback_for(session=session, article_ids=[article_id])[article_id]
    return render(request, "kb/article.html", {
        "article": article, "html": render_markdown(article.body), "revisions": revisions, "events": events,
        "feedback": feedback,
        "cannot_publish": cannot_publish, "curator": role in CURATORS,
        "redaction_note": Redacted(text="", removed=Counter(article.redactions or {})).note(),
        "form": form or {"title": article.title, "body": article.body, "category": article.category or "",
                         "tags": ", ".join(article.tags), "version": article.version},
        "errors": list(errors),
    }, status_code=status_code)


@router.get("/kb/articles/{article_id}")
def article_page(request: Request, article_id: int, sessions: SessionsDep):
    return _page(request, sessions, article_id)


@router.post("/kb/articles/{article_id}", dependencies=[Depends(verify_csrf)])
async def revise(request: Request, article_id: int, sessions: SessionsDep):
    form = await _read_form(request)
    errors = _form_errors(form)
    if not errors:
        try:
            with sessions.begin() as session:
                update_article(session=session, article_id=article_id, edited_by=request.state.principal.email or "",
                               title=form["title"], body=form["body"], category=form["category"] or None,
                               tags=form["tag_list"],
                               expected_version=int(form["version"]) if form["version"].isdigit() else None)
        except ArticleConflict:
            errors = ["someone saved a newer version while you were editing; your text is below, the newer "
                      "version is shown on the left — merge and save again"]
        except ArticleRefused as refused:
            errors = [str(refused)]
        except ArticleNotFound:
            return _page(request, sessions, article_id)
    if errors:
        with sessions.begin() as session:
            current = get_article(session=session, article_id=article_id)
        form["version"] = str(current.version) if current else form["version"]
        return _page(request, sessions, article_id, form=form, errors=errors, status_code=409 if any(
            "newer version" in e for e in errors) else 422)
    return RedirectResponse(f"/kb/articles/{article_id}", status_code=303)


@router.post("/kb/articles/{article_id}/publish", dependencies=[Depends(verify_csrf)])
def publish(request: Request, article_id: int, sessions: SessionsDep):
    email, role = _actor(request)
    try:
        with sessions.begin() as session:
            publish_article(session=session, article_id=article_id, by=email, role=role)
    except ArticleNotFound:
        return _page(request, sessions, article_id)
    except ArticleRefused as refused:
        return _page(request, sessions, article_id, errors=[str(refused)], status_code=409)
    return RedirectResponse(f"/kb/articles/{article_id}", status_code=303)


def _move(request: Request, sessions, article_id: int, change) -> object:
    email, _ = _actor(request)
    try:
        with sessions.begin() as session:
            change(session=session, article_id=article_id, by=email)
    except ArticleNotFound:
        return _page(request, sessions, article_id)
    except ArticleRefused as refused:
        return _page(request, sessions, article_id, errors=[str(refused)], status_code=409)
    return RedirectResponse(f"/kb/articles/{article_id}", status_code=303)


@router.post("/kb/articles/{article_id}/unpublish", dependencies=[Depends(verify_csrf)])
def unpublish(request: Request, article_id: int, sessions: SessionsDep):
    return _move(request, sessions, article_id, unpublish_article)


@router.post("/kb/articles/{article_id}/archive", dependencies=[Depends(verify_csrf)])
def archive(request: Request, article_id: int, sessions: SessionsDep):
    return _move(request, sessions, article_id, archive_article)


@router.post("/kb/articles/{article_id}/reopen", dependencies=[Depends(verify_csrf)])
def reopen(request: Request, article_id: int, sessions: SessionsDep):
    return _move(request, sessions, article_id, reopen_article)


@router.get("/kb/articles/{article_id}/revisions/{version}")
def revision_page(request: Request, article_id: int, version: Version, sessions: SessionsDep):
    with sessions.begin() as session:
        article = get_article(session=session, article_id=article_id)
        revision = get_revision(session=session, article_id=article_id, version=version) if article else None
        if revision is None:
            return render(request, "kb/missing.html", {"article_id": article_id, "version": version}, status_code=404)
        revisions = list_revisions(session=session, article_id=article_id)
    return render(request, "kb/revision.html", {
        "article": article, "revision": revision, "html": render_markdown(revision.body), "revisions": revisions})


@router.get("/kb/articles/{article_id}/compare")
def compare_page(request: Request, article_id: int, sessions: SessionsDep, old: OptionalVersion = 0,
                 new: OptionalVersion = 0):
    with sessions.begin() as session:
        article = get_article(session=session, article_id=article_id)
        if article is None:
            return render(request, "kb/missing.html", {"article_id": article_id}, status_code=404)
        new = new or article.version
        old = old or max(1, new - 1)
        older = get_revision(session=session, article_id=article_id, version=old)
        newer = get_revision(session=session, article_id=article_id, version=new)
        revisions = list_revisions(session=session, article_id=article_id)
    if older is None or newer is None:
        return render(request, "kb/missing.html", {"article_id": article_id, "version": old if older is None else new},
                      status_code=404)
    return render(request, "kb/compare.html", {
        "article": article, "old": older, "new": newer, "lines": diff_revisions(older, newer),
        "revisions": revisions})


@router.post("/kb/articles/{article_id}/revisions/{version}/restore", dependencies=[Depends(verify_csrf)])
def restore(request: Request, article_id: int, version: Version, sessions: SessionsDep):
    email, _ = _actor(request)
    try:
        with sessions.begin() as session:
            restore_revision(session=session, article_id=article_id, version=version, by=email)
    except ArticleNotFound:
        return _page(request, sessions, article_id, errors=[f"there is no version {version} to restore"],
                     status_code=404)
    except ArticleRefused as refused:
        return _page(request, sessions, article_id, errors=[str(refused)], status_code=409)
    return RedirectResponse(f"/kb/articles/{article_id}", status_code=303)
