"""The evidence bundle: a period's clock events and staff audit log with their hashes, the policies and calendars that
governed the clocks, the daily anchors, and a stand-alone script that checks it all offline."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client

from api.audit_verify import run_histories
from registry import audit, chain
from registry.db import Sessions
from registry.sla_report import parse_query, report_csv_lines
from registry.models import ClockEvent, Concern
from registry.types import utcnow
from workflows.payloads import OpenConcernInput

VERIFIER = Path(chain.__file__)
CLOCK_COLUMNS = (*chain.CLOCK_FIELDS, "prev_hash", "row_hash")
AUDIT_COLUMNS = (*chain.AUDIT_FIELDS, "prev_hash", "row_hash")
REPORT_CSV = "sla_report.csv"
REPORT_GROUPS = ["policy", "priority", "clock"]
REPORT_NOTE = ("The bundle holds the clock-level rows (clock_events.csv) from which every SLA figure is computed, and "
               f"the SLA compliance report of the period ({REPORT_CSV}: clocks started in the period, by "
               f"{', '.join(REPORT_GROUPS)}), as /reports/sla shows it.")


@dataclass
class BundleSummary:
    """What a bundle holds, for the command's and the page's answer."""

    concerns: int
    clock_events: int
    audit_rows: int
    anchors: dict


def _csv(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(c, row.get(c)) for c in columns})
    return out.getvalue().encode("utf-8")


def _cell(column: str, value) -> str:
    if column in ("at", "due_at"):
        return chain.stamp(value) or ""
    if column == "detail":
        return chain.canonical(value or {})
    return "" if value is None else str(value)


def _registry_part(sessions: Sessions, since: datetime, until: datetime) -> dict:
    with sessions.read() as session:
        db = session.connection()
        ids = list(session.exec(sa.select(ClockEvent.concern_id).where(ClockEvent.at >= since, ClockEvent.at < until)
                                .distinct().order_by(ClockEvent.concern_id)).scalars())
        clock = [row for cid in ids for row in audit.clock_rows(db, cid)]  # whole chains, so each starts at GENESIS
        rows = audit.audit_rows(session=session, since=since, until=until)
        before = audit.row_before(session=session, seq=rows[0]["seq"]) if rows else None
        workflows = dict(session.exec(sa.select(Concern.id, Concern.workflow_id).where(Concern.id.in_(ids))).all())
        return {
            "ids": ids, "clock": clock, "audit": rows, "workflows": {cid: workflows.get(cid) for cid in ids},
            "before": before["row_hash"] if before else chain.GENESIS,
            "anchors": {"clock_events": audit.clock_anchors_for(db, since, until),
                        "audit_log": audit.audit_anchors_for(session, since, until)},
        }


async def _governing(client: Client, workflows: dict[str, str | None]) -> dict:
    """The SOP version, SLA policy and calendar each concern started with, from its workflow's first event."""
    policies, calendars, concerns, missing = {}, {}, {}, []
    for cid, workflow_id in workflows.items():
        runs = await run_histories(client, workflow_id) if workflow_id else []
        if not runs:
            missing.append(cid)
            continue
        started = runs[0][1].events[0].workflow_execution_started_event_attributes
        [inp] = await client.data_converter.decode(started.input.payloads, [OpenConcernInput])
        policy, calendar = inp.policy.model_dump(mode="json"), inp.calendar.model_dump(mode="json")
        pkey = f"{inp.policy.id}@{hashlib.sha256(chain.canonical(policy).encode()).hexdigest()[:12]}"
        ckey = f"{inp.policy.calendar}@{hashlib.sha256(chain.canonical(calendar).encode()).hexdigest()[:12]}"
        policies[pkey], calendars[ckey] = policy, calendar
        concerns[cid] = {"workflow_id": workflow_id, "sop": inp.sop.id, "sop_version": inp.sop.version,
                         "priority": inp.priority, "policy": pkey, "calendar": ckey}
    return {"concerns": concerns, "policies": policies, "calendars": calendars, "not_started": missing}


README = """Evidence bundle of the Customer Care Registry
============================================

Period: {since} up to {until} (UTC). Made {made} by {actor}.

clock_events.csv   every clock event (start, pause, resume, warn, breach, stop) of each concern with a clock event
                   in the period: its whole chain, with each row's hash and its predecessor's
audit_log.csv      the staff audit log rows of the period, with their hashes
governing.json     the SOP version, SLA policy and business calendar each concern started with, as its workflow's
                   first event in Temporal holds them
manifest.json      the SHA-256 of every file, where each chain ends, and the daily anchors of both chains
verify_bundle.py   checks all of it offline with Python 3.9+ alone:  python verify_bundle.py [this folder or zip]

Compare the anchors the script prints with the ones you kept from `ccr audit verify`: equal anchors mean these
rows are the rows the desk held on those days.

{note}
"""


def _report_csv(sessions: Sessions, since: datetime, until: datetime) -> bytes:
    """The SLA compliance report of the bundle's days, from the report's own code (`registry.sla_report`)."""
    last_day = (until - timedelta(microseconds=1)).date()
    query = parse_query({"from": [since.date().isoformat()], "to": [last_day.isoformat()], "group": REPORT_GROUPS})
    with sessions.begin() as session:
        return "".join(report_csv_lines(session=session, query=query)).encode("utf-8")


async def build_bundle(*, sessions: Sessions, client: Client, since: datetime, until: datetime, actor: str,
                       out) -> BundleSummary:
    """Write the bundle for [since, until) as a zip to `out` (a path or a binary file); the export is audited."""
    part = await asyncio.to_thread(_registry_part, sessions, since, until)
    governing = await _governing(client, part["workflows"])
    made = utcnow()
    files = {
        REPORT_CSV: await asyncio.to_thread(_report_csv, sessions, since, until),
        chain.CLOCK_CSV: _csv(CLOCK_COLUMNS, part["clock"]),
        chain.AUDIT_CSV: _csv(AUDIT_COLUMNS, part["audit"]),
        "governing.json": json.dumps(governing, indent=2, sort_keys=True).encode(),
        "verify_bundle.py": VERIFIER.read_bytes(),
        "README.txt": README.format(since=chain.stamp(since), until=chain.stamp(until), made=chain.stamp(made),
                                    actor=actor, note=REPORT_NOTE).encode(),
    }
    heads = {}
    for row in part["clock"]:
        heads[row["concern_id"]] = row["row_hash"]
    manifest = {
        "period": {"from": chain.stamp(since), "to": chain.stamp(until)}, "made_at": chain.stamp(made),
        "made_by": actor, "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "clock_chain_heads": heads, "audit_chain_before": part["before"],
        "audit_chain_last": part["audit"][-1]["row_hash"] if part["audit"] else part["before"],
        "anchors": part["anchors"], "sla_report_csv": REPORT_CSV, "note": REPORT_NOTE,
    }
    files[chain.MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    summary = BundleSummary(concerns=len(part["ids"]), clock_events=len(part["clock"]), audit_rows=len(part["audit"]),
                            anchors=part["anchors"])
    await asyncio.to_thread(_audit_export, sessions, actor, since, until, summary, manifest["files"])
    return summary


def _audit_export(sessions: Sessions, actor: str, since, until, summary: BundleSummary, digests: dict) -> None:
    with sessions.begin() as session:
        audit.record(session=session, actor=actor, action="audit.bundle_exported", target="evidence bundle",
                     detail={"from": since, "to": until, "concerns": summary.concerns,
                             "clock_events": summary.clock_events, "audit_rows": summary.audit_rows,
                             "files": digests})
