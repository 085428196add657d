"""Pages for moving running concerns between SOP versions: the plan form, its preview (the dry run), the run,
the migration's progress and undo. Everything goes through `api.sop_migration_plan`, as the JSON API does."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.deps import CatalogDep, ClientDep, SessionsDep
from api.sop_migration_plan import ConcernFilter, MigrationIn, MigrationRefused, Mover, NotFound, plan_migration
from api.sop_migrations import migration_out
from api.sops import SopId
from registry.sop_migrations import OPEN_STATES, get_migration
from registry.queue import PRIORITIES
from registry.sop_store import list_versions
from web.csrf import verify_csrf
from web.sops import WRITERS
from web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

_SPLIT = re.compile(r"[\s,]+")



def _missing(request: Request, what: str):
    return render(request, "sops/missing.html", {"what": what}, status_code=404)


def _number(value, default: int | None = None) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _words(value: str) -> list[str]:
    return [w for w in _SPLIT.split(value or "") if w]


def _body(form: FormData, *, dry_run: bool) -> MigrationIn:
    """The migration a form asks for: the same model the JSON API takes."""
    hours = str(form.get("older_than_hours") or "").strip()
    flt = ConcernFilter(steps=[str(s) for s in form.getlist("steps") if s],
                        levels=[int(v) for v in form.getlist("levels") if str(v).isdigit()],
                        priorities=[str(p) for p in form.getlist("priorities") if p],
                        categories=_words(str(form.get("categories") or "")),
                        older_than_hours=float(hours) if hours else None,
                        ids=_words(str(form.get("ids") or "")))
    mapping = {key[4:]: str(value) for key, value in form.items() if key.startswith("map.") and value}
    return MigrationIn.model_validate({
        "from": _number(form.get("from"), 0), "to": _number(form.get("to"), 0), "filter": flt, "mapping": mapping,
        "clocks": form.get("clocks") or "keep", "when_unsafe": form.get("when_unsafe") or "wait",
        "dry_run": dry_run, "reason": str(form.get("reason") or "")[:2000],
        "confirm_type_changes": form.get("confirm_type_changes") == "yes"})


def _form_page(request: Request, sessions, catalog, sop_id: str, body: MigrationIn, *, preview: bool,
               error: str = "", status_code: int = 200):
    with sessions.read() as session:
        versions = list_versions(session=session, sop_id=sop_id)
        if not versions:
            return _missing(request, f"SOP {sop_id!r}")
        try:
            plan = plan_migration(session=session, catalog=catalog, sop_id=sop_id, body=body)
        except NotFound as err:
            return render(request, "sops/migration_new.html", {
                "sop_id": sop_id, "versions": versions, "body": body, "plan": None, "preview": False,
                "error": str(err), "source_steps": []}, status_code=404)
    source = next(v for v in versions if v.version == body.from_version)
    target = next(v for v in versions if v.version == body.to_version)
    return render(request, "sops/migration_new.html", {
        "sop_id": sop_id, "versions": versions, "body": body, "plan": plan, "preview": preview, "error": error,
        "source_steps": list(source.definition.get("steps", {})), "target_steps": target.definition.get("steps", {}),
        "priorities": PRIORITIES, "planned_ids": " ".join(c.id for c in plan.concerns),
    }, status_code=status_code if not (preview and plan.errors) else 422)


@router.get("/sops/{sop_id}/migrations/new")
def new_migration(request: Request, sop_id: SopId, sessions: SessionsDep, catalog: CatalogDep):
    with sessions.read() as session:
        versions = list_versions(session=session, sop_id=sop_id)
    if not versions:
        return _missing(request, f"SOP {sop_id!r}")
    latest = versions[0].version
    to = _number(request.query_params.get("to"), latest) or latest
    source = _number(request.query_params.get("from"), max(1, to - 1)) or 1
    body = MigrationIn.model_validate({"from": source, "to": to})
    return _form_page(request, sessions, catalog, sop_id, body, preview=False)


async def _read(request: Request) -> MigrationIn | str:
    try:
        return _body(await request.form(), dry_run=True)
    except (ValidationError, ValueError) as err:
        return f"the form is not complete: {err}"


@router.post("/sops/{sop_id}/migrations/preview", dependencies=[Depends(verify_csrf)])
async def preview_migration(request: Request, sop_id: SopId, sessions: SessionsDep, catalog: CatalogDep):
    body = await _read(request)
    if isinstance(body, str):
        return _missing(request, body)
    return _form_page(request, sessions, catalog, sop_id, body, preview=True)


@router.post("/sops/{sop_id}/migrations", dependencies=[Depends(verify_csrf)])
async def run_migration(request: Request, sop_id: SopId, sessions: SessionsDep, client: ClientDep,
                        catalog: CatalogDep):
    form = await request.form()
    body = await _read(request)
    if isinstance(body, str):
        return _missing(request, body)
    # Exactly the previewed plan: the concerns the preview listed, none that started since.
    planned = _words(str(form.get("planned_ids") or ""))
    if not planned:
        return _form_page(request, sessions, catalog, sop_id, body, preview=True, status_code=422,
                          error="preview the plan first: only concerns a preview listed are moved")
    body = body.model_copy(update={"dry_run": False, "filter": body.filter.model_copy(update={"ids": planned})})
    principal = request.state.principal
    try:
        migration_id = await Mover(sessions, client, catalog).run(
            sop_id=sop_id, body=body, by=principal.email or principal.name, by_id=principal.id)
    except NotFound as err:
        return _missing(request, str(err))
    except MigrationRefused as err:
        return _form_page(request, sessions, catalog, sop_id, body, preview=True, status_code=422,
                          error="nothing was moved: " + str(err))
    except ValueError as err:
        return _form_page(request, sessions, catalog, sop_id, body, preview=True, status_code=422,
                          error=str(err))
    return RedirectResponse(f"/sops/{sop_id}/migrations/{migration_id}", status_code=303)


@router.get("/sops/{sop_id}/migrations/{migration_id}")
def migration_page(request: Request, sop_id: SopId, migration_id: int, sessions: SessionsDep):
    with sessions.begin() as session:
        row = get_migration(session=session, sop_id=sop_id, migration_id=migration_id)
        if row is None:
            return _missing(request, f"migration {migration_id} of SOP {sop_id!r}")
        out = migration_out(session, row)
    context = {"sop_id": sop_id, "m": out, "writer": request.state.principal.role in WRITERS,
               "running": any(i.state in OPEN_STATES for i in out.items)}
    return render(request, "sops/_migration_progress.html" if is_htmx(request) else "sops/migration.html", context)


@router.post("/sops/{sop_id}/migrations/{migration_id}/undo", dependencies=[Depends(verify_csrf)])
async def undo_migration(request: Request, sop_id: SopId, migration_id: int, sessions: SessionsDep,
                         client: ClientDep, catalog: CatalogDep):
    reason = str((await request.form()).get("reason") or "").strip()[:2000]
    principal = request.state.principal
    try:
        undo_id = await Mover(sessions, client, catalog).undo(
            sop_id=sop_id, migration_id=migration_id, by=principal.email or principal.name, by_id=principal.id,
            reason=reason)
    except NotFound as err:
        return _missing(request, str(err))
    return RedirectResponse(f"/sops/{sop_id}/migrations/{undo_id}", status_code=303)
