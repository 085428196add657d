"""Drafts of SOP versions: kept in the registry, owned by their author, shareable for review, never run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, Session, SQLModel, col, or_, select

from registry.sop_history import record_event
from registry.types import UTCDateTime, utcnow


class SopDraft(SQLModel, table=True):
    """Work in progress on a SOP: its YAML, whose it is, and which version it started from."""

    __tablename__ = "sop_draft"
    __table_args__ = (Index("ix_sop_draft_sop", "sop_id", "updated_at"),)

    id: int | None = Field(default=None, primary_key=True)
    sop_id: str = Field(max_length=100)
    author_id: int
    author_email: str = Field(default="", max_length=320)
    author_name: str = Field(default="", max_length=200)
    base_version: int | None = None
    source_yaml: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    shared: bool = False
    shared_note: str = Field(default="", max_length=2000)
    # Set when the draft was published (as that version) or found unchanged; such a draft is closed.
    published_version: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DraftNotFound(Exception):
    """No such draft, or one the caller may not see (another author's, not shared)."""


class DraftRefused(Exception):
    """The caller may read the draft but not do this to it."""


def may_read(draft: SopDraft, *, user_id: int, role: str) -> bool:
    """The author, an admin, or anyone on staff once the draft is shared for review."""
    return draft.author_id == user_id or role == "admin" or draft.shared


def may_edit(draft: SopDraft, *, user_id: int, role: str) -> bool:
    """Only the author changes a draft (an admin may, to take over a colleague's work)."""
    return draft.published_version is None and (draft.author_id == user_id or role == "admin")


def create_draft(*, session: Session, sop_id: str, author_id: int, author_email: str, author_name: str,
                 text: str, base_version: int | None) -> SopDraft:
    draft = SopDraft(sop_id=sop_id, author_id=author_id, author_email=author_email, author_name=author_name,
                     source_yaml=text, base_version=base_version)
    session.add(draft)
    session.flush()
    return draft


def get_draft(*, session: Session, sop_id: str, draft_id: int, user_id: int, role: str) -> SopDraft:
    """The draft if the caller may read it, else DraftNotFound (someone else's draft is not disclosed)."""
    draft = session.get(SopDraft, draft_id)
    if draft is None or draft.sop_id != sop_id or not may_read(draft, user_id=user_id, role=role):
        raise DraftNotFound(f"there is no draft {draft_id} of SOP {sop_id!r} that you can see")
    return draft


def _editable(session: Session, sop_id: str, draft_id: int, user_id: int, role: str) -> SopDraft:
    draft = get_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=user_id, role=role)
    if draft.published_version is not None:
        raise DraftRefused(f"draft {draft_id} was published as version {draft.published_version}; "
                           "start a new draft from that version")
    if not may_edit(draft, user_id=user_id, role=role):
        raise DraftRefused(f"draft {draft_id} belongs to {draft.author_name or draft.author_email}; "
                           "only they can change it (start your own draft from it)")
    return draft


def save_draft(*, session: Session, sop_id: str, draft_id: int, user_id: int, role: str, text: str) -> SopDraft:
    draft = _editable(session, sop_id, draft_id, user_id, role)
    draft.source_yaml, draft.updated_at = text, utcnow()
    session.add(draft)
    return draft


def share_draft(*, session: Session, sop_id: str, draft_id: int, user_id: int, role: str, by: str,
                note: str = "") -> SopDraft:
    """Open a draft to every member of staff for review, and record it in the SOP's history."""
    draft = _editable(session, sop_id, draft_id, user_id, role)
    draft.shared, draft.shared_note = True, note.strip()
    session.add(draft)
    record_event(session=session, sop_id=sop_id, action="draft_shared", by=by, note=note.strip(), draft_id=draft.id)
    return draft


def delete_draft(*, session: Session, sop_id: str, draft_id: int, user_id: int, role: str) -> None:
    draft = get_draft(session=session, sop_id=sop_id, draft_id=draft_id, user_id=user_id, role=role)
    if draft.author_id != user_id and role != "admin":
        raise DraftRefused(f"draft {draft_id} belongs to {draft.author_name or draft.author_email}")
    session.delete(draft)


def close_draft(*, session: Session, draft: SopDraft, version: int) -> None:
    """Mark a draft as published (as `version`), so it is kept for the record but no longer edited."""
    draft.published_version, draft.updated_at = version, utcnow()
    session.add(draft)


def list_drafts(*, session: Session, user_id: int, role: str, sop_id: str | None = None,
                open_only: bool = True) -> list[SopDraft]:
    """The drafts the caller may see (their own and shared ones; all for admins), newest first."""
    query = select(SopDraft)
    if sop_id is not None:
        query = query.where(SopDraft.sop_id == sop_id)
    if open_only:
        query = query.where(col(SopDraft.published_version).is_(None))
    if role != "admin":
        query = query.where(or_(SopDraft.author_id == user_id, col(SopDraft.shared).is_(True)))
    return list(session.exec(query.order_by(col(SopDraft.updated_at).desc())))
