"""The draft editor and publishing for process owners: start a draft, edit its YAML with every problem shown
as they type, share it for review, publish it with a note."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from api.deps import CatalogDep, SessionsDep
from registry.sop_checks import check_text
from registry.sop_drafts import (
    DraftNotFound,
    DraftRefused,
    create_draft,
    delete_draft,
    get_draft,
    may_edit,
    save_draft,
    share_draft,
)
from registry.sop_publish import PublishConflict, PublishRefused, publish_text
from registry.sop_store import get_version, latest_version, version_yaml
from sops.diff import compare, text_diff
from sops.schema import SopDefinition
from sops.source import too_large
from web.csrf import verify_csrf
from web.sops import draft_chart, marked, version_chart
from web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
SKELETON = """\
id: {id}
title: {title}
applies_to: {{categories: [{id}]}}
sla: standard
start: level1
steps:
  level1:
    type: human
    title: First-level support
    level: 1
    skills: [general]
    outcomes: {{resolved: survey}}
  survey: {{type: survey, next: close}}
  close: {{type: end, result: resolved}}
"""


def _who(request: Request):
    principal = request.state.principal
    return principal.id, principal.role


def _missing(request: Request, text: str):
    return render(request, "sops/missing.html", {"what": text}, status_code=404)


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: str(v) for k, v in data.items() if isinstance(v, str)}


@router.get("/sops/new")
def new_sop(request: Request):
    return render(request, "sops/new.html", {"form": {}, "error": ""})


@router.post("/sops/new", dependencies=[Depends(verify_csrf)])
async def create_sop_draft(request: Request, sessions: SessionsDep):
    form = await _form(request)
    sop_id, title = form.get("id", "").strip(), form.get("title", "").strip() or "New SOP"
    error = "" if _SLUG.fullmatch(sop_id) and len(sop_id) <= 100 else (
        "an id is lowercase letters and digits joined by '-' or '_', such as returns or vip-complaints")
    with sessions.begin() as session:
        if not error and latest_version(session=session, sop_id=sop_id) is not None:
            error = f"the SOP {sop_id!r} exists already; start a draft from one of its versions instead"
        if error:
            return render(request, "sops/new.html", {"form": form, "error": error}, status_code=422)
        principal = request.state.principal
        draft = create_draft(session=session, sop_id=sop_id, author_id=principal.id, author_email=principal.email or "",
                             author_name=principal.name, text=SKELETON.format(id=sop_id, title=title[:200]),
                             base_version=None)
    return RedirectResponse(f"/sops/{sop_id}/drafts/{draft.id}", status_code=303)


@router.post("/sops/{sop_id}/drafts", dependencies=[Depends(verify_csrf)])
async def start_draft(request: Request, sop_id: str, sessions: SessionsDep):
    form = await _form(request)
    number = int(form["version"]) if form.get("version", "").isdigit() else None
    principal = request.state.principal
    with sessions.begin() as session:
        base = (get_version(session=session, sop_id=sop_id, version=number) if number and number < 2**31
                else latest_version(session=session, sop_id=sop_id))
        if base is None:
            return _missing(request, f"version {number} of SOP {sop_id!r}" if number else f"SOP {sop_id!r}")
        draft = create_draft(session=session, sop_id=sop_id, author_id=principal.id, author_email=principal.email or "",
                             author_name=principal.name, text=version_yaml(base), base_version=base.version)
    return RedirectResponse(f"/sops/{sop_id}/drafts/{draft.id}", status_code=303)


def _checked(session, catalog, draft):
    report = check_text(draft.source_yaml, vocabulary=catalog.vocabulary, session=session, sop_id=draft.sop_id)
    return {"report": report, "chart": draft_chart(report.data)}


def _editor(request: Request, sessions, catalog, sop_id: str, draft_id: int, *, status_code=200, error="",
            notice=""):
    user_id, role = _who(request)
    with sessions.read() as session:
        try:
            draft = get_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=user_id, role=role)
        except DraftNotFound as missing:
            return _missing(request, str(missing).removeprefix("there is no "))
        context = {"draft": draft, "editable": may_edit(draft, user_id=user_id, role=role), "error": error,
                   "notice": notice, "latest": latest_version(session=session, sop_id=sop_id),
                   **_checked(session, catalog, draft)}
    return render(request, "sops/draft.html", context, status_code=status_code)


@router.get("/sops/{sop_id}/drafts/{draft_id}")
def draft_page(request: Request, sop_id: str, draft_id: int, sessions: SessionsDep, catalog: CatalogDep):
    return _editor(request, sessions, catalog, sop_id, draft_id)


@router.post("/sops/{sop_id}/drafts/{draft_id}", dependencies=[Depends(verify_csrf)])
async def save(request: Request, sop_id: str, draft_id: int, sessions: SessionsDep, catalog: CatalogDep):
    """Save the draft's text and check it: the whole editor for a form post, the check alone for htmx."""
    text = (await _form(request)).get("yaml", "").replace("\r\n", "\n")
    user_id, role = _who(request)
    refused = too_large(text)
    if refused:
        if is_htmx(request):
            return render(request, "sops/_check.html", {"report": None, "chart": None, "error": refused},
                          status_code=413)
        return _editor(request, sessions, catalog, sop_id, draft_id, status_code=413, error=refused)
    try:
        with sessions.begin() as session:
            draft = save_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=user_id, role=role,
                               text=text)
            context = {"draft": draft, **_checked(session, catalog, draft), "saved": True}
    except DraftNotFound as missing:
        return _missing(request, str(missing).removeprefix("there is no "))
    except DraftRefused as refusal:
        if is_htmx(request):
            return render(request, "sops/_check.html", {"report": None, "chart": None, "error": str(refusal)},
                          status_code=409)
        return _editor(request, sessions, catalog, sop_id, draft_id, status_code=409, error=str(refusal))
    if is_htmx(request):
        return render(request, "sops/_check.html", context)
    return RedirectResponse(f"/sops/{sop_id}/drafts/{draft_id}", status_code=303)


@router.post("/sops/{sop_id}/drafts/{draft_id}/share", dependencies=[Depends(verify_csrf)])
async def share(request: Request, sop_id: str, draft_id: int, sessions: SessionsDep, catalog: CatalogDep):
    note = (await _form(request)).get("note", "").strip()[:2000]
    user_id, role = _who(request)
    try:
        with sessions.begin() as session:
            share_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=user_id, role=role,
                        by=request.state.principal.email or "", note=note)
    except DraftNotFound as missing:
        return _missing(request, str(missing).removeprefix("there is no "))
    except DraftRefused as refusal:
        return _editor(request, sessions, catalog, sop_id, draft_id, status_code=409, error=str(refusal))
    return _editor(request, sessions, catalog, sop_id, draft_id,
                   notice="Shared for review: every member of staff can now read this draft at this address.")


@router.post("/sops/{sop_id}/drafts/{draft_id}/delete", dependencies=[Depends(verify_csrf)])
def discard(request: Request, sop_id: str, draft_id: int, sessions: SessionsDep, catalog: CatalogDep):
    user_id, role = _who(request)
    try:
        with sessions.begin() as session:
            delete_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=user_id, role=role)
    except DraftNotFound as missing:
        return _missing(request, str(missing).removeprefix("there is no "))
    except DraftRefused as refusal:
        return _editor(request, sessions, catalog, sop_id, draft_id, status_code=409, error=str(refusal))
    return RedirectResponse("/sops", status_code=303)


def _publish_page(request: Request, sessions, catalog, sop_id: str, draft_id: int, *, form=None, error="",
                  status_code=200):
    user_id, role = _who(request)
    with sessions.read() as session:
        try:
            draft = get_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=user_id, role=role)
        except DraftNotFound as missing:
            return _missing(request, str(missing).removeprefix("there is no "))
        latest = latest_version(session=session, sop_id=sop_id)
        checked = _checked(session, catalog, draft)
    report = checked["report"]
    changes = lines = None
    old_chart = None
    if latest is not None and report.definition is not None:
        changes = compare(latest.definition, report.definition.model_dump(mode="json"))
        before, after = changes.marks()
        old_chart = version_chart(latest, before)
        checked["chart"] = marked(checked["chart"], after) if checked["chart"] else None
        lines = text_diff(version_yaml(latest), draft.source_yaml, old_name=f"v{latest.version}", new_name="draft")
    unchanged = (latest is not None and report.definition is not None
                 and SopDefinition.model_validate(report.data).content_hash() == latest.content_hash)
    return render(request, "sops/publish.html", {
        "draft": draft, "latest": latest, **checked, "changes": changes, "lines": lines, "old_chart": old_chart,
        "unchanged": unchanged, "form": form or {}, "error": error,
        "editable": may_edit(draft, user_id=user_id, role=role),
    }, status_code=status_code)


@router.get("/sops/{sop_id}/drafts/{draft_id}/publish")
def publish_page(request: Request, sop_id: str, draft_id: int, sessions: SessionsDep, catalog: CatalogDep):
    return _publish_page(request, sessions, catalog, sop_id, draft_id)


@router.post("/sops/{sop_id}/drafts/{draft_id}/publish", dependencies=[Depends(verify_csrf)])
async def publish(request: Request, sop_id: str, draft_id: int, sessions: SessionsDep, catalog: CatalogDep):
    form = await _form(request)
    user_id, role = _who(request)
    try:
        with sessions.read() as session:
            draft = get_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=user_id, role=role)
        if not may_edit(draft, user_id=user_id, role=role):
            raise DraftRefused("only the draft's author publishes it (or it was published already)")
        result = publish_text(sessions=sessions, sop_id=sop_id, text=draft.source_yaml, note=form.get("note", ""),
                              by=request.state.principal.email or "", vocabulary=catalog.vocabulary,
                              confirm_warnings=form.get("confirm_warnings") == "yes",
                              draft=(draft_id, user_id, role))
    except DraftNotFound as missing:
        return _missing(request, str(missing).removeprefix("there is no "))
    except (DraftRefused, PublishRefused, PublishConflict) as err:
        status = 422 if isinstance(err, PublishRefused) else 409
        return _publish_page(request, sessions, catalog, sop_id, draft_id, form=form, error=str(err),
                             status_code=status)
    if not result.created:
        return _publish_page(request, sessions, catalog, sop_id, draft_id, form=form, status_code=200,
                             error=f"nothing was published: the draft defines the same flow as version "
                                   f"{result.version} (same content hash)")
    return RedirectResponse(f"/sops/{sop_id}/versions/{result.version}?published=1", status_code=303)
