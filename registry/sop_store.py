"""Published SOP versions: immutable, numbered, identified by content hash."""

from __future__ import annotations

from sqlmodel import Session, col, select

from registry.models import SopVersion, User
from sops.schema import HumanStep, SopDefinition


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


def can_take(*, level: int | None, skills: list[str], step_level: int, step_skills: list[str]) -> bool:
    """Whether someone of `level` with `skills` may work a human step of `step_level` needing `step_skills`."""
    return (level or 0) >= step_level and set(step_skills) <= set(skills)


def active_staffing(*, session: Session) -> list[tuple[int | None, list[str]]]:
    """(level, skills) of every active agent and lead: who can take concerns from a queue."""
    rows = session.exec(select(User.level, User.skills).where(
        col(User.role).in_(("agent", "lead")), User.active == True))  # noqa: E712
    return [(level, list(skills or [])) for level, skills in rows]


def unstaffed_steps(definition: SopDefinition, staffing: list[tuple[int | None, list[str]]]) -> list[str]:
    """One warning per human step of `definition` that nobody in `staffing` can take."""
    warnings = []
    for sid, step in definition.steps.items():
        if not isinstance(step, HumanStep):
            continue
        if any(can_take(level=level, skills=skills, step_level=step.level, step_skills=step.skills)
               for level, skills in staffing):
            continue
        needs = f"level {step.level}" + (f" with the skills {', '.join(step.skills)}" if step.skills else "")
        warnings.append(f"{definition.id}: step {sid!r} ({step.title or sid}) needs an agent of {needs}, "
                        "and no active agent can take it")
    return warnings


def staffing_warnings(*, session: Session, definitions: list[SopDefinition]) -> list[str]:
    """The human steps of `definitions` that no active agent can take, as warnings to print on publishing."""
    staffing = active_staffing(session=session)
    return [w for definition in definitions for w in unstaffed_steps(definition, staffing)]
