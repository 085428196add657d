"""The JSON route of a concern's workflow history: decoded and grouped in SOP terms, or raw on request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.concerns import Sre, visible_concern
from api.deps import ClientDep, DbSession, SettingsDep
from api.history import HistoryUnavailable, NoWorkflow, fetch_runs
from api.history_story import load_history, select
from api.schemas import HistoryPublic, RawHistoryPublic
from registry.models import Concern

router = APIRouter(prefix="/api/concerns", tags=["concerns"])


def no_workflow(concern: Concern, err: NoWorkflow) -> HTTPException:
    """404 saying why a concern has no history to show."""
    if concern.status == "new":
        return HTTPException(404, f"the workflow of {concern.id} has not started yet: Temporal was unreachable when "
                                  "it came in, and it starts by itself once Temporal answers")
    return HTTPException(404, f"{err}; its history may have passed the namespace's retention period")


@contextmanager
def answering_for(concern: Concern) -> Iterator[None]:
    """Turn an outage of Temporal into a 503 and a missing workflow into a 404, each saying why."""
    try:
        yield
    except HistoryUnavailable as err:
        raise HTTPException(503, str(err), headers={"Retry-After": "10"}) from err
    except NoWorkflow as err:
        raise no_workflow(concern, err) from err


@router.get("/{concern_id}/history", response_model=HistoryPublic | RawHistoryPublic,
            responses={503: {"description": "Temporal is unreachable; `detail` says so"}})
async def history(
    concern_id: str, session: DbSession, client: ClientDep, settings: SettingsDep, principal: Sre,
    raw: bool = False, kind: Annotated[list[str], Query()] = [], q: Annotated[str, Query(max_length=200)] = "",
):
    """Every run of the concern's workflow, decoded and grouped in SOP terms (`raw=1`: the events as stored)."""
    concern = visible_concern(session, concern_id, principal)
    session.commit()  # the registry's part is read; Temporal may take a while
    if raw:
        with answering_for(concern):
            runs = await fetch_runs(client, concern.workflow_id)
        return RawHistoryPublic(concern_id=concern.id, workflow_id=concern.workflow_id,
                                runs=[{"run_id": r.run_id, "ordinal": r.ordinal, **r.raw()} for r in runs])
    with answering_for(concern):
        runs, groups = await load_history(client, concern.workflow_id)
    return HistoryPublic(
        concern_id=concern.id, workflow_id=concern.workflow_id,
        runs=[{"run_id": r.run_id, "ordinal": r.ordinal, "status": r.status, "events": len(r.events),
               "temporal_ui": settings.temporal_ui_link(concern.workflow_id, r.run_id)} for r in runs],
        groups=[g.public() for g in select(groups, set(kind), q)],
    )

