"""Counters of what happens in any process (worker, web, SMTP), counted where it happens.

They live in one process-wide registry, `PROCESS`: the web app's /metrics includes it (so `ccr up`, one
process, shows the worker's counts too), and `ccr worker` serves it on `CCR_WORKER_APP_METRICS_ADDRESS`.
With `PROMETHEUS_MULTIPROC_DIR` set (`ccr web --workers N`), prometheus-client keeps the values in files that
/metrics sums over every process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

PROCESS = CollectorRegistry(auto_describe=True)

ELEVEL_OUTCOMES = Counter(
    "ccr_elevel_outcomes_total", "E-level actions run, by action and outcome (`error`: the action raised)",
    ["action", "outcome"], registry=PROCESS)
MAIL = Counter(
    "ccr_mail_total", "Outgoing mail handed to the relay: sent, kept locally (no relay), failed (will be retried) "
    "or refused (for good)", ["result"], registry=PROCESS)
SLA_EVENTS = Counter(
    "ccr_sla_events_total", "SLA warnings and breaches written to the registry, by kind, clock and policy",
    ["kind", "clock", "policy"], registry=PROCESS)
TIMER_LATENESS = Histogram(
    "ccr_sla_timer_lateness_seconds", "How long after its instant an SLA breach was written (the timer waited "
    "for a worker)", buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600), registry=PROCESS)
REGISTRY_WRITES = Histogram(
    "ccr_registry_write_seconds", "Duration of the `record` activity: one batch of projection writes",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=PROCESS)
OPERATOR_ACTIONS = Counter(
    "ccr_operator_actions_total", "Operator actions from /ops and the API, by action (each recorded with a reason)",
    ["action"], registry=PROCESS)


def clock_kind(clock: str) -> str:
    """A clock's name without the step it belongs to, so labels stay few (`step:level1` → `step`)."""
    return clock.split(":", 1)[0] if clock.startswith("step:") else clock
