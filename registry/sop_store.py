"""Published SOP versions: immutable, numbered, identified by content hash."""

from __future__ import annotations

from sqlmodel import Session, col, select

from registry.models import SopVersion
from sops.schema import SopDefinition


def latest_version(*, session: Session, sop_id: str) -> SopVersion | None:
    """The newest published version of a SOP."""
    return session.exec(
        select(SopVersion).where(SopVersion.sop_id == sop_id).order_by(col(SopVersion.version).desc())
    ).first()


def get_version(*, session: Session, sop_id: str, version: int) -> SopVersion | None:
    return session.exec(select(SopVersion).where(SopVersion.sop_id == sop_id, SopVersion.version == version)).first()


def publish(*, session: Session, definition: SopDefinition, by: str = "") -> tuple[SopVersion, bool]:
    """Publish `definition` as the next version; an unchanged definition returns the latest version instead."""
    latest = latest_version(session=session, sop_id=definition.id)
    digest = definition.content_hash()
    if latest is not None and latest.content_hash == digest:
        return latest, False
    number = (latest.version + 1) if latest else 1
    pinned = definition.model_copy(update={"version": number})
    row = SopVersion(
        sop_id=definition.id, version=number, title=definition.title, content_hash=digest,
        definition=pinned.model_dump(mode="json"), published_by=by,
    )
    session.add(row)
    session.flush()
    return row, True


def list_latest(*, session: Session) -> list[SopVersion]:
    """The newest version of every SOP, by id."""
    rows = session.exec(select(SopVersion).order_by(SopVersion.sop_id, col(SopVersion.version).desc()))
    seen: dict[str, SopVersion] = {}
    for row in rows:
        seen.setdefault(row.sop_id, row)
    return list(seen.values())


def choose_sop(*, session: Session, category: str | None, channel: str) -> SopVersion | None:
    """The latest version of the SOP that applies to this category (and channel); the general one otherwise."""
    candidates = list_latest(session=session)
    fallback = None
    for row in candidates:
        applies = row.definition.get("applies_to") or {}
        cats, chans = applies.get("categories") or [], applies.get("channels") or []
        if chans and channel not in chans:
            continue
        if category and category in cats:
            return row
        if not cats and fallback is None:
            fallback = row
    return fallback or next((r for r in candidates if r.sop_id == "general-inquiry"), None)
