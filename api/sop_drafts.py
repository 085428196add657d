"""Drafts of SOP versions over the API: owned by their author, shared for review, published through one path."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from api.deps import CatalogDep, SessionsDep
from api.sops import (
    PublishedOut,
    Reader,
    SopId,
    ValidationOut,
    Writer,
    published_out,
    publish_error,
    refuse_large,
    report_out,
)
from registry.sop_checks import check_text
from registry.sop_drafts import (
    DraftNotFound,
    DraftRefused,
    SopDraft,
    create_draft,
    delete_draft,
    get_draft,
    list_drafts,
    save_draft,
    share_draft,
)
from registry.sop_publish import PublishConflict, PublishRefused, publish_text
from registry.sop_store import get_version, latest_version, version_yaml

router = APIRouter(prefix="/api/sops/{sop_id}/drafts", tags=["sops"])


class DraftIn(BaseModel):
    yaml: str | None = Field(None, description="the draft's text; by default the latest version's YAML")
    base_version: int | None = Field(None, ge=1, description="the version the draft starts from")


class DraftText(BaseModel):
    yaml: str


class ShareIn(BaseModel):
    note: str = Field("", max_length=2000)


class DraftPublishIn(BaseModel):
    note: str = ""
    confirm_warnings: bool = False


class DraftOut(BaseModel):
    id: int
    sop_id: str
    author: str
    base_version: int | None
    yaml: str
    shared: bool
    shared_note: str
    published_version: int | None
    updated_at: datetime


class DraftChecked(DraftOut):
    check: ValidationOut


def draft_out(draft: SopDraft) -> DraftOut:
    return DraftOut(id=draft.id, sop_id=draft.sop_id, author=draft.author_email, base_version=draft.base_version,
                    yaml=draft.source_yaml, shared=draft.shared, shared_note=draft.shared_note,
                    published_version=draft.published_version, updated_at=draft.updated_at)


def _missing(err: DraftNotFound | DraftRefused) -> HTTPException:
    return HTTPException(404 if isinstance(err, DraftNotFound) else 409, str(err))


@router.get("", response_model=list[DraftOut])
def drafts(sop_id: SopId, sessions: SessionsDep, principal: Reader) -> list[DraftOut]:
    """The open drafts of a SOP the caller may see: their own and those shared for review."""
    with sessions.read() as session:
        return [draft_out(d) for d in list_drafts(session=session, sop_id=sop_id, user_id=principal.id,
                                                  role=principal.role)]


@router.post("", status_code=201, response_model=DraftOut)
def new_draft(sop_id: SopId, body: DraftIn, response: Response, sessions: SessionsDep, principal: Writer) -> DraftOut:
    """Start a draft: from a given text, or from the latest version of the SOP."""
    if body.yaml is not None:
        refuse_large(body.yaml)
    with sessions.begin() as session:
        base = (get_version(session=session, sop_id=sop_id, version=body.base_version) if body.base_version
                else latest_version(session=session, sop_id=sop_id))
        if body.base_version and base is None:
            raise HTTPException(404, f"SOP {sop_id!r} has no version {body.base_version}")
        if body.yaml is None and base is None:
            raise HTTPException(422, f"there is no SOP {sop_id!r} yet: send the new SOP's yaml")
        draft = create_draft(session=session, sop_id=sop_id, author_id=principal.id,
                             author_email=principal.email or "", author_name=principal.name,
                             text=body.yaml if body.yaml is not None else version_yaml(base),
                             base_version=base.version if base else None)
    response.headers["Location"] = f"/api/sops/{sop_id}/drafts/{draft.id}"
    return draft_out(draft)


@router.get("/{draft_id}", response_model=DraftChecked)
def draft(sop_id: SopId, draft_id: int, sessions: SessionsDep, catalog: CatalogDep, principal: Reader) -> DraftChecked:
    """A draft with its check: errors and warnings, each with step and line."""
    try:
        with sessions.read() as session:
            found = get_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=principal.id,
                              role=principal.role)
            report = check_text(found.source_yaml, vocabulary=catalog.vocabulary, session=session, sop_id=sop_id)
    except DraftNotFound as err:
        raise _missing(err) from err
    return DraftChecked(**draft_out(found).model_dump(), check=report_out(report))


@router.put("/{draft_id}", response_model=DraftChecked)
def update_draft(sop_id: SopId, draft_id: int, body: DraftText, sessions: SessionsDep, catalog: CatalogDep,
                 principal: Writer) -> DraftChecked:
    """Save a draft's text (its author only) and check it."""
    refuse_large(body.yaml)
    try:
        with sessions.begin() as session:
            saved = save_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=principal.id,
                               role=principal.role, text=body.yaml)
            report = check_text(saved.source_yaml, vocabulary=catalog.vocabulary, session=session, sop_id=sop_id)
    except (DraftNotFound, DraftRefused) as err:
        raise _missing(err) from err
    return DraftChecked(**draft_out(saved).model_dump(), check=report_out(report))


@router.post("/{draft_id}/share", response_model=DraftOut)
def share(sop_id: SopId, draft_id: int, body: ShareIn, sessions: SessionsDep, principal: Writer) -> DraftOut:
    """Open a draft to all staff for review; recorded in the SOP's history."""
    try:
        with sessions.begin() as session:
            shared = share_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=principal.id,
                                 role=principal.role, by=principal.email or principal.name, note=body.note)
    except (DraftNotFound, DraftRefused) as err:
        raise _missing(err) from err
    return draft_out(shared)


@router.delete("/{draft_id}", status_code=204)
def discard(sop_id: SopId, draft_id: int, sessions: SessionsDep, principal: Writer) -> Response:
    """Throw a draft away (its author, or an admin)."""
    try:
        with sessions.begin() as session:
            delete_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=principal.id, role=principal.role)
    except (DraftNotFound, DraftRefused) as err:
        raise _missing(err) from err
    return Response(status_code=204)


@router.post("/{draft_id}/publish", status_code=201, response_model=PublishedOut, responses={
    200: {"model": PublishedOut, "description": "unchanged: the latest version has the same content hash"},
    409: {"description": "another publish of this SOP won, or the draft is not the caller's"},
    422: {"description": "no note, errors, or warnings not confirmed"}})
def publish_draft(sop_id: SopId, draft_id: int, body: DraftPublishIn, response: Response, sessions: SessionsDep,
                  catalog: CatalogDep, principal: Writer) -> PublishedOut:
    """Publish a draft as the SOP's next version (the same path as `POST /api/sops/{id}/versions`)."""
    try:
        with sessions.read() as session:
            found = get_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=principal.id,
                              role=principal.role)
        if found.published_version is not None or (found.author_id != principal.id and principal.role != "admin"):
            raise DraftRefused(f"draft {draft_id} is {'already published' if found.published_version else 'not yours'};"
                               " start your own draft from it")
        result = publish_text(sessions=sessions, sop_id=sop_id, text=found.source_yaml, note=body.note,
                              by=principal.email or principal.name, vocabulary=catalog.vocabulary,
                              confirm_warnings=body.confirm_warnings, draft=(draft_id, principal.id, principal.role))
    except (DraftNotFound, DraftRefused) as err:
        raise _missing(err) from err
    except (PublishRefused, PublishConflict) as err:
        raise publish_error(err) from err
    return published_out(result, response)
