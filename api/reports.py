"""Reporting routes: what the e-level deflects, for the continuous-improvement loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException

from api.deps import DbSession, Principal, require
from registry.reports import DeflectionRow, deflection

router = APIRouter(prefix="/api/reports", tags=["reports"])

Reader = Annotated[Principal, require("process_owner", "auditor", "lead", "admin")]


@router.get("/deflection", response_model=list[DeflectionRow])
def deflection_report(session: DbSession, _: Reader, since: datetime | None = None,
                      until: datetime | None = None) -> list[DeflectionRow]:
    """Per SOP and category: concerns closed at the e-level with the customer's confirmation, and rejected answers."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=30)
    if since.tzinfo is None or until.tzinfo is None:
        raise HTTPException(422, "give `since` and `until` with a time zone, e.g. 2026-11-01T00:00:00Z")
    if since >= until:
        raise HTTPException(422, "`since` must be before `until`")
    return deflection(session=session, since=since, until=until)
