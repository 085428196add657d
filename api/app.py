"""`create_app(settings)`: the FastAPI application serving the JSON API and health (web pages are added by `web.app`)."""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import asynccontextmanager

import anyio.to_thread

from fastapi import Depends, FastAPI
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import (
    audit, concern_history, concerns, customers, health, ideas, metrics, ops, reports, reports_overview, sop_drafts,
    sop_migrations, sops,
)
from api.bad_input import StorableJson, bounded_integers
from api.catalog import Catalog
from api.handover import Handover, HandoverSweeper
from registry.db import Sessions, make_engine
from registry.logs import about_concern
from registry.settings import Settings
from workflows.client import TemporalUnreachable, make_client


request_log = logging.getLogger("ccr.web")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; connections are made in the lifespan, never at import time."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Pages and registry reads run in threads; fewer of them mean less contention for the GIL.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        engine = make_engine(settings.resolved_database_url)
        app.state.sessions = Sessions(engine)
        app.state.catalog = Catalog.load()
        try:
            app.state.client = await make_client(settings)
        except TemporalUnreachable:
            app.state.client = None  # /readyz reports it; requests needing Temporal reconnect or answer 503
        sweeper = HandoverSweeper(lambda: handover_of(app), app.state.sessions)
        app.state.sweeper = sweeper
        sweeping = asyncio.create_task(sweeper.run())
        yield
        sweeping.cancel()
        await asyncio.gather(sweeping, return_exceptions=True)
        engine.dispose()

    app = FastAPI(
        title="Customer Care Registry",
        version="0.1.0",
        description="Every customer concern runs as one durable workflow that follows its SOP.",
        lifespan=lifespan,
        dependencies=[Depends(bounded_integers)],
        # The site serves Swagger UI from its own files (web/docs.py) instead of a CDN; ReDoc is not served.
        docs_url=None, redoc_url=None,
    )
    app.state.settings = settings
    app.state.client = None
    app.state.sweeper = None
    app.add_middleware(
        SessionMiddleware, secret_key=settings.signing_key, session_cookie="ccr_session", same_site="lax",
        https_only=settings.base_url.startswith("https://"),
        max_age=int(settings.session_limits[0].total_seconds()),
    )
    if settings.proxies:
        # Outermost, so every part of the app sees the client's address the proxy reports. Only these
        # proxies are believed: anyone else's X-Forwarded-For is ignored, so a client cannot pick its address.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.proxies)
    app.add_middleware(StorableJson)
    app.add_middleware(ConcernRequestLog)
    app.state.metrics = metrics.Metrics(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(concerns.router)
    app.include_router(concern_history.router)
    app.include_router(reports.router)
    app.include_router(reports_overview.router)
    app.include_router(customers.router)
    app.include_router(sops.router)
    app.include_router(sop_drafts.router)
    app.include_router(audit.router)
    app.include_router(sop_migrations.router)
    app.include_router(ops.router)
    app.include_router(ideas.router)
    return app


_CONCERN_PATH = re.compile(r"^/(?:api/|portal/)?concerns/(CCR-[0-9A-Z]{4,16})(?:/|$)")


class ConcernRequestLog:
    """Every line logged while serving a request about a concern carries its id, and the request is one line."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        match = _CONCERN_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        status = {}

        async def sent(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        settings = scope["app"].state.settings
        concern_id = match.group(1)
        with about_concern(concern_id, f"{settings.workflow_id_prefix}{concern_id}"):
            try:
                await self.app(scope, receive, sent)
            finally:
                request_log.info("%s %s %s", scope["method"], scope["path"], status.get("code", "-"))


async def connected_client(app: FastAPI):
    """The app's Temporal client, connecting first if Temporal was down until now; None while it still is."""
    if app.state.client is None:
        try:
            app.state.client = await make_client(app.state.settings)
        except TemporalUnreachable:
            return None
    return app.state.client


async def handover_of(app: FastAPI) -> Handover | None:
    """A hand-over on the app's client for the sweeper, or None while Temporal is unreachable."""
    client = await connected_client(app)
    if client is None:
        return None
    return Handover(sessions=app.state.sessions, client=lambda: client, settings=app.state.settings,
                    catalog=app.state.catalog)
