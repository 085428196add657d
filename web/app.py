"""`create_site(settings)`: the JSON API plus the agent workspace and the customer portal."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.app import create_app
from registry.settings import Settings
from web import agent, auth_pages, customers, portal
from web.templating import STATIC_DIR


def create_site(settings: Settings | None = None) -> FastAPI:
    """The whole web process: API, health, pages and vendored static files."""
    app = create_app(settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (auth_pages, agent, portal, customers):
        app.include_router(module.router)
    return app
