"""Errors as pages for people and as `{"detail": ...}` for programs, decided in one place for the whole site."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

from api.deps import load_caller
from web.templating import render

TITLES = {
    400: "The request was not understood",
    401: "Please sign in",
    403: "This page is not for you",
    404: "Nothing here",
    405: "That cannot be done here",
    409: "That clashed with a change",
    413: "That was too large",
    422: "Something was missing or not right",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "Not available right now",
}
# Starlette's own words for a status say nothing a person can act on: say what happened instead.
PLAIN = {
    "Not Found": "There is no page at this address. It may have been typed wrongly, or what it showed is gone.",
    "Method Not Allowed": "This address does not take that kind of request.",
    "Internal Server Error": "The page could not be shown. It is not your fault; try again in a moment.",
}


def prefers_json(request: Request) -> bool:
    """Whether the caller is a program: /api/*, a bearer token, or JSON before HTML in its Accept header."""
    path = request.url.path
    if path == "/api" or path.startswith("/api/"):
        return True
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return True
    for kind in _accepted(request):  # of the two, the one a client names first is the one it prefers
        if kind in ("text/html", "application/xhtml+xml"):
            return False
        if kind == "application/json" or kind.endswith("+json"):
            return True
    return False


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser showing pages (it asks for HTML, or it is htmx), not a program."""
    if prefers_json(request):
        return False
    return request.headers.get("HX-Request") == "true" or "text/html" in _accepted(request)


def _accepted(request: Request) -> list[str]:
    accept = request.headers.get("accept", "")
    return [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]


def _is_portal(request: Request, principal) -> bool:
    return request.url.path.startswith("/portal") or (principal is not None and principal.kind == "customer")


async def _principal(request: Request):
    """The caller, as the role matrix resolved it; resolved here for addresses no route serves."""
    state = request.scope.get("state") or {}
    if "principal" in state:
        return state["principal"]
    sessions = getattr(request.app.state, "sessions", None)
    if sessions is None or "session" not in request.scope:
        return None
    try:
        principal = (await run_in_threadpool(load_caller, sessions, request.app.state.settings, request)).principal
    except Exception:  # an error page must show even when the registry is what failed
        return None
    state["principal"] = principal
    return principal


def error_page(request: Request, status: int, detail: str, *, principal=None, headers=None) -> Response:
    """The error page in the layout of the part of the site it belongs to: the portal's or the staff's."""
    portal = _is_portal(request, principal)
    request.state.principal = principal
    title = TITLES.get(status, "Something went wrong")
    if status == 403 and principal is not None and principal.kind == "customer":
        title = "This page is not available"  # plain words for customers: the desk's roles are not theirs to know
    context = {
        "status": status, "title": title,
        "detail": PLAIN.get(detail, detail), "role": "customer" if principal and principal.kind == "customer"
        else (principal.role if principal else None),
        "customer": principal if principal and principal.kind == "customer" else None,
        "staff_area": not request.url.path.startswith("/portal"),
    }
    return render(request, "errors/portal.html" if portal else "errors/staff.html", context,
                  status_code=status, headers=headers)


def _detail_text(detail) -> str:
    if isinstance(detail, str):
        return detail
    return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code < 400 or not wants_html(request):  # redirects raised as exceptions keep their Location
        return await http_exception_handler(request, exc)
    principal = await _principal(request)
    return error_page(request, exc.status_code, _detail_text(exc.detail), principal=principal,
                      headers=getattr(exc, "headers", None))


def _field_problem(error: dict) -> str:
    where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "form")]
    message = str(error.get("msg", "is not valid"))
    return f"{' '.join(where)}: {message}" if where else message


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    if not wants_html(request):
        return await request_validation_exception_handler(request, exc)
    principal = await _principal(request)
    detail = "; ".join(_field_problem(e) for e in exc.errors()) or "the request was not complete"
    return error_page(request, 422, detail, principal=principal)


async def _server_error(request: Request, exc: Exception) -> Response:
    if not wants_html(request):
        return JSONResponse({"detail": "Internal Server Error"}, 500)
    try:
        return error_page(request, 500, "Internal Server Error", principal=None)
    except Exception:  # the page itself failed: fall back to words
        return HTMLResponse("<!doctype html><title>Error</title><p>Something went wrong on our side.</p>", 500)


def install_error_pages(app: FastAPI) -> None:
    """Answer browsers with error pages; JSON clients keep FastAPI's `{"detail": ...}`."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
