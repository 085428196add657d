"""The API's Swagger UI served from vendored files, so `/docs` works on a machine without internet."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

SWAGGER_UI = "/static/swagger-ui-5.35.0"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for the JSON API."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url, title=f"{request.app.title} · API",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js", swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg", oauth2_redirect_url="/docs/oauth2-redirect",
        # No badge from validator.swagger.io: nothing on the page may reach outside this site.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/docs/oauth2-redirect")
def swagger_ui_redirect() -> HTMLResponse:
    """Where Swagger UI's OAuth2 sign-in returns."""
    return get_swagger_ui_oauth2_redirect_html()
