"""Knowledge-base pages for staff: write, revise and publish articles (customers read them in the portal)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from api.deps import SessionsDep
from registry.knowledge import (
    ArticleConflict,
    ArticleNotFound,
    create_article,
    get_article,
    list_articles,
    list_revisions,
    publish_article,
    render_markdown,
    update_article,
)
from web.csrf import verify_csrf
from web.templating import render

router = APIRouter(include_in_schema=False)

WRITERS = ("agent", "lead", "process_owner", "admin")
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
        rows = list_articles(session=session, status=status if status in ("draft", "published") else None)
    return render(request, "kb/list.html", {"articles": rows, "status": status})


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


def _page(request: Request, sessions, article_id: int, *, form=None, errors=(), status_code=200):
    with sessions.begin() as session:
        article = get_article(session=session, article_id=article_id)
        if article is None:
            return render(request, "kb/missing.html", {"article_id": article_id}, status_code=404)
        revisions = list_revisions(session=session, article_id=article_id)
    return render(request, "kb/article.html", {
        "article": article, "html": render_markdown(article.body), "revisions": revisions,
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
    try:
        with sessions.begin() as session:
            publish_article(session=session, article_id=article_id)
    except ArticleNotFound:
        pass
    return RedirectResponse(f"/kb/articles/{article_id}", status_code=303)
