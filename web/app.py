"""`create_site(settings)`: the JSON API plus the agent workspace and the customer portal."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware import Middleware

from api.app import create_app
from registry.settings import Settings
from web import (  # noqa: F401 (nav: the staff bar's links)
    agent, audit, auth_pages, customers, docs, history, ideas, knowledge, nav, ops, outbox, portal, reports,
    reports_overview, sop_drafts, sop_migrations, sops,
)
from web.access import AccessMiddleware
from web.errors import install_error_pages
from web.templating import STATIC_DIR


def create_site(settings: Settings | None = None) -> FastAPI:
    """The whole web process: API, health, pages, their error pages and vendored static files."""
    app = create_app(settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # sop_drafts before sops: /sops/new must not be read as the SOP named 'new'.
    for module in (auth_pages, agent, history, portal, customers, outbox, knowledge, sop_drafts, sop_migrations, sops,
                   reports_overview, reports, ideas, ops, docs, audit):
        app.include_router(module.router)
    install_error_pages(app)
    # Innermost, so the session is decoded before the role matrix reads it (add_middleware would wrap outside).
    app.user_middleware.append(Middleware(AccessMiddleware))
    return app
