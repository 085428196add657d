"""The SLA report at 1,000,000 concerns: seed realistic clock events in bulk, then time the report and the CSV.

Seeds concerns spread over the last `--months` (24) with about ten clock events each (first response,
resolution, the level 1 OLA, next responses, pauses while waiting on the customer, warnings and breaches)
and the clock cycles the projection keeps beside them, then times, each `--runs` times:

- the report for the last whole month and for the last twelve months, grouped by policy and priority;
- the CSV export of the month's clock rows: time to the first line, to the last, and the memory it held.

    python -m bench.sla_report --count 100000
    python -m bench.sla_report --count 1000000 --database-url sqlite \
        --database-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import sqlalchemy as sa

from registry.clock_cycles import ClockCycle
from registry.db import Sessions, make_engine
from registry.migrate import upgrade
from registry.models import ClockEvent, Concern, Customer, Organisation
from registry.sla_report import clock_csv_lines, parse_query, sla_report

POLICIES = {  # policy: (weight, {priority: (first response, next response, resolution)}, L1 OLA)
    "standard": (0.7, {"urgent": (3600, 7200, 32400), "high": (7200, 14400, 64800), "normal": (14400, 32400, 97200),
                       "low": (32400, 64800, 162000)}, 14400),
    "premium": (0.3, {"urgent": (900, 3600, 28800), "high": (1800, 7200, 86400), "normal": (7200, 14400, 172800),
                      "low": (14400, 28800, 259200)}, 7200),
}
PRIORITIES = ["urgent"] * 5 + ["high"] * 20 + ["normal"] * 60 + ["low"] * 15
CHANNELS = ["web", "email", "api", "phone", "walk_in"]
SOPS = [("general-inquiry", 1, "general"), ("account-access", 2, "account-access"), ("complaint", 1, "complaint")]
WARN_AT = 0.75


def _story(rnd: random.Random, n: int, count: int, now: datetime, months: int, agents: int, orgs: int):
    """One concern's projection row, clock events and clock cycles."""
    cid = f"CCR-B{n:07d}"
    # Concerns arrive in time order, as on a desk: the registry's rows follow the clock.
    span = months * 30 * 86400
    opened = now - timedelta(seconds=span - span * n // count + rnd.randint(0, 600))
    policy = "premium" if rnd.random() < POLICIES["premium"][0] else "standard"
    priority = rnd.choice(PRIORITIES)
    fr_t, nr_t, res_t = POLICIES[policy][1][priority]
    ola_t = POLICIES[policy][2]
    sop, version, category = rnd.choice(SOPS)
    agent = rnd.randint(1, agents)
    org = rnd.randint(1, orgs) if rnd.random() < 0.6 else None
    events, cycles, seq = [], [], 0
    facts = {"policy": policy, "priority": priority, "sop_id": sop, "sop_version": version,
             "channel": rnd.choice(CHANNELS), "category": category, "organisation_id": org,
             "tier": "premium" if policy == "premium" else "standard", "agent_id": agent,
             "agent_name": f"Agent {agent}", "workflow_id": f"concern-{cid}", "run_id": "bench-run"}

    def clock(name: str, target: int, start: datetime, used: int, *, pause: int = 0, open_state: str | None = None):
        nonlocal seq
        seq += 1
        first = seq
        ev = [(seq, "start", start, 0)]
        warn_id = breach_id = stop_id = None
        if used >= target * WARN_AT:
            seq += 1
            ev.append((seq, "warn", start + timedelta(seconds=int(target * WARN_AT)), 0))
            warn_id = seq * 3
        if used >= target:
            seq += 1
            ev.append((seq, "breach", start + timedelta(seconds=target + pause), 0))
            breach_id = seq * 3
        if pause:
            seq += 2
            half = used // 2
            ev += [(seq - 1, "pause", start + timedelta(seconds=half), half),
                   (seq, "resume", start + timedelta(seconds=half + pause), half)]
        stopped = None
        if open_state is None:
            seq += 1
            stopped = start + timedelta(seconds=used + pause)
            ev.append((seq, "stop", stopped, used))
            stop_id = seq * 3
        ev.sort()
        for s, kind, at, elapsed in ev:
            events.append({"concern_id": cid, "seq": s, "clock": name, "kind": kind, "at": at,
                           "workflow_id": facts["workflow_id"], "run_id": "bench-run", "event_id": s * 3,
                           "elapsed_seconds": elapsed, "target_seconds": target,
                           "due_at": start + timedelta(seconds=target) if kind in ("start", "resume") else None})
        outcome = "breached" if breach_id else ("met" if stopped else open_state)
        cycles.append({**facts, "concern_id": cid, "clock": name, "start_seq": first, "end_seq": seq if stopped else None,
                       "last_seq": seq, "status": "stopped" if stopped else open_state, "outcome": outcome,
                       "warned": warn_id is not None, "breached": breach_id is not None, "started_at": start,
                       "warned_at": None, "breached_at": None, "stopped_at": stopped, "last_at": ev[-1][2],
                       "due_at": None, "elapsed_seconds": used, "target_seconds": target,
                       "used_permille": used * 1000 // target if stopped else None, "start_event_id": first * 3,
                       "warn_event_id": warn_id, "breach_event_id": breach_id, "stop_event_id": stop_id,
                       "level": 1 if name == "ola_l1" else rnd.choice((1, 1, 2, 3))})

    still_open = opened > now - timedelta(days=5) and rnd.random() < 0.6
    fr_used = int(fr_t * rnd.lognormvariate(-0.9, 0.8))
    clock("first_response", fr_t, opened, fr_used)
    res_used = int(res_t * rnd.lognormvariate(-1.0, 0.7))
    waits = rnd.random() < 0.3
    pause = rnd.randint(3600, 3 * 86400) if waits else 0
    state = ("paused" if waits else "running") if still_open else None
    clock("resolution", res_t, opened, res_used, pause=pause, open_state=state)
    clock("ola_l1", ola_t, opened, int(ola_t * rnd.lognormvariate(-0.7, 0.8)), pause=pause, open_state=state)
    for _ in range(rnd.choice((0, 0, 1, 1, 2))):
        clock("next_response", nr_t, opened + timedelta(seconds=rnd.randint(600, 86400)),
              int(nr_t * rnd.lognormvariate(-1.0, 0.8)))
    concern = {"id": cid, "workflow_id": facts["workflow_id"], "subject": "Bench concern", "channel": facts["channel"],
               "category": category, "priority": priority, "status": "open" if still_open else "closed",
               "sop_id": sop, "sop_version": version, "sla_policy": policy, "sla_state": "ok", "seq": seq,
               "created_at": opened, "updated_at": opened, "level": 1, "assignee_id": agent,
               "assignee_name": facts["agent_name"]}
    return concern, events, cycles


def _bulk(conn, table: sa.Table, rows: list[dict]) -> None:
    """Insert rows as fast as the database takes them: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    cols = list(rows[0])
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({", ".join(cols)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([row[c] for c in cols])
    else:
        def value(v):
            return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
        raw.executemany(f'INSERT INTO "{table.name}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})',
                        [[value(row[c]) for c in cols] for row in rows])


def seed(url: str, count: int, months: int, batch: int = 20_000) -> tuple[float, int, int]:
    """Migrate and seed; returns the seconds it took, the clock events and the cycles written."""
    upgrade(url)
    engine = make_engine(url)
    rnd = random.Random(15)
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    n_events = n_cycles = 0
    with engine.begin() as conn:
        _bulk(conn, Organisation.__table__, [{"name": f"Org {i}", "tier": "standard", "created_at": now}
                                             for i in range(1, 201)])
        _bulk(conn, Customer.__table__, [{"email": "bench@example.test", "name": "Bench", "tier": "standard",
                                          "preferences": "{}", "session_epoch": 0, "created_at": now}])
        customer = conn.execute(sa.select(Customer.id)).scalar_one()
    for start in range(0, count, batch):
        concerns, events, cycles = [], [], []
        for n in range(start, min(count, start + batch)):
            c, e, k = _story(rnd, n, count, now, months, agents=300, orgs=200)
            c.update(customer_id=customer, clocks="[]", skills="[]")
            concerns.append(c)
            events += e
            cycles += k
        with engine.begin() as conn:
            _bulk(conn, Concern.__table__, concerns)
            _bulk(conn, ClockEvent.__table__, events)
            _bulk(conn, ClockCycle.__table__, cycles)
        n_events += len(events)
        n_cycles += len(cycles)
    with engine.begin() as conn:
        for table in ("concern", "clockevent", "clockcycle"):
            conn.execute(sa.text(f"ANALYZE {table}"))
    engine.dispose()
    return time.perf_counter() - started, n_events, n_cycles


def prepare(url: str, folder: Path) -> tuple[str, str | None]:
    """A fresh database for `url` (a file for `sqlite`, a new schema on PostgreSQL); returns (url, schema)."""
    if url == "sqlite":
        return f"sqlite:///{folder / f'sla-{uuid.uuid4().hex[:6]}.db'}", None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}", schema


def _timed(fn) -> tuple[float, object]:
    gc.collect()
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def measure(url: str, runs: int) -> dict:
    engine = make_engine(url)
    sessions = Sessions(engine)
    today = datetime.now(UTC).date()
    month_end = today.replace(day=1) - timedelta(days=1)
    month = {"from": [month_end.replace(day=1).isoformat()], "to": [month_end.isoformat()],
             "group": ["policy", "priority"]}
    year = {"from": [(today.replace(day=1) - timedelta(days=365)).isoformat()], "to": [month_end.isoformat()],
            "group": ["policy", "priority"]}
    out: dict[str, list] = {"month": [], "year": [], "csv_first": [], "csv_total": [], "csv_rss": []}
    rows = {}
    for _ in range(runs):
        for name, params in (("month", month), ("year", year)):
            with sessions.read() as session:
                took, report = _timed(lambda: sla_report(session=session, query=parse_query(params)))
            out[name].append(took)
            rows[name] = report.total.started
        process = psutil.Process()
        gc.collect()
        base = process.memory_info().rss
        peak = base
        t = time.perf_counter()
        first = None
        lines = 0
        sink = io.StringIO()
        with sessions.begin() as session:
            for chunk in clock_csv_lines(session=session, query=parse_query(month)):
                if first is None:
                    first = time.perf_counter() - t
                lines += chunk.count("\n")
                sink.write(chunk)
                if sink.tell() > 4_000_000:
                    peak = max(peak, process.memory_info().rss)
                    sink = io.StringIO()  # a client that reads as it goes
        out["csv_first"].append(first)
        out["csv_total"].append(time.perf_counter() - t)
        out["csv_rss"].append((peak - base) / 2**20)
        rows["csv"] = lines - 1
    engine.dispose()
    return {"times": out, "rows": rows}


def _spread(values: list[float], unit: str = "s", digits: int = 2) -> str:
    return (f"{statistics.median(values):.{digits}f} {unit} (min {min(values):.{digits}f}, "
            f"max {max(values):.{digits}f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", action="append",
                        help="`sqlite` (a temp file) or a PostgreSQL URL; repeat to compare (default sqlite)")
    parser.add_argument("--count", type=int, default=1_000_000, help="concerns to seed (default 1,000,000)")
    parser.add_argument("--months", type=int, default=24, help="months the concerns are spread over (default 24)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each measurement (default 3)")
    parser.add_argument("--keep", type=Path, help="seed into this folder and keep the SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        for raw in args.database_url or ["sqlite"]:
            url, schema = prepare(raw, folder)
            took, n_events, n_cycles = seed(url, args.count, args.months)
            print(f"{raw.split('@')[-1]}: seeded {args.count:,} concerns, {n_events:,} clock events, "
                  f"{n_cycles:,} clock cycles in {took:.0f} s", flush=True)
            result = measure(url, args.runs)
            t, rows = result["times"], result["rows"]
            print(f"  report, last month ({rows['month']:,} clocks), by policy and priority: {_spread(t['month'])}")
            print(f"  report, last 12 months ({rows['year']:,} clocks), by policy and priority: {_spread(t['year'])}")
            print(f"  CSV of the month's {rows['csv']:,} clock rows: first line {_spread([x * 1000 for x in t['csv_first']], 'ms', 1)}, "
                  f"all {_spread(t['csv_total'])}, memory held {_spread(t['csv_rss'], 'MiB', 1)}", flush=True)
            if schema:
                engine = sa.create_engine(raw)
                with engine.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                engine.dispose()


if __name__ == "__main__":
    main()
