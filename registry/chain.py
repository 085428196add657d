"""Hash chains of the clock events and the staff audit log, and the offline check of an evidence bundle.

Python's standard library only: evidence bundles ship this very file as `verify_bundle.py`, so an auditor checks a
bundle with the same arithmetic that sealed the rows, without the product installed (`python verify_bundle.py
[BUNDLE.zip | FOLDER]`, exit code 0 when every row, link, file digest and anchor holds).

A row's hash is the SHA-256 of its canonical content: the JSON object of its fields plus `prev_hash` (the hash of the
previous row of its chain), keys sorted, no spaces, timestamps in UTC ISO form with microseconds. Clock events form
one chain per concern, in `seq` order; the staff audit log is one chain in `seq` order. A chain starts at GENESIS.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path

GENESIS = "0" * 64

CLOCK_FIELDS = ("concern_id", "seq", "clock", "kind", "at", "workflow_id", "run_id", "event_id", "elapsed_seconds",
                "target_seconds", "due_at")
AUDIT_FIELDS = ("seq", "at", "actor", "action", "target", "detail", "ip", "user_agent")
_INTEGERS = {"seq", "event_id", "elapsed_seconds", "target_seconds"}
_TIMES = {"at", "due_at"}

CLOCK_CSV = "clock_events.csv"
AUDIT_CSV = "audit_log.csv"
MANIFEST = "manifest.json"


def stamp(value) -> str | None:
    """A timestamp in its canonical form (UTC, ISO 8601, microseconds), from a datetime or an ISO string."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def canonical(obj) -> str:
    """The one JSON text of `obj` that is hashed: keys sorted, no spaces, non-ASCII kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normal(fields: tuple[str, ...], row: dict) -> dict:
    out = {}
    for name in fields:
        value = row.get(name)
        if name in _TIMES:
            value = stamp(value)
        elif name in _INTEGERS:
            value = int(value)
        elif name == "detail":
            value = json.loads(value) if isinstance(value, str) else (value or {})
        else:
            value = "" if value is None else str(value)
        out[name] = value
    return out


def clock_content(row: dict) -> dict:
    """The hashed fields of a clock event (a mapping with the `CLOCK_FIELDS`; CSV strings are accepted)."""
    return _normal(CLOCK_FIELDS, row)


def audit_content(row: dict) -> dict:
    """The hashed fields of a staff audit log row (`detail` a mapping or its JSON text)."""
    return _normal(AUDIT_FIELDS, row)


def row_hash(content: dict, prev_hash: str) -> str:
    """The hash of a row's canonical content linked to its predecessor's hash."""
    return hashlib.sha256(canonical({**content, "prev_hash": prev_hash}).encode()).hexdigest()


def check_chain(rows: list[dict], content, *, first_prev: str = GENESIS, name=lambda row: "") -> list[dict]:
    """Every break of one chain, in order: rows whose content no longer gives their hash (edited), and rows
    whose `prev_hash` is not the hash of the row before (one deleted or inserted before them).

    `rows` are mappings with the content fields, `prev_hash` and `row_hash`, in chain order; `name(row)` says
    which row a problem is at, for people."""
    problems = []
    expected_prev = first_prev
    for row in rows:
        stored, prev = row.get("row_hash") or "", row.get("prev_hash") or ""
        if not stored:
            problems.append({"row": name(row), "problem": "the row carries no hash (not sealed)"})
            expected_prev = stored
            continue
        if prev != expected_prev:
            problems.append({"row": name(row), "problem": "the link to the previous row is broken: a row before it "
                                                          "was deleted or inserted, or the chain was cut"})
        if row_hash(content(row), prev) != stored:
            problems.append({"row": name(row), "problem": "the row's content does not match its hash: it was edited"})
        expected_prev = stored
    return problems


def day_of(value) -> str:
    return stamp(value)[:10]


def clock_anchors(rows: list[dict], days: set[str] | None = None) -> dict[str, str]:
    """Per UTC day, one hash over the last row hash of that day of every concern's chain with rows that day."""
    heads: dict[str, dict[str, tuple[int, str]]] = {}
    for row in rows:
        day = day_of(row["at"])
        if days is not None and day not in days:
            continue
        per = heads.setdefault(day, {})
        seq = int(row["seq"])
        if row["concern_id"] not in per or per[row["concern_id"]][0] < seq:
            per[row["concern_id"]] = (seq, row.get("row_hash") or "")
    return {day: hashlib.sha256(canonical(sorted([cid, h] for cid, (_, h) in per.items())).encode()).hexdigest()
            for day, per in sorted(heads.items())}


def audit_anchors(rows: list[dict], days: set[str] | None = None) -> dict[str, str]:
    """Per UTC day, the hash of the audit log's last row of that day."""
    last: dict[str, tuple[int, str]] = {}
    for row in rows:
        day = day_of(row["at"])
        if days is not None and day not in days:
            continue
        seq = int(row["seq"])
        if day not in last or last[day][0] < seq:
            last[day] = (seq, row.get("row_hash") or "")
    return {day: h for day, (_, h) in sorted(last.items())}


def days_between(start: str, end: str) -> set[str]:
    """The UTC days from `start` (an ISO instant) up to, not including, `end`."""
    first, stop = date.fromisoformat(stamp(start)[:10]), datetime.fromisoformat(stamp(end))
    days, day = set(), first
    while datetime(day.year, day.month, day.day, tzinfo=timezone.utc) < stop:
        days.add(day.isoformat())
        day = date.fromordinal(day.toordinal() + 1)
    return days


# ---- the evidence bundle, checked offline ----------------------------------------------------------------


def _read_bundle(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    with zipfile.ZipFile(path) as bundle:
        return {Path(n).name: bundle.read(n) for n in bundle.namelist() if not n.endswith("/")}


def _csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def verify_bundle(path: Path) -> list[str]:
    """Every problem found in the bundle at `path` (a zip file or an unpacked folder); empty when it holds."""
    files = _read_bundle(path)
    if MANIFEST not in files:
        return [f"{path}: no {MANIFEST}; this is not an evidence bundle"]
    manifest = json.loads(files[MANIFEST])
    problems = []
    for name, digest in manifest.get("files", {}).items():
        if name not in files:
            problems.append(f"{name}: listed in the manifest but missing from the bundle")
        elif hashlib.sha256(files[name]).hexdigest() != digest:
            problems.append(f"{name}: its SHA-256 differs from the manifest's: the file was changed")
    clock_rows = _csv_rows(files.get(CLOCK_CSV, b""))
    chains: dict[str, list[dict]] = {}
    for row in clock_rows:
        chains.setdefault(row["concern_id"], []).append(row)
    for cid, rows in sorted(chains.items()):
        rows.sort(key=lambda r: int(r["seq"]))
        for p in check_chain(rows, clock_content, name=lambda r: f"clock event {r['concern_id']} #{r['seq']} "
                                                                 f"({r['clock']} {r['kind']}, event {r['event_id']})"):
            problems.append(f"{CLOCK_CSV}: {p['row']}: {p['problem']}")
    heads = manifest.get("clock_chain_heads", {})
    for cid, head in sorted(heads.items()):
        rows = chains.get(cid, [])
        if (rows[-1]["row_hash"] if rows else GENESIS) != head:
            problems.append(f"{CLOCK_CSV}: the chain of {cid} does not end at the head the manifest names "
                            "(its last rows were removed or added)")
    audit_rows = sorted(_csv_rows(files.get(AUDIT_CSV, b"")), key=lambda r: int(r["seq"]))
    before = manifest.get("audit_chain_before", GENESIS)
    for p in check_chain(audit_rows, audit_content, first_prev=before,
                         name=lambda r: f"audit log row #{r['seq']} ({r['action']} by {r['actor']})"):
        problems.append(f"{AUDIT_CSV}: {p['row']}: {p['problem']}")
    seqs = [int(r["seq"]) for r in audit_rows]
    for a, b in zip(seqs, seqs[1:]):
        if b != a + 1:
            problems.append(f"{AUDIT_CSV}: rows #{a + 1}..#{b - 1} are missing")
    last = audit_rows[-1]["row_hash"] if audit_rows else before
    if last != manifest.get("audit_chain_last", last):
        problems.append(f"{AUDIT_CSV}: the log does not end at the row the manifest names (rows were removed or added)")
    period = manifest.get("period") or {}
    if period.get("from") and period.get("to"):
        days = days_between(period["from"], period["to"])
        for label, found, stated in (
            ("clock events", clock_anchors(clock_rows, days), manifest.get("anchors", {}).get("clock_events", {})),
            ("audit log", audit_anchors(audit_rows, days), manifest.get("anchors", {}).get("audit_log", {})),
        ):
            for day in sorted(set(found) | set(stated)):
                if found.get(day) != stated.get(day):
                    problems.append(f"anchor of the {label} for {day}: the rows give {found.get(day)}, the manifest "
                                    f"says {stated.get(day)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Check a bundle (default: the folder this script is in) and print what holds or every problem."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else Path(__file__).resolve().parent
    problems = verify_bundle(target)
    if problems:
        for line in problems:
            print(f"FAIL {line}")
        print(f"{len(problems)} problem(s): this bundle does not hold")
        return 1
    files = _read_bundle(target)
    manifest = json.loads(files[MANIFEST])
    print(f"OK: {len(_csv_rows(files.get(CLOCK_CSV, b'')))} clock events, "
          f"{len(_csv_rows(files.get(AUDIT_CSV, b'')))} audit log rows; every hash, link and file digest holds")
    for label, anchors in manifest.get("anchors", {}).items():
        for day, value in sorted(anchors.items()):
            print(f"anchor {label} {day} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
