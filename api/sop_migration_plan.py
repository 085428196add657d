"""Moving running concerns between SOP versions: the plan (a dry run moves nothing), the run, and undo.

The API, the pages and `ccr sop migrate` all go through here; each move happens inside the concern's workflow
(update `migrate`), which refuses what is not safe, so the registry only records what the workflows decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.catalog import Catalog
from registry.db import Sessions
from registry.models import Concern
from registry.sop_checks import check_text
from registry.sop_migrations import (
    SopMigration,
    SopMigrationItem,
    busy_concerns,
    get_migration,
    refresh,
    set_state,
)
from registry.sop_store import active_staffing, can_take, get_version, version_yaml
from registry.types import utcnow
from sops.schema import HumanStep, SopDefinition
from workflows.clocks import ClockBook
from workflows.concern import ConcernWorkflow
from workflows.migration import breaching_at_once, enters_afresh, move_clocks, propose_mapping, waiting_steps
from workflows.payloads import Clock, MigrateConcern

MAX_CONCERNS = 5000


class ConcernFilter(BaseModel):
    """Which running concerns of the source version to move; empty means all of them."""

    steps: list[str] = Field(default_factory=list)
    levels: list[int] = Field(default_factory=list)
    priorities: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    older_than_hours: float | None = Field(default=None, ge=0)
    ids: list[str] = Field(default_factory=list, max_length=MAX_CONCERNS)


class MigrationIn(BaseModel):
    """A migration as a process owner asks for it."""

    model_config = {"populate_by_name": True}

    from_version: int = Field(alias="from", ge=1)
    to_version: int = Field(alias="to", ge=1)
    filter: ConcernFilter = Field(default_factory=ConcernFilter)
    mapping: dict[str, str] = Field(default_factory=dict)
    clocks: Literal["keep", "restart"] = "keep"
    when_unsafe: Literal["wait", "refuse"] = Field("wait", description="not at a safe point: move later, or refuse")
    dry_run: bool = True
    reason: str = Field("", max_length=2000)
    confirm_type_changes: bool = False


class PlannedConcern(BaseModel):
    id: str
    subject: str
    status: str
    step: str | None
    target_step: str | None
    afresh: bool
    safe_now: bool
    clocks_before: list[Clock]
    clocks_after: list[Clock]
    warnings: list[str]


class MappingRow(BaseModel):
    source: str
    source_type: str
    target: str | None
    target_type: str | None
    proposed: str | None
    type_change: bool


class Plan(BaseModel):
    """A dry run: every concern, its step and target, clocks before and after, warnings; errors stop a run."""

    sop_id: str
    from_version: int
    to_version: int
    clocks: str
    mapping: list[MappingRow]
    concerns: list[PlannedConcern]
    errors: list[str]
    warnings: list[str]
    needs_confirmation: bool


class MigrationRefused(Exception):
    """The plan has errors (or unconfirmed type changes): nothing was stored or moved."""

    def __init__(self, plan: Plan) -> None:
        super().__init__("; ".join(plan.errors))
        self.plan = plan


class NotFound(LookupError):
    pass


@dataclass
class _Versions:
    source: SopDefinition
    target: SopDefinition
    errors: list[str] = field(default_factory=list)


def _versions(session: Session, catalog: Catalog, sop_id: str, body: MigrationIn) -> _Versions:
    rows = {}
    for n in (body.from_version, body.to_version):
        row = get_version(session=session, sop_id=sop_id, version=n)
        if row is None:
            raise NotFound(f"SOP {sop_id!r} has no version {n}")
        rows[n] = row
    found = _Versions(SopDefinition.model_validate(rows[body.from_version].definition),
                      SopDefinition.model_validate(rows[body.to_version].definition))
    if body.from_version == body.to_version:
        found.errors.append("the source and target are the same version")
    report = check_text(version_yaml(rows[body.to_version]), vocabulary=catalog.vocabulary, session=session)
    found.errors += [f"v{body.to_version} does not validate: " + (f"step {e.step}: " if e.step else "") + e.message
                     for e in report.errors]
    return found


def _selected(session: Session, sop_id: str, version: int, flt: ConcernFilter) -> list[Concern]:
    query = select(Concern).where(Concern.sop_id == sop_id, Concern.sop_version == version,
                                  Concern.status != "closed")
    if flt.ids:
        query = query.where(col(Concern.id).in_(flt.ids))
    if flt.steps:
        query = query.where(col(Concern.step).in_(flt.steps))
    if flt.levels:
        query = query.where(col(Concern.level).in_(flt.levels))
    if flt.priorities:
        query = query.where(col(Concern.priority).in_(flt.priorities))
    if flt.categories:
        query = query.where(col(Concern.category).in_(flt.categories))
    if flt.older_than_hours is not None:
        query = query.where(Concern.created_at <= utcnow() - timedelta(hours=flt.older_than_hours))
    return list(session.exec(query.order_by(Concern.created_at).limit(MAX_CONCERNS)))


def plan_migration(*, session: Session, catalog: Catalog, sop_id: str, body: MigrationIn,
                   now: datetime | None = None) -> Plan:
    """What a migration would do, concern by concern, without moving anything."""
    now = now or utcnow()
    found = _versions(session, catalog, sop_id, body)
    source, target = found.source, found.target
    errors, warnings = list(found.errors), []
    proposed = propose_mapping(source.steps, target.steps)
    mapping = {**proposed, **{k: v for k, v in body.mapping.items() if v}}
    rows, type_changes = [], []
    for sid in waiting_steps(source.steps):
        tid = mapping.get(sid)
        ttype = target.steps[tid].type if tid in target.steps else None
        change = ttype is not None and ttype != source.steps[sid].type
        rows.append(MappingRow(source=sid, source_type=source.steps[sid].type, target=tid, target_type=ttype,
                               proposed=proposed.get(sid), type_change=change))
        if tid is None:
            errors.append(f"step '{sid}' of v{body.from_version} is not mapped to a step of v{body.to_version}")
        elif tid not in target.steps:
            errors.append(f"step '{sid}' is mapped to '{tid}', which v{body.to_version} does not have")
        elif change:
            type_changes.append(f"'{sid}' ({source.steps[sid].type}) → '{tid}' ({ttype})")
    for sid in body.mapping:
        if sid not in source.steps:
            errors.append(f"v{body.from_version} has no step '{sid}' to map")
    needs_confirmation = bool(type_changes) and not body.confirm_type_changes
    if type_changes:
        (errors if needs_confirmation else warnings).append(
            "a step of another type needs confirmation: " + ", ".join(type_changes))
    staffing = active_staffing(session=session)
    policy_id = target.sla
    if policy_id not in catalog.policies:
        errors.append(f"v{body.to_version} names the SLA policy {policy_id!r}, which is not in force")
    planned = []
    concerns = _selected(session, sop_id, body.from_version, body.filter)
    busy = busy_concerns(session=session, concern_ids=[c.id for c in concerns])
    for concern in concerns:
        planned.append(_plan_one(concern, source, target, mapping, body, catalog, staffing, busy, now)
                       if not errors else PlannedConcern(
                           id=concern.id, subject=concern.subject, status=concern.status, step=concern.step,
                           target_step=mapping.get(concern.step or ""), afresh=False, safe_now=False,
                           clocks_before=[Clock.model_validate(c) for c in concern.clocks], clocks_after=[],
                           warnings=[]))
    if not concerns:
        warnings.append(f"no running concern of v{body.from_version} matches the filter")
    return Plan(sop_id=sop_id, from_version=body.from_version, to_version=body.to_version, clocks=body.clocks,
                mapping=rows, concerns=planned, errors=errors, warnings=warnings,
                needs_confirmation=needs_confirmation)


def _plan_one(concern: Concern, source: SopDefinition, target: SopDefinition, mapping: dict[str, str],
              body: MigrationIn, catalog: Catalog, staffing, busy: dict[str, int], now: datetime) -> PlannedConcern:
    before = [Clock.model_validate(c) for c in concern.clocks]
    step_id = concern.step or ""
    to_id = mapping.get(step_id)
    from_step, to_step = source.steps.get(step_id), target.steps.get(to_id or "")
    safe = concern.status in ("open", "waiting_customer") and from_step is not None and \
        from_step.type in ("human", "ask_customer")
    notes = []
    if concern.id in busy:
        notes.append(f"migration {busy[concern.id]} is still moving this concern; it will be refused")
    if not safe:
        notes.append(f"not at a safe point (at '{step_id}', {concern.status}): "
                     + ("it moves when it next waits for a person" if body.when_unsafe == "wait"
                        else "it will be refused"))
    after: list[Clock] = []
    afresh = False
    if from_step is not None and to_step is not None:
        afresh = enters_afresh(from_step, to_step)
        policy, calendar = catalog.pinned(target.sla, concern.created_at.year)
        book = ClockBook([c.model_copy() for c in before], calendar, policy.warn_at)
        move_clocks(book, from_id=step_id, from_step=from_step, to_id=to_id, to_step=to_step, afresh=afresh,
                    mode=body.clocks, policy=policy, priority=concern.priority, now=now)
        after = book.all()
        for name in breaching_at_once(after):
            notes.append(f"the {name.replace('_', ' ')} clock would breach at once")
        if isinstance(to_step, HumanStep) and not any(
                can_take(level=lvl, skills=sk, step_level=to_step.level, step_skills=to_step.skills)
                for lvl, sk in staffing):
            notes.append(f"no active agent can take step '{to_id}' (level {to_step.level}"
                         + (f", skills {', '.join(to_step.skills)}" if to_step.skills else "") + ")")
        if afresh:
            notes.append(f"queued anew at '{to_id}' (another type, level or skills): its assignee is released")
    elif safe and to_id is None:
        notes.append(f"its step '{step_id}' is not mapped")
    return PlannedConcern(id=concern.id, subject=concern.subject, status=concern.status, step=concern.step,
                          target_step=to_id, afresh=afresh, safe_now=safe, clocks_before=before, clocks_after=after,
                          warnings=notes)


@dataclass
class Mover:
    """Who moves concerns, and with what: the registry, the Temporal client and the policies in force."""

    sessions: Sessions
    client: Client
    catalog: Catalog

    async def run(self, *, sop_id: str, body: MigrationIn, by: str, by_id: int | None) -> int:
        """Record the migration, then send each concern its move; returns the migration's id."""
        if not body.reason.strip():
            raise ValueError("say why the concerns are moved; it goes on every concern's timeline")
        with self.sessions.begin() as session:
            plan = plan_migration(session=session, catalog=self.catalog, sop_id=sop_id, body=body)
            if plan.errors:
                raise MigrationRefused(plan)
            target = SopDefinition.model_validate(
                get_version(session=session, sop_id=sop_id, version=body.to_version).definition)
            mapping = {r.source: r.target for r in plan.mapping if r.target}
            migration = SopMigration(sop_id=sop_id, from_version=body.from_version, to_version=body.to_version,
                                     filter=body.filter.model_dump(), mapping=mapping, clocks=body.clocks,
                                     when_unsafe=body.when_unsafe, reason=body.reason.strip(), by_email=by,
                                     by_id=by_id)
            session.add(migration)
            session.flush()
            busy = busy_concerns(session=session, concern_ids=[c.id for c in plan.concerns])
            for c in plan.concerns:
                item = SopMigrationItem(migration_id=migration.id, concern_id=c.id, from_step=c.step or "",
                                        to_step=c.target_step,
                                        clocks_before=[k.model_dump(mode="json") for k in c.clocks_before],
                                        clocks_after=[k.model_dump(mode="json") for k in c.clocks_after])
                if c.id in busy:
                    item.state, item.reason = "refused", f"migration {busy[c.id]} is still moving this concern"
                session.add(item)
            migration_id = migration.id
        await self._send(migration_id, sop_id, target, mapping, body.from_version, body.clocks, body.when_unsafe,
                         by, by_id, body.reason.strip(), undo_of=None)
        return migration_id

    async def undo(self, *, sop_id: str, migration_id: int, by: str, by_id: int | None, reason: str) -> int:
        """Move back the concerns a migration moved that are still at their mapped step; the undo's id."""
        with self.sessions.begin() as session:
            original = get_migration(session=session, sop_id=sop_id, migration_id=migration_id)
            if original is None:
                raise NotFound(f"SOP {sop_id!r} has no migration {migration_id}")
            rows = refresh(session=session, migration=original)
            source = SopDefinition.model_validate(
                get_version(session=session, sop_id=sop_id, version=original.from_version).definition)
            undo = SopMigration(sop_id=sop_id, from_version=original.to_version, to_version=original.from_version,
                                mapping={}, clocks="keep", when_unsafe="refuse",
                                reason=reason.strip() or f"undo migration {migration_id}", by_email=by, by_id=by_id,
                                undo_of=migration_id)
            session.add(undo)
            session.flush()
            for row in rows:
                if row.state != "moved":
                    continue
                concern = session.get(Concern, row.concern_id)
                item = SopMigrationItem(migration_id=undo.id, concern_id=row.concern_id,
                                        from_step=row.to_step or "", to_step=row.from_step)
                if concern is None or concern.sop_version != original.to_version or concern.step != row.to_step:
                    item.state = "refused"
                    item.reason = f"it has left step '{row.to_step}' since the move (now at '{concern and concern.step}')"
                session.add(item)
            undo_id = undo.id
        await self._send(undo_id, sop_id, source, None, original.to_version, "keep", "refuse", by, by_id,
                         reason.strip() or f"undo migration {migration_id}", undo_of=migration_id)
        return undo_id

    async def _send(self, migration_id, sop_id, target, mapping, from_version, clocks, when_unsafe, by, by_id,
                    reason, *, undo_of) -> None:
        with self.sessions.read() as session:
            todo = [(i, session.get(Concern, i.concern_id)) for i in
                    session.exec(select(SopMigrationItem).where(SopMigrationItem.migration_id == migration_id,
                                                                SopMigrationItem.state == "planned"))]
        for item, concern in todo:
            policy, calendar = self.catalog.pinned(target.sla, concern.created_at.year)
            move = MigrateConcern(migration_id=migration_id, from_version=from_version, sop=target, policy=policy,
                                  calendar=calendar, mapping=mapping or {item.from_step: item.to_step},
                                  clocks=clocks, when_unsafe=when_unsafe, by=by, by_id=by_id, reason=reason,
                                  undo_of=undo_of)
            state, why = await self._move(concern.workflow_id, move)
            with self.sessions.begin() as session:
                row = session.get(SopMigrationItem, item.id)
                set_state(session=session, item=row, state=state, reason=why)
                if state == "waiting":
                    refresh(session=session, migration=session.get(SopMigration, migration_id))

    async def _move(self, workflow_id: str, move: MigrateConcern) -> tuple[str, str]:
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            answer = await handle.execute_update(ConcernWorkflow.migrate, move)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            return "refused", getattr(cause, "message", None) or str(cause or err)
        except RPCError as err:
            return "refused", f"its workflow is not running: {err.message}"
        return "waiting", answer.reason if answer.outcome == "waiting" else "moving now"
