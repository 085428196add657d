"""Published SOP versions: immutable, numbered, identified by content hash; which SOP a new concern runs on."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from sqlalchemy import func
from sqlmodel import Session, col, select

from registry.models import Concern, SopVersion, User
from registry.sop_history import SopRetirement, record_event, retired_ids, retirement
from sops.schema import HumanStep, SopDefinition, format_duration

_DURATIONS = ("wait", "escalate_after")


class RetireRefused(Exception):
    """Retiring this SOP would leave concerns without any SOP to run on."""


def latest_version(*, session: Session, sop_id: str) -> SopVersion | None:
    """The newest published version of a SOP."""
    return session.exec(
        select(SopVersion).where(SopVersion.sop_id == sop_id).order_by(col(SopVersion.version).desc())
    ).first()


def get_version(*, session: Session, sop_id: str, version: int) -> SopVersion | None:
    return session.exec(select(SopVersion).where(SopVersion.sop_id == sop_id, SopVersion.version == version)).first()


def list_versions(*, session: Session, sop_id: str) -> list[SopVersion]:
    """Every published version of a SOP, newest first."""
    return list(session.exec(select(SopVersion).where(SopVersion.sop_id == sop_id)
                             .order_by(col(SopVersion.version).desc())))


def publish(*, session: Session, definition: SopDefinition, by: str = "", note: str = "",
            source_yaml: str | None = None) -> tuple[SopVersion, bool]:
    """Publish `definition` as the next version; an unchanged definition returns the latest version instead.

    Two publishes of one SOP racing each other both pick the same next number; the unique constraint on
    (sop_id, version) lets exactly one of them commit, and the other's transaction fails with IntegrityError.
    """
    latest = latest_version(session=session, sop_id=definition.id)
    digest = definition.content_hash()
    if latest is not None and latest.content_hash == digest:
        return latest, False
    number = (latest.version + 1) if latest else 1
    pinned = definition.model_copy(update={"version": number})
    row = SopVersion(
        sop_id=definition.id, version=number, title=definition.title, content_hash=digest,
        definition=pinned.model_dump(mode="json"), published_by=by, note=note, source_yaml=source_yaml,
    )
    session.add(row)
    session.flush()
    record_event(session=session, sop_id=definition.id, action="published", by=by, note=note, version=number)
    return row, True


def version_yaml(row: SopVersion) -> str:
    """The YAML of a version: as its author wrote it, or (for versions published before that was kept) dumped."""
    if row.source_yaml:
        return row.source_yaml
    data = {k: v for k, v in row.definition.items() if k != "version"}
    # Leave out what the author never wrote (empty optional fields) and spell durations as people do.
    data["applies_to"] = {k: v for k, v in (data.get("applies_to") or {}).items() if v}
    steps = {}
    for sid, step in data.get("steps", {}).items():
        tidy = {"type": step.get("type")}
        for key, value in step.items():
            if value is None or value == [] or key == "type":
                continue
            tidy[key] = format_duration(value) if key in _DURATIONS and isinstance(value, int) else value
        steps[sid] = tidy
    data["steps"] = steps
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


def running_counts(*, session: Session, sop_id: str | None = None) -> dict[tuple[str, int], int]:
    """How many concerns run on each (SOP, version) now: every concern whose workflow has not closed."""
    query = (select(Concern.sop_id, Concern.sop_version, func.count())
             .where(col(Concern.sop_id).is_not(None), Concern.status != "closed")
             .group_by(Concern.sop_id, Concern.sop_version))
    if sop_id is not None:
        query = query.where(Concern.sop_id == sop_id)
    return {(sid, version): n for sid, version, n in session.exec(query)}


def running_on(*, session: Session, sop_id: str, version: int, limit: int = 50) -> list[Concern]:
    """The newest concerns running on one version."""
    return list(session.exec(select(Concern).where(Concern.sop_id == sop_id, Concern.sop_version == version,
                                                   Concern.status != "closed")
                             .order_by(col(Concern.created_at).desc()).limit(limit)))


@dataclass
class SopSummary:
    """One SOP for the list: its latest version, who published it, what runs on it, whether it is retired."""

    latest: SopVersion
    versions: int
    running: dict[int, int] = field(default_factory=dict)
    retired: SopRetirement | None = None

    @property
    def sop_id(self) -> str:
        return self.latest.sop_id


def summaries(*, session: Session) -> list[SopSummary]:
    """Every SOP by id with its latest version, version count, concerns running per version and retirement."""
    counts = dict(session.exec(select(SopVersion.sop_id, func.count()).group_by(SopVersion.sop_id)).all())
    running = running_counts(session=session)
    retired = {r.sop_id: r for r in session.exec(select(SopRetirement))}
    found = []
    for row in list_latest(session=session):
        per_version = {v: n for (sid, v), n in running.items() if sid == row.sop_id}
        found.append(SopSummary(row, counts.get(row.sop_id, 1), per_version, retired.get(row.sop_id)))
    return found


def retire(*, session: Session, sop_id: str, by: str, note: str) -> SopRetirement:
    """Stop starting new concerns on a SOP; those running on it keep running on their versions."""
    if latest_version(session=session, sop_id=sop_id) is None:
        raise LookupError(f"there is no SOP {sop_id!r}")
    existing = retirement(session=session, sop_id=sop_id)
    if existing is not None:
        return existing
    row = SopRetirement(sop_id=sop_id, retired_by=by, note=note)
    session.add(row)
    session.flush()
    if choose_sop(session=session, category=None, channel="web") is None:
        raise RetireRefused(f"{sop_id} is the SOP concerns without a matching category start on; publish or "
                            "reinstate another general SOP before retiring it")
    record_event(session=session, sop_id=sop_id, action="retired", by=by, note=note)
    return row


def reinstate(*, session: Session, sop_id: str, by: str, note: str) -> bool:
    """Let a retired SOP take new concerns again; False if it was not retired."""
    existing = retirement(session=session, sop_id=sop_id)
    if existing is None:
        return False
    session.delete(existing)
    record_event(session=session, sop_id=sop_id, action="reinstated", by=by, note=note)
    return True


def list_latest(*, session: Session) -> list[SopVersion]:
    """The newest version of every SOP, by id."""
    rows = session.exec(select(SopVersion).order_by(SopVersion.sop_id, col(SopVersion.version).desc()))
    seen: dict[str, SopVersion] = {}
    for row in rows:
        seen.setdefault(row.sop_id, row)
    return list(seen.values())


def choose_sop(*, session: Session, category: str | None, channel: str) -> SopVersion | None:
    """The latest version of the SOP that applies to this category (and channel); the general one otherwise.

    Retired SOPs take no new concerns."""
    retired = retired_ids(session=session)
    candidates = [row for row in list_latest(session=session) if row.sop_id not in retired]
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
