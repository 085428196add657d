"""Prometheus metrics: what the web process counts, the process-wide counters of `registry.telemetry`, and gauges
derived from the registry (and /ops) at scrape time, which are exact in every process."""

from __future__ import annotations

import hmac
import os

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from registry.handover import Handover, pending_summary
from registry.models import Concern, OutboxMail
from registry.ops import concern_counts
from registry.telemetry import PROCESS
from registry.types import utcnow

router = APIRouter(tags=["health"])


def multiprocess() -> bool:
    """Whether counters are kept in files shared by several web processes (`ccr web --workers N`)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ProjectionCollector:
    """Gauges from the registry at scrape time: concerns by status, SLA state and level, hand-overs, mail."""

    def __init__(self, app) -> None:
        self.app = app

    def collect(self):
        sessions = getattr(self.app.state, "sessions", None)
        if sessions is None:
            return
        family = GaugeMetricFamily("ccr_concerns", "Concerns in the projection by status and SLA state",
                                   labels=["status", "sla_state"])
        by_level = GaugeMetricFamily("ccr_concerns_by_level", "Concerns in the projection by status and level "
                                     "(level 0: not at a human step)", labels=["status", "level"])
        mail = GaugeMetricFamily("ccr_mail_outbox", "Outgoing mail not delivered yet, by status (queued, failed)",
                                 labels=["status"])
        kinds = GaugeMetricFamily("ccr_handovers_pending_by_kind", "Pending hand-overs by kind: start (a concern "
                                  "without a workflow), message, rating", labels=["kind"])
        with sessions.begin() as session:
            rows = session.exec(select(Concern.status, Concern.sla_state, func.count())
                                .group_by(Concern.status, Concern.sla_state))
            for status, sla_state, count in rows:
                family.add_metric([status, sla_state], count)
            for status, level, count in concern_counts(session=session):
                by_level.add_metric([status, str(level or 0)], count)
            counts = dict(session.exec(select(OutboxMail.status, func.count())
                                       .where(col(OutboxMail.status).in_(("queued", "failed")))
                                       .group_by(OutboxMail.status)).all())
            for status in ("queued", "failed"):
                mail.add_metric([status], counts.get(status, 0))
            pending_kinds = dict(session.exec(select(Handover.kind, func.count())
                                              .where(col(Handover.delivered_at).is_(None))
                                              .group_by(Handover.kind)).all())
            for kind in ("start", "message", "rating"):
                kinds.add_metric([kind], pending_kinds.get(kind, 0))
            pending, oldest, _ = pending_summary(session=session)
        yield from (family, by_level, mail, kinds)
        yield GaugeMetricFamily("ccr_handovers_pending", "Workflow starts, customer messages and ratings stored "
                                "by intake that Temporal has not taken yet", value=pending)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0
        yield GaugeMetricFamily("ccr_handover_oldest_seconds", "Age of the oldest pending hand-over", value=age)


class AttentionCollector:
    """What /ops counts (from the registry and Temporal), as gauges for alerts; set just before each scrape."""

    def __init__(self) -> None:
        self.view = None

    def collect(self):
        if self.view is None:
            return
        family = GaugeMetricFamily("ccr_attention", "What /ops shows, by kind: unstaffed, stuck_activities, "
                                   "failing_actions, task_failures, nondeterminism, mail_failed, mail_waiting, "
                                   "without_workflow, messages_undelivered, late_timers, pollers", labels=["kind"])
        for kind, count in self.view.counts.items():
            family.add_metric([kind], count)
        yield family
        yield GaugeMetricFamily("ccr_temporal_up", "1 when Temporal answered the last look, 0 otherwise",
                                value=1 if self.view.temporal["ok"] else 0)
        backlog = GaugeMetricFamily("ccr_task_queue_backlog", "Tasks waiting on the task queue for a worker",
                                    labels=["type"])
        for kind, stats in self.view.workers.get("backlog", {}).items():
            backlog.add_metric([kind], stats["count"])
        yield backlog


class Metrics:
    """The web process's own metrics registry (one per app, so several apps can live in one process)."""

    def __init__(self, app) -> None:
        self.registry = CollectorRegistry()
        self.opened = Counter("ccr_concerns_opened_total", "Concerns opened", ["channel"], registry=self.registry)
        self.actions = Counter("ccr_agent_actions_total", "Agent actions sent to workflows", ["type", "result"],
                               registry=self.registry)
        self.derived = CollectorRegistry(auto_describe=False)
        self.derived.register(ProjectionCollector(app))
        self.attention = AttentionCollector()
        self.derived.register(self.attention)

    def exposition(self) -> bytes:
        """Every metric of this process, or of all web processes in multiprocess mode, and the derived gauges."""
        if multiprocess():
            counted = CollectorRegistry()
            MultiProcessCollector(counted)
            parts = [counted]
        else:
            parts = [self.registry, PROCESS]
        return b"".join(generate_latest(r) for r in (*parts, self.derived))

    def count_opened(self, channel: str) -> None:
        """One concern registered by this process's intake (portal, e-mail, phone or API)."""
        self.opened.labels(channel).inc()

    def count_action(self, kind: str, accepted: bool) -> None:
        """One agent action sent to a workflow from a page or the API, and whether the workflow took it."""
        self.actions.labels(kind, "accepted" if accepted else "rejected").inc()


def scrape_token_matches(settings, authorization: str) -> bool:
    """Whether the request carries the configured scrape token (`CCR_METRICS_TOKEN`)."""
    token = settings.metrics_token
    if token is None or not authorization.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), token.get_secret_value().encode())


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus exposition (the scrape token, or the bearer token of an SRE or admin; 401 otherwise)."""
    from api.deps import get_principal
    from api.ops import attention

    state = request.app.state
    if not scrape_token_matches(state.settings, request.headers.get("authorization", "")):
        principal = await get_principal(request, state.sessions)
        if principal is None:
            raise HTTPException(401, "send the scrape token (CCR_METRICS_TOKEN) or an SRE's API token",
                                headers={"WWW-Authenticate": "Bearer"})
        if principal.role not in ("sre", "admin"):
            raise HTTPException(403, "this needs one of the roles: admin, sre")
    state.metrics.attention.view = await attention(request.app)
    body = await run_in_threadpool(state.metrics.exposition)
    # Which process answered: behind one port, `ccr web --workers N` answers from any of them.
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"X-CCR-Process": str(os.getpid())})


def metrics_of(request: Request) -> Metrics | None:
    return getattr(request.app.state, "metrics", None)
