"""SOPs for process owners: list, versions, validate, publish, retire and history (drafts: `api.sop_drafts`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel, Field

from api.deps import CatalogDep, Principal, SessionsDep, require
from registry.sop_checks import Report, check_text
from registry.sop_drafts import list_drafts
from registry.sop_history import list_events
from registry.sop_publish import PublishConflict, PublishRefused, Published, publish_text
from registry.sop_store import (
    RetireRefused,
    get_version,
    latest_version,
    list_versions,
    reinstate,
    retire,
    running_counts,
    summaries,
    version_yaml,
)
from sops.source import too_large

router = APIRouter(prefix="/api/sops", tags=["sops"])

WRITERS = ("process_owner", "admin")
Writer = Annotated[Principal, require(*WRITERS)]
Reader = Annotated[Principal, require("agent", "lead", "process_owner", "sre", "auditor", "admin", "integration")]
SopId = Annotated[str, Path(max_length=100, pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")]
VersionNo = Annotated[int, Path(ge=1, le=2**31 - 1)]


class FindingOut(BaseModel):
    step: str | None
    line: int | None
    message: str


class ValidationOut(BaseModel):
    ok: bool
    errors: list[FindingOut]
    warnings: list[FindingOut]


class SopText(BaseModel):
    yaml: str


class PublishIn(BaseModel):
    yaml: str
    note: str = ""
    confirm_warnings: bool = Field(False, description="publish although there are warnings")


class PublishedOut(BaseModel):
    id: str
    version: int
    hash: str
    created: bool
    warnings: list[FindingOut] = []


class NoteIn(BaseModel):
    note: str = Field("", max_length=2000)


class RunningOut(BaseModel):
    version: int
    concerns: int


class SopListItem(BaseModel):
    id: str
    title: str
    applies_to: dict[str, list[str]]
    latest_version: int
    published_at: datetime
    published_by: str
    versions: int
    running: list[RunningOut]
    retired: bool
    open_drafts: int


class VersionOut(BaseModel):
    id: str
    version: int
    title: str
    hash: str
    note: str
    author: str
    published_at: datetime
    running: int


class VersionDetail(VersionOut):
    definition: dict[str, Any]
    yaml: str


class HistoryItem(BaseModel):
    action: str
    version: int | None
    draft_id: int | None
    by: str
    note: str
    at: datetime


class RetiredOut(BaseModel):
    id: str
    retired: bool


def refuse_large(text: str) -> None:
    """413 for a SOP over the size limit, before it is parsed."""
    reason = too_large(text)
    if reason:
        raise HTTPException(413, reason)


def report_out(report: Report) -> ValidationOut:
    return ValidationOut.model_validate(report.as_dict())


def published_out(result: Published, response: Response) -> PublishedOut:
    response.status_code = 201 if result.created else 200
    response.headers["Location"] = f"/api/sops/{result.sop_id}/versions/{result.version}"
    return PublishedOut(id=result.sop_id, version=result.version, hash=result.content_hash, created=result.created,
                        warnings=[FindingOut(**f.as_dict()) for f in result.report.warnings])


def publish_error(err: PublishRefused | PublishConflict) -> HTTPException:
    """A refused publish as 422 (with every problem) or a lost race as 409 (naming the version that won)."""
    if isinstance(err, PublishConflict):
        return HTTPException(409, {"message": str(err), "version": err.version})
    report = err.report.as_dict() if err.report else {"ok": False, "errors": [], "warnings": []}
    return HTTPException(422, {"message": str(err), "needs_confirmation": err.needs_confirmation, **report})


def _version_out(row, running: dict) -> dict:
    return {"id": row.sop_id, "version": row.version, "title": row.title, "hash": row.content_hash, "note": row.note,
            "author": row.published_by, "published_at": row.published_at,
            "running": running.get((row.sop_id, row.version), 0)}


@router.get("", response_model=list[SopListItem])
def list_sops(sessions: SessionsDep, principal: Reader) -> list[SopListItem]:
    """Every SOP with its latest version, concerns running per version and open drafts."""
    with sessions.read() as session:
        rows = summaries(session=session)
        drafts = list_drafts(session=session, user_id=principal.id, role=principal.role)
    items = []
    for s in rows:
        applies = s.latest.definition.get("applies_to") or {}
        items.append(SopListItem(
            id=s.sop_id, title=s.latest.title, latest_version=s.latest.version,
            applies_to={"categories": applies.get("categories") or [], "channels": applies.get("channels") or []},
            published_at=s.latest.published_at, published_by=s.latest.published_by, versions=s.versions,
            running=[RunningOut(version=v, concerns=n) for v, n in sorted(s.running.items())],
            retired=s.retired is not None, open_drafts=sum(1 for d in drafts if d.sop_id == s.sop_id)))
    return items


@router.post("/validate", response_model=ValidationOut)
def validate(body: SopText, sessions: SessionsDep, catalog: CatalogDep, _: Reader) -> ValidationOut:
    """Check a SOP text against the language and this desk; every problem names its step and line."""
    refuse_large(body.yaml)
    with sessions.read() as session:
        return report_out(check_text(body.yaml, vocabulary=catalog.vocabulary, session=session))


@router.get("/{sop_id}/versions", response_model=list[VersionOut])
def versions(sop_id: SopId, sessions: SessionsDep, _: Reader) -> list[VersionOut]:
    """Every published version of a SOP, newest first."""
    with sessions.read() as session:
        rows = list_versions(session=session, sop_id=sop_id)
        running = running_counts(session=session, sop_id=sop_id)
    if not rows:
        raise HTTPException(404, f"there is no SOP {sop_id!r}")
    return [VersionOut(**_version_out(row, running)) for row in rows]


@router.get("/{sop_id}/versions/{version}", response_model=VersionDetail)
def version_detail(sop_id: SopId, version: VersionNo, sessions: SessionsDep, _: Reader) -> VersionDetail:
    """One version: its definition as JSON and YAML, content hash, note, author and concerns running on it."""
    with sessions.read() as session:
        row = get_version(session=session, sop_id=sop_id, version=version)
        if row is None:
            latest = latest_version(session=session, sop_id=sop_id)
            raise HTTPException(404, f"SOP {sop_id!r} has no version {version}" + (
                f" (the latest is {latest.version})" if latest else ""))
        running = running_counts(session=session, sop_id=sop_id)
    return VersionDetail(**_version_out(row, running), definition=row.definition, yaml=version_yaml(row))


@router.post("/{sop_id}/versions", status_code=201, response_model=PublishedOut, responses={
    200: {"model": PublishedOut, "description": "unchanged: the latest version has the same content hash"},
    409: {"description": "another publish of this SOP won; names the version that now exists"},
    413: {"description": "the SOP is larger than the limit"},
    422: {"description": "no note, errors, or warnings not confirmed: every problem with step and line"}})
def publish_version(sop_id: SopId, body: PublishIn, response: Response, sessions: SessionsDep,
                    catalog: CatalogDep, principal: Writer) -> PublishedOut:
    """Publish a new immutable version (201), or answer with the latest when nothing changed (200)."""
    refuse_large(body.yaml)
    try:
        result = publish_text(sessions=sessions, sop_id=sop_id, text=body.yaml, note=body.note,
                              by=principal.email or principal.name, vocabulary=catalog.vocabulary,
                              confirm_warnings=body.confirm_warnings)
    except (PublishRefused, PublishConflict) as err:
        raise publish_error(err) from err
    return published_out(result, response)


@router.post("/{sop_id}/retire", response_model=RetiredOut)
def retire_sop(sop_id: SopId, body: NoteIn, sessions: SessionsDep, principal: Writer) -> RetiredOut:
    """Stop starting new concerns on a SOP; concerns running on it are not touched."""
    if not body.note.strip():
        raise HTTPException(422, "write a note saying why the SOP is retired")
    try:
        with sessions.begin() as session:
            retire(session=session, sop_id=sop_id, by=principal.email or principal.name, note=body.note.strip())
    except LookupError as err:
        raise HTTPException(404, str(err)) from err
    except RetireRefused as err:
        raise HTTPException(409, str(err)) from err
    return RetiredOut(id=sop_id, retired=True)


@router.post("/{sop_id}/reinstate", response_model=RetiredOut)
def reinstate_sop(sop_id: SopId, body: NoteIn, sessions: SessionsDep, principal: Writer) -> RetiredOut:
    """Let a retired SOP take new concerns again."""
    with sessions.begin() as session:
        if latest_version(session=session, sop_id=sop_id) is None:
            raise HTTPException(404, f"there is no SOP {sop_id!r}")
        reinstate(session=session, sop_id=sop_id, by=principal.email or principal.name, note=body.note.strip())
    return RetiredOut(id=sop_id, retired=False)


@router.get("/{sop_id}/history", response_model=list[HistoryItem])
def history(sop_id: SopId, sessions: SessionsDep, _: Reader) -> list[HistoryItem]:
    """Every publish, retirement, reinstatement and draft shared for review, newest first."""
    with sessions.read() as session:
        events = list_events(session=session, sop_id=sop_id)
        if not events and latest_version(session=session, sop_id=sop_id) is None:
            raise HTTPException(404, f"there is no SOP {sop_id!r}")
    return [HistoryItem(action=e.action, version=e.version, draft_id=e.draft_id, by=e.actor_email, note=e.note,
                        at=e.at) for e in events]
