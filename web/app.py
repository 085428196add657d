"""`create_site(settings)`: the JSON API plus the agent workspace and the customer portal."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware import Middleware

from api.app import create_app
from registry.settings import Settings
from web import agent, auth_pages, customers, knowledge, portal, reports
from web.access import AccessMiddleware
from web.templating import STATIC_DIR


def create_site(settings: Settings | None = None) -> FastAPI:
    """The whole web process: API, health, pages and vendored static files."""
    app = create_app(settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (auth_pages, agent, portal, customers, knowledge, reports):
        app.include_router(module.router)
    # Innermost, so the session is decoded before the role matrix reads it (add_middleware would wrap outside).
    app.user_middleware.append(Middleware(AccessMiddleware))
    return app
