"""Jinja2 templates shared by the agent workspace and the customer portal."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from web.csrf import csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
HTMX = "htmx-2.0.11.min.js"
HTMX_SSE = "htmx-ext-sse-2.2.4.min.js"
ELK_JS = "elk-0.12.1.bundled.js"  # lays out SOP flow charts (web/templates/flowchart/_chart.html)
OPEN_PROPS = "open-props-1.7.23.min.css"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
# Templates ship with the code: compiled once per process, not checked on disk for changes on every page.
templates.env.auto_reload = False
templates.env.globals.update(htmx=HTMX, htmx_sse=HTMX_SSE, elk_js=ELK_JS, open_props=OPEN_PROPS)


def render(request: Request, name: str, context: dict | None = None, *, status_code: int = 200, headers=None):
    """Render a page or fragment with the CSRF token and caller in its context; `Vary: HX-Request` always."""
    ctx = {"csrf_token": csrf_token(request), "principal": getattr(request.state, "principal", None), **(context or {})}
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)
    response.headers["Vary"] = "HX-Request"
    return response


def is_htmx(request: Request) -> bool:
    """Whether an htmx request asks for a fragment."""
    return request.headers.get("HX-Request") == "true"
