"""Prometheus metrics of the web process: intake, agent actions, and the projection by status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func
from sqlmodel import select

from api.deps import Principal, require
from registry.handover import pending_summary
from registry.models import Concern
from registry.types import utcnow

router = APIRouter(tags=["health"])


class ProjectionCollector:
    """Counts concerns by status and SLA state at scrape time (one grouped query on an indexed column)."""

    def __init__(self, app) -> None:
        self.app = app

    def collect(self):
        family = GaugeMetricFamily("ccr_concerns", "Concerns in the projection by status and SLA state",
                                   labels=["status", "sla_state"])
        sessions = getattr(self.app.state, "sessions", None)
        if sessions is not None:
            with sessions.begin() as session:
                rows = session.exec(select(Concern.status, Concern.sla_state, func.count())
                                    .group_by(Concern.status, Concern.sla_state))
                for status, sla_state, count in rows:
                    family.add_metric([status, sla_state], count)
                pending, oldest, _ = pending_summary(session=session)
        yield family
        if sessions is not None:
            yield GaugeMetricFamily("ccr_handovers_pending", "Workflow starts, customer messages and ratings stored "
                                    "by intake that Temporal has not taken yet", value=pending)
            age = (utcnow() - oldest).total_seconds() if oldest is not None else 0
            yield GaugeMetricFamily("ccr_handover_oldest_seconds", "Age of the oldest pending hand-over", value=age)


class Metrics:
    """The web process's own metrics registry (one per app, so several apps can live in one process)."""

    def __init__(self, app) -> None:
        self.registry = CollectorRegistry()
        self.opened = Counter("ccr_concerns_opened_total", "Concerns opened", ["channel"], registry=self.registry)
        self.actions = Counter("ccr_agent_actions_total", "Agent actions sent to workflows", ["type", "result"],
                               registry=self.registry)
        self.registry.register(ProjectionCollector(app))

    def count_opened(self, channel: str) -> None:
        """One concern registered by this process's intake (portal, e-mail, phone or API)."""
        self.opened.labels(channel).inc()

    def count_action(self, kind: str, accepted: bool) -> None:
        """One agent action sent to a workflow from a page or the API, and whether the workflow took it."""
        self.actions.labels(kind, "accepted" if accepted else "rejected").inc()


@router.get("/metrics", response_class=Response)
def metrics(request: Request, _: Annotated[Principal, require("sre", "admin")]) -> Response:
    """Prometheus exposition (bearer token of an SRE or admin)."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def metrics_of(request: Request) -> Metrics | None:
    return getattr(request.app.state, "metrics", None)
