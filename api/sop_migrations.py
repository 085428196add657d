"""JSON routes for migrations of running concerns between SOP versions: dry run, run, progress, undo."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from api.deps import CatalogDep, ClientDep, SessionsDep
from api.sop_migration_plan import MigrationIn, MigrationRefused, Mover, NotFound, Plan, plan_migration
from api.sops import Reader, SopId, Writer
from registry.sop_migrations import get_migration, list_migrations, progress, refresh

router = APIRouter(prefix="/api/sops", tags=["sops"])


class ItemOut(BaseModel):
    concern_id: str
    from_step: str
    to_step: str | None
    state: str
    reason: str
    updated_at: datetime


class MigrationOut(BaseModel):
    id: int
    sop_id: str
    from_version: int
    to_version: int
    mapping: dict[str, str]
    clocks: str
    when_unsafe: str
    reason: str
    by: str
    undo_of: int | None
    created_at: datetime
    progress: dict[str, int]
    items: list[ItemOut] = []


class UndoIn(BaseModel):
    reason: str = Field("", max_length=2000)


def migration_out(session, row, *, with_items: bool = True) -> MigrationOut:
    rows = refresh(session=session, migration=row)
    return MigrationOut(id=row.id, sop_id=row.sop_id, from_version=row.from_version, to_version=row.to_version,
                        mapping=row.mapping, clocks=row.clocks, when_unsafe=row.when_unsafe, reason=row.reason,
                        by=row.by_email, undo_of=row.undo_of, created_at=row.created_at, progress=progress(rows),
                        items=[ItemOut.model_validate(r, from_attributes=True) for r in rows] if with_items else [])


@router.post("/{sop_id}/migrations", response_model=Plan | MigrationOut, status_code=200, responses={
    201: {"model": MigrationOut, "description": "the migration runs; its progress"},
    404: {"description": "no such SOP or version"},
    422: {"description": "the plan has errors: every one named, nothing stored or moved"}})
async def migrate(sop_id: SopId, body: MigrationIn, response: Response, sessions: SessionsDep, client: ClientDep,
                  catalog: CatalogDep, principal: Writer) -> Plan | MigrationOut:
    """Dry-run (the default) or run a move of running concerns from one version to another."""
    try:
        if body.dry_run:
            with sessions.read() as session:
                return plan_migration(session=session, catalog=catalog, sop_id=sop_id, body=body)
        migration_id = await Mover(sessions, client, catalog).run(
            sop_id=sop_id, body=body, by=principal.email or principal.name, by_id=principal.id)
    except NotFound as err:
        raise HTTPException(404, str(err)) from err
    except ValueError as err:
        raise HTTPException(422, str(err)) from err
    except MigrationRefused as err:
        raise HTTPException(422, {"message": str(err), **err.plan.model_dump(mode="json")}) from err
    response.status_code = 201
    response.headers["Location"] = f"/api/sops/{sop_id}/migrations/{migration_id}"
    with sessions.begin() as session:
        return migration_out(session, get_migration(session=session, sop_id=sop_id, migration_id=migration_id))


@router.get("/{sop_id}/migrations", response_model=list[MigrationOut])
def migrations(sop_id: SopId, sessions: SessionsDep, _: Reader) -> list[MigrationOut]:
    """Every migration of a SOP, newest first, with its progress."""
    with sessions.begin() as session:
        return [migration_out(session, row, with_items=False) for row in list_migrations(session=session,
                                                                                         sop_id=sop_id)]


@router.get("/{sop_id}/migrations/{migration_id}", response_model=MigrationOut)
def migration(sop_id: SopId, migration_id: int, sessions: SessionsDep, _: Reader) -> MigrationOut:
    """One migration's progress: each concern moved, waiting for a safe point, refused (with why) or undone."""
    with sessions.begin() as session:
        row = get_migration(session=session, sop_id=sop_id, migration_id=migration_id)
        if row is None:
            raise HTTPException(404, f"SOP {sop_id!r} has no migration {migration_id}")
        return migration_out(session, row)


@router.post("/{sop_id}/migrations/{migration_id}/undo", status_code=201, response_model=MigrationOut)
async def undo(sop_id: SopId, migration_id: int, body: UndoIn, sessions: SessionsDep, client: ClientDep,
               catalog: CatalogDep, principal: Writer) -> MigrationOut:
    """Move back the concerns a migration moved that are still at their mapped step (a new migration)."""
    try:
        undo_id = await Mover(sessions, client, catalog).undo(
            sop_id=sop_id, migration_id=migration_id, by=principal.email or principal.name, by_id=principal.id,
            reason=body.reason)
    except NotFound as err:
        raise HTTPException(404, str(err)) from err
    with sessions.begin() as session:
        return migration_out(session, get_migration(session=session, sop_id=sop_id, migration_id=undo_id))
