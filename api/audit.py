"""JSON and CSV routes of the staff audit log, for auditors and admins."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.deps import Principal, SessionsDep, require
from registry import audit, chain
from registry.db import Sessions

router = APIRouter(tags=["audit"])

AUDITORS = ("auditor", "admin")
Auditor = Annotated[Principal, require(*AUDITORS)]
CSV_COLUMNS = ("seq", "at", "actor", "action", "target", "detail", "ip", "user_agent", "prev_hash", "row_hash")


class AuditEntryPublic(BaseModel):
    """One row of the staff audit log with its place in the hash chain."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict
    ip: str
    user_agent: str
    prev_hash: str
    row_hash: str


class AuditPage(BaseModel):
    """A page of the log, newest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[AuditEntryPublic]
    next_cursor: str | None = None


def actor_of(principal: Principal) -> str:
    """How the audit log names a caller."""
    return principal.email or f"{principal.kind}:{principal.id}"


def utc(value: datetime | None) -> datetime | None:
    """A period bound as UTC (a bound given without a zone is read as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def page_of(sessions: Sessions, *, actor: str | None, action: str | None, since: datetime | None,
            until: datetime | None, cursor: str | None, limit: int) -> tuple[list[audit.AuditEntry], str | None]:
    """One page of filtered entries and the cursor of the next (the seq to continue below)."""
    before = None
    if cursor:
        if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
            raise HTTPException(422, "the cursor is not one this API gave out")
        before = int(cursor)
    with sessions.read() as session:
        rows = audit.entries(session=session, actor=actor, action=action, since=utc(since), until=utc(until),
                             before_seq=before, limit=limit + 1)
    return rows[:limit], (str(rows[limit - 1].seq) if len(rows) > limit else None)


@router.get("/api/audit", response_model=AuditPage)
def list_entries(
    sessions: SessionsDep, principal: Auditor, actor: Annotated[str | None, Query(max_length=320)] = None,
    action: Annotated[str | None, Query(max_length=60)] = None, since: datetime | None = None,
    until: datetime | None = None, cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    """The staff audit log, newest first, filtered by person (prefix), action (prefix) and period; cursor-paged."""
    rows, next_cursor = page_of(sessions, actor=actor, action=action, since=since, until=until, cursor=cursor,
                                limit=limit)
    return AuditPage(items=[AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows],
                     next_cursor=next_cursor)


def csv_lines(sessions: Sessions, *, actor, action, since, until, batch: int = 500) -> Iterator[str]:
    """The filtered log as CSV text, streamed a batch at a time (memory stays flat however long the period)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    cursor = None
    while True:
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        rows, cursor = page_of(sessions, actor=actor, action=action, since=since, until=until, cursor=cursor,
                               limit=batch)
        for r in rows:
            writer.writerow([r.seq, chain.stamp(r.at), r.actor, r.action, r.target, chain.canonical(r.detail or {}),
                             r.ip, r.user_agent, r.prev_hash, r.row_hash])
        if cursor is None:
            yield out.getvalue()
            return


def export_csv(request: Request, sessions: Sessions, principal: Principal, *, actor, action, since,
               until) -> StreamingResponse:
    """The CSV answer of the page and the API alike; the export itself is audited."""
    with sessions.begin() as session:
        audit.record(session=session, actor=actor_of(principal), action="audit.exported", target="audit log",
                     detail={"format": "csv", "actor": actor, "action": action, "from": since, "to": until})
    stamp = (since or datetime.now(UTC)).strftime("%Y%m%d")
    return StreamingResponse(csv_lines(sessions, actor=actor, action=action, since=since, until=until),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="audit-log-{stamp}.csv"'})


@router.get("/api/audit.csv", response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
def entries_csv(
    request: Request, sessions: SessionsDep, principal: Auditor,
    actor: Annotated[str | None, Query(max_length=320)] = None,
    action: Annotated[str | None, Query(max_length=60)] = None, since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    """The filtered staff audit log as CSV, newest first, with each row's hashes."""
    return export_csv(request, sessions, principal, actor=actor, action=action, since=since, until=until)
