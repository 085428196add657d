"""SOP pages for process owners: the list, a SOP with its history, a version drawn as a chart, and compare
(drafts and publishing: `web.sop_drafts`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import TypeAdapter, ValidationError

from api.deps import SessionsDep
from registry.sop_drafts import list_drafts
from registry.sop_history import list_events, retirement
from registry.sop_migrations import list_migrations, progress, refresh
from registry.sop_store import (
    RetireRefused,
    get_version,
    latest_version,
    list_versions,
    reinstate,
    retire,
    running_counts,
    running_on,
    summaries,
    version_yaml,
)
from sops.diff import compare, text_diff
from sops.graph import chart_graph, describe_step
from sops.schema import SopDefinition, Step, format_duration
from web.csrf import verify_csrf
from web.templating import render

router = APIRouter(include_in_schema=False)

WRITERS = ("process_owner", "admin")
VersionNo = Annotated[int, Path(ge=1, le=2**31 - 1)]
_STEP: TypeAdapter[Any] = TypeAdapter(Step)


def marked(graph: dict, marks: dict[str, str]) -> dict:
    """The graph with each marked step tagged `added`, `removed` or `changed` (drawn inside its box)."""
    return {**graph, "nodes": [{**n, "mark": marks.get(n["id"], n.get("mark"))} for n in graph["nodes"]]}


def version_chart(row, marks: dict[str, str] | None = None) -> dict:
    """The flow-chart graph of a published version, with marks."""
    return chart_graph(row.definition, marks=marks or {})


def draft_chart(data: Any) -> dict | None:
    """The graph of whatever part of a draft already reads as a SOP: its steps that pass the schema."""
    if not isinstance(data, dict):
        return None
    try:
        return chart_graph(SopDefinition.model_validate(data))
    except ValidationError:
        pass
    steps = {}
    for sid, raw in (data.get("steps") or {}).items() if isinstance(data.get("steps"), dict) else []:
        try:
            steps[str(sid)] = _STEP.validate_python(raw).model_dump(mode="json")
        except (ValidationError, TypeError):
            continue
    if not steps:
        return None
    start = data.get("start") if data.get("start") in steps else next(iter(steps))
    try:
        return chart_graph({"id": "draft", "title": "draft", "sla": "draft", "start": start, "steps": steps})
    except ValidationError:
        return None


def step_details(definition: dict) -> list[dict]:
    """Each step's type, level, skills, timers, templates and outcomes, for the list beside the chart."""
    sop = SopDefinition.model_validate(definition)
    details = []
    for sid, step in sop.steps.items():
        facts: list[tuple[str, str]] = [("type", step.type)]
        for name in ("action", "on", "level", "message", "template", "to", "result"):
            value = getattr(step, name, None)
            if value is not None:
                facts.append((name, str(value)))
        if getattr(step, "skills", None):
            facts.append(("skills", ", ".join(step.skills)))
        for name in ("escalate_after", "wait"):
            if getattr(step, name, None):
                facts.append((name.replace("_", " "), format_duration(getattr(step, name))))
        if step.max_visits:
            facts.append(("max visits", f"{step.max_visits}, then {step.on_max_visits}"))
        details.append({"id": sid, "title": step.title or sid, "summary": describe_step(step), "facts": facts,
                        "edges": [(label or "next", target) for label, target in step.edges()],
                        "start": sid == sop.start})
    return details


def _principal(request: Request):
    return request.state.principal


@router.get("/sops")
def sop_list(request: Request, sessions: SessionsDep):
    principal = _principal(request)
    with sessions.read() as session:
        rows = summaries(session=session)
        drafts = list_drafts(session=session, user_id=principal.id, role=principal.role)
    return render(request, "sops/list.html", {"sops": rows, "drafts": drafts, "writer": principal.role in WRITERS})


def _missing(request: Request, what: str):
    return render(request, "sops/missing.html", {"what": what}, status_code=404)


@router.get("/sops/{sop_id}")
def sop_page(request: Request, sop_id: str, sessions: SessionsDep, error: str = ""):
    principal = _principal(request)
    with sessions.read() as session:
        versions = list_versions(session=session, sop_id=sop_id)
        if not versions:
            return _missing(request, f"SOP {sop_id!r}")
        context = {
            "sop_id": sop_id, "latest": versions[0], "versions": versions,
            "running": running_counts(session=session, sop_id=sop_id),
            "events": list_events(session=session, sop_id=sop_id),
            "retired": retirement(session=session, sop_id=sop_id),
            "drafts": list_drafts(session=session, sop_id=sop_id, user_id=principal.id, role=principal.role),
            "writer": principal.role in WRITERS, "error": error,
        }
    with sessions.begin() as session:  # progress is brought up to date from the concerns' timelines
        context["migrations"] = [(m, progress(refresh(session=session, migration=m)))
                                 for m in list_migrations(session=session, sop_id=sop_id)]
    return render(request, "sops/sop.html", context, status_code=409 if error else 200)


@router.get("/sops/{sop_id}/versions/{version}")
def version_page(request: Request, sop_id: str, version: VersionNo, sessions: SessionsDep, published: int = 0):
    principal = _principal(request)
    with sessions.read() as session:
        row = get_version(session=session, sop_id=sop_id, version=version)
        if row is None:
            return _missing(request, f"version {version} of SOP {sop_id!r}")
        latest = latest_version(session=session, sop_id=sop_id)
        concerns = running_on(session=session, sop_id=sop_id, version=version)
        count = running_counts(session=session, sop_id=sop_id).get((sop_id, version), 0)
    return render(request, "sops/version.html", {
        "row": row, "latest": latest, "chart": version_chart(row), "steps": step_details(row.definition),
        "yaml": version_yaml(row), "concerns": concerns, "running": count, "writer": principal.role in WRITERS,
        "published": bool(published),
    })


@router.get("/sops/{sop_id}/compare")
def compare_page(request: Request, sop_id: str, sessions: SessionsDep,
                 from_: Annotated[int | None, Query(alias="from", ge=1, le=2**31 - 1)] = None,
                 to: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None):
    with sessions.read() as session:
        versions = list_versions(session=session, sop_id=sop_id)
        if not versions:
            return _missing(request, f"SOP {sop_id!r}")
        to = to or versions[0].version
        from_ = from_ or max(1, to - 1)
        old = get_version(session=session, sop_id=sop_id, version=from_)
        new = get_version(session=session, sop_id=sop_id, version=to)
    if old is None or new is None:
        return _missing(request, f"version {from_ if old is None else to} of SOP {sop_id!r}")
    changes = compare(old.definition, new.definition)
    before, after = changes.marks()
    return render(request, "sops/compare.html", {
        "sop_id": sop_id, "versions": versions, "old": old, "new": new, "changes": changes,
        "old_chart": version_chart(old, before), "new_chart": version_chart(new, after),
        "lines": text_diff(version_yaml(old), version_yaml(new), old_name=f"v{old.version}",
                           new_name=f"v{new.version}"),
    })


async def _note(request: Request) -> str:
    return str((await request.form()).get("note", "")).strip()[:2000]


@router.post("/sops/{sop_id}/retire", dependencies=[Depends(verify_csrf)])
async def retire_page(request: Request, sop_id: str, sessions: SessionsDep):
    note = await _note(request)
    if not note:
        return sop_page(request, sop_id, sessions, error="write a note saying why the SOP is retired")
    try:
        with sessions.begin() as session:
            retire(session=session, sop_id=sop_id, by=_principal(request).email or "", note=note)
    except LookupError:
        return _missing(request, f"SOP {sop_id!r}")
    except RetireRefused as refused:
        return sop_page(request, sop_id, sessions, error=str(refused))
    return RedirectResponse(f"/sops/{sop_id}", status_code=303)


@router.post("/sops/{sop_id}/reinstate", dependencies=[Depends(verify_csrf)])
async def reinstate_page(request: Request, sop_id: str, sessions: SessionsDep):
    note = await _note(request)
    with sessions.begin() as session:
        if latest_version(session=session, sop_id=sop_id) is None:
            return _missing(request, f"SOP {sop_id!r}")
        reinstate(session=session, sop_id=sop_id, by=_principal(request).email or "", note=note)
    return RedirectResponse(f"/sops/{sop_id}", status_code=303)
