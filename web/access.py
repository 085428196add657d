"""The role matrix: who may call every page and API route, enforced before any route runs."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

from fastapi.routing import iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import Mount, compile_path

from api.deps import Principal, load_caller
from api.metrics import scrape_token_matches
from api.throttles import client_address
from registry.audit import Origin, current_origin
from web.errors import error_page, prefers_json

ANONYMOUS = "anonymous"
CUSTOMER = "customer"
STAFF_ROLES = ("agent", "lead", "process_owner", "sre", "auditor", "admin", "integration")
EVERY_ROLE = (ANONYMOUS, CUSTOMER, *STAFF_ROLES)

EVERYONE = frozenset(EVERY_ROLE)
STAFF = frozenset(STAFF_ROLES)
AGENTS = frozenset({"agent", "lead", "admin"})
# Pages are for people: integrations hold API tokens only.
DESK_READERS = STAFF - {"integration"}
API_CALLERS = STAFF | {CUSTOMER}
# Who may write as a customer (open a concern, post a message): the customer, agents, leads, admins and
# integrations; process owners, SREs and auditors only read.
ON_BEHALF = AGENTS | {"integration", CUSTOMER}
HISTORY_READERS = frozenset({"sre", "admin", "auditor"})
REPORT_READERS = frozenset({"auditor", "admin", "lead", "process_owner"})
# The overview narrows an agent's figures to the concerns assigned to them.
OVERVIEW_READERS = REPORT_READERS | {"agent"}
# Product management reads the ideas; auditors read without changing a theme's status.
IDEA_READERS = REPORT_READERS
IDEA_WRITERS = frozenset({"lead", "process_owner", "admin"})
CUSTOMER_VIEWERS = frozenset({"agent", "lead", "admin", "auditor"})
CUSTOMER_EDITORS = AGENTS
CUSTOMERS = frozenset({CUSTOMER})
KB_WRITERS = frozenset({"agent", "lead", "process_owner", "admin"})
# SOPs: staff read versions, changes and shared drafts; process owners and admins write, publish and retire.
SOP_READERS = DESK_READERS
SOP_API_READERS = STAFF
SOP_WRITERS = frozenset({"process_owner", "admin"})
# Take articles out of circulation and back; publishing a carried-forward draft is checked again in the store.
KB_CURATORS = frozenset({"lead", "process_owner", "admin"})
# The staff audit log and its evidence: auditors and admins only (it names everyone's sign-ins and addresses).
AUDITORS = frozenset({"auditor", "admin"})
# What needs attention: SREs and admins see and act on everything; leads see the concern-level part.
OPS_READERS = frozenset({"sre", "admin", "lead"})
OPERATORS = frozenset({"sre", "admin"})

# "METHOD /path" with every path parameter written `{}`, so renaming a parameter keeps its rule.
RULES: dict[str, frozenset[str]] = {
    # health, docs and static files
    "GET /healthz": EVERYONE,
    "GET /readyz": EVERYONE,
    "GET /metrics": frozenset({"sre", "admin"}),
    "GET /openapi.json": EVERYONE,
    "GET /docs": EVERYONE,
    "GET /docs/oauth2-redirect": EVERYONE,
    "MOUNT /static": EVERYONE,
    # the front door and sign-in (customers sign in through the portal and may sign out here)
    "GET /": EVERYONE,
    "GET /login": EVERYONE,
    "POST /login": EVERYONE,
    "POST /logout": EVERYONE,
    # the agent workspace
    "GET /queue": DESK_READERS,
    "POST /queue/bulk": frozenset({"lead", "admin"}),
    "POST /queue/notices/{}/dismiss": DESK_READERS,
    "GET /concerns/{}": DESK_READERS,
    "GET /concerns/{}/actions": DESK_READERS,
    "POST /concerns/{}/actions/{}": AGENTS,
    "GET /concerns/{}/presence": DESK_READERS,
    "POST /concerns/{}/presence": DESK_READERS,
    "GET /concerns/{}/canned": AGENTS,
    # a concern's workflow history, decoded, and its raw JSON for `ccr replay`
    "GET /concerns/{}/history": HISTORY_READERS,
    "GET /concerns/{}/history.json": HISTORY_READERS,
    # the reporting overview: desk managers read every figure, an agent their own
    "GET /reports": OVERVIEW_READERS,
    "GET /reports/overview.csv": OVERVIEW_READERS,
    "GET /reports/concerns": OVERVIEW_READERS,
    "GET /api/reports/overview": OVERVIEW_READERS,
    # ideas to product: agents mark a concern as product feedback; product management reads and gives status
    "GET /concerns/{}/feedback": AGENTS,
    "POST /concerns/{}/feedback": AGENTS,
    "GET /ideas": IDEA_READERS,
    "GET /ideas.csv": IDEA_READERS,
    "POST /ideas/themes/{}/status": IDEA_WRITERS,
    "GET /api/ideas": IDEA_READERS,
    # customer records for staff (the CRM pages)
    "GET /customers": CUSTOMER_VIEWERS,
    "POST /customers/calls": CUSTOMER_EDITORS,
    "GET /customers/mail": CUSTOMER_VIEWERS,
    "GET /customers/mail/{}": CUSTOMER_VIEWERS,
    "GET /customers/mail/{}/message.eml": CUSTOMER_VIEWERS,
    "GET /customers/attachments/{}": CUSTOMER_VIEWERS,
    "GET /customers/outbox": CUSTOMER_VIEWERS,
    "GET /customers/outbox/{}": CUSTOMER_VIEWERS,  # a mail with a sign-in link: admins only, checked on the page
    "GET /customers/{}": CUSTOMER_VIEWERS,
    "POST /customers/{}/profile": CUSTOMER_EDITORS,
    "POST /customers/{}/merge": CUSTOMER_EDITORS,
    "POST /customers/{}/calls": CUSTOMER_EDITORS,
    # the customer portal: public pages, and the signed-in customer's own concerns
    "GET /portal": EVERYONE,
    "GET /portal/signup": EVERYONE,
    "POST /portal/signup": EVERYONE,
    "GET /portal/forgot": EVERYONE,
    "POST /portal/forgot": EVERYONE,
    "GET /portal/login": EVERYONE,
    "POST /portal/login": EVERYONE,
    "POST /portal/logout": EVERYONE,
    "GET /portal/reset/{}": EVERYONE,
    "POST /portal/reset/{}": EVERYONE,
    "GET /portal/kb": EVERYONE,
    "GET /portal/kb/{}": EVERYONE,
    "POST /portal/kb/{}/helpful": EVERYONE,
    "GET /portal/concerns": CUSTOMERS,
    "GET /portal/concerns/new": CUSTOMERS,
    "POST /portal/concerns/new": CUSTOMERS,
    "GET /portal/concerns/{}": CUSTOMERS,
    "POST /portal/concerns/{}/messages": CUSTOMERS,
    "POST /portal/concerns/{}/rating": CUSTOMERS,
    "GET /portal/attachments/{}": CUSTOMERS,
    # SOPs: the list, a SOP and its history, versions, compare; drafts, publishing and retiring
    "GET /sops": SOP_READERS,
    "GET /sops/new": SOP_WRITERS,
    "POST /sops/new": SOP_WRITERS,
    "GET /sops/{}": SOP_READERS,
    "GET /sops/{}/versions/{}": SOP_READERS,
    "GET /sops/{}/compare": SOP_READERS,
    "POST /sops/{}/retire": SOP_WRITERS,
    "POST /sops/{}/reinstate": SOP_WRITERS,
    "POST /sops/{}/drafts": SOP_WRITERS,
    "GET /sops/{}/drafts/{}": SOP_READERS,
    "POST /sops/{}/drafts/{}": SOP_WRITERS,
    "POST /sops/{}/drafts/{}/share": SOP_WRITERS,
    "POST /sops/{}/drafts/{}/delete": SOP_WRITERS,
    "GET /sops/{}/drafts/{}/publish": SOP_READERS,
    "POST /sops/{}/drafts/{}/publish": SOP_WRITERS,
    "GET /sops/{}/migrations/new": SOP_WRITERS,
    "POST /sops/{}/migrations/preview": SOP_WRITERS,
    "POST /sops/{}/migrations": SOP_WRITERS,
    "GET /sops/{}/migrations/{}": SOP_READERS,
    "POST /sops/{}/migrations/{}/undo": SOP_WRITERS,
    # JSON API
    "POST /api/concerns": ON_BEHALF,
    "GET /api/concerns": API_CALLERS,
    "GET /api/concerns/{}": API_CALLERS,
    "POST /api/concerns/{}/actions": AGENTS,
    "POST /api/concerns/{}/messages": ON_BEHALF,
    "GET /api/concerns/{}/history": HISTORY_READERS,
    "GET /api/customers": CUSTOMER_VIEWERS,
    "POST /api/customers": CUSTOMER_EDITORS,
    "GET /api/customers/{}": CUSTOMER_VIEWERS,
    "PATCH /api/customers/{}": CUSTOMER_EDITORS,
    "POST /api/customers/{}/merge": CUSTOMER_EDITORS,
    "POST /api/customers/{}/calls": CUSTOMER_EDITORS,
    "GET /api/reports/deflection": REPORT_READERS,
    "GET /api/sops": SOP_API_READERS,
    "POST /api/sops/validate": SOP_API_READERS,
    "GET /api/sops/{}/versions": SOP_API_READERS,
    "POST /api/sops/{}/versions": SOP_WRITERS,
    "GET /api/sops/{}/versions/{}": SOP_API_READERS,
    "POST /api/sops/{}/retire": SOP_WRITERS,
    "POST /api/sops/{}/reinstate": SOP_WRITERS,
    "GET /api/sops/{}/history": SOP_API_READERS,
    "GET /api/sops/{}/drafts": SOP_API_READERS,
    "POST /api/sops/{}/drafts": SOP_WRITERS,
    "GET /api/sops/{}/drafts/{}": SOP_API_READERS,
    "PUT /api/sops/{}/drafts/{}": SOP_WRITERS,
    "DELETE /api/sops/{}/drafts/{}": SOP_WRITERS,
    "POST /api/sops/{}/drafts/{}/share": SOP_WRITERS,
    "POST /api/sops/{}/drafts/{}/publish": SOP_WRITERS,
    # moving running concerns between versions: staff read the record, process owners and admins move
    "POST /api/sops/{}/migrations": SOP_WRITERS,
    "GET /api/sops/{}/migrations": SOP_API_READERS,
    "GET /api/sops/{}/migrations/{}": SOP_API_READERS,
    "POST /api/sops/{}/migrations/{}/undo": SOP_WRITERS,
    "GET /api/reports/sla": REPORT_READERS,
    "GET /api/reports/sla.csv": REPORT_READERS,
    "GET /api/reports/sla/clocks": REPORT_READERS,
    "GET /api/reports/sla/clocks.csv": REPORT_READERS,
    "GET /api/reports/sla/clocks/{}": REPORT_READERS,
    # the SLA report's pages; a clock's workflow events also for those who read histories
    "GET /reports/sla": REPORT_READERS,
    "GET /reports/sla/clocks": REPORT_READERS,
    "GET /reports/sla/clocks/{}": REPORT_READERS,
    "GET /reports/sla/events/{}/{}": REPORT_READERS | HISTORY_READERS,
    # knowledge articles: staff read, agents and process owners write and publish (a draft carried forward
    # from a resolution only by a second person, a lead or process owner), curators unpublish and archive
    "GET /kb/articles": DESK_READERS,
    "GET /kb/articles/new": KB_WRITERS,
    "POST /kb/articles": KB_WRITERS,
    "GET /kb/articles/{}": DESK_READERS,
    "POST /kb/articles/{}": KB_WRITERS,
    "POST /kb/articles/{}/publish": KB_WRITERS,
    "POST /kb/articles/{}/unpublish": KB_CURATORS,
    "POST /kb/articles/{}/archive": KB_CURATORS,
    "POST /kb/articles/{}/reopen": KB_CURATORS,
    "GET /kb/articles/{}/revisions/{}": DESK_READERS,
    "POST /kb/articles/{}/revisions/{}/restore": KB_WRITERS,
    "GET /kb/articles/{}/compare": DESK_READERS,
    # the staff audit log and the evidence bundle
    "GET /audit": AUDITORS,
    "POST /audit/bundle": AUDITORS,
    "GET /api/audit": AUDITORS,
    "GET /api/audit.csv": AUDITORS,
    # operating the desk: what needs attention and the operator actions (each with a reason, recorded)
    "GET /ops": OPS_READERS,
    "POST /ops/mail/{}/retry": OPERATORS,
    "POST /ops/concerns/{}/restart": OPERATORS,
    "POST /ops/concerns/{}/reset": OPERATORS,
    "GET /api/ops": OPERATORS,
    "POST /api/ops/mail/{}/retry": OPERATORS,
    "POST /api/ops/concerns/{}/restart": OPERATORS,
    "POST /api/ops/concerns/{}/reset": OPERATORS,
}

# Where an anonymous visitor of a page is sent to sign in: customers' pages go to the portal.
STAFF_LOGIN = "/login"
PORTAL_LOGIN = "/portal/login"

_PARAM = re.compile(r"\{[^}]*\}")
# Routes for programs, not people: refused with a status (401, 403), never sent to a sign-in page.
MACHINE_PATHS = ("/api", "/metrics")
SCRAPE = "GET /metrics"


def rule_key(method: str, path: str) -> str:
    """The matrix key of a route: its method and path with parameters written `{}`."""
    return f"{method} {_PARAM.sub('{}', path)}"


def app_routes(app) -> list[tuple[str, str, frozenset[str] | None]]:
    """(kind, path, methods) of every route, included routers flattened, in matching order."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            found.append(("mount", route.path, None))
        elif context.path is not None:
            found.append(("route", context.path, frozenset(context.methods or ())))
    return found


def route_keys(app) -> list[str]:
    """Every (method, path) the app serves, as matrix keys; HEAD rides on GET."""
    keys = []
    for kind, path, methods in app_routes(app):
        if kind == "mount":
            keys.append(rule_key("MOUNT", path))
        else:
            keys += [rule_key(m, path) for m in sorted(methods) if m != "HEAD"]
    return keys


def missing_rules(app) -> list[str]:
    """Routes of `app` without an entry in the matrix: each would be refused to everyone."""
    return [key for key in route_keys(app) if key not in RULES]


def stale_rules(app) -> list[str]:
    """Entries of the matrix for routes `app` does not serve (renamed or removed ones)."""
    served = set(route_keys(app))
    return [key for key in RULES if key not in served]


def role_of(principal: Principal | None) -> str:
    """The matrix column of a caller."""
    if principal is None:
        return ANONYMOUS
    return CUSTOMER if principal.kind == "customer" else principal.role


class _Table:
    """The app's routes compiled once for matching: (regex, methods, path, is mount)."""

    def __init__(self, app) -> None:
        self.entries = []
        for kind, path, methods in app_routes(app):
            regex = re.compile("^" + re.escape(path) + "(/.*)?$") if kind == "mount" else compile_path(path)[0]
            self.entries.append((regex, methods, path, kind == "mount"))

    def match(self, scope) -> tuple[str | None, bool]:
        """The matrix key of the route this request reaches (None if none), and whether it is a page."""
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        path = scope["path"]
        for regex, methods, route_path, mount in self.entries:
            if not regex.match(path):
                continue
            if mount:
                return rule_key("MOUNT", route_path), False
            if method in methods:
                return rule_key(method, route_path), not route_path.startswith(MACHINE_PATHS)
        return None, False


class AccessMiddleware:
    """Resolve the caller once into `request.state.principal` and apply the matrix before routing.

    A route without a rule is refused to everyone, so forgetting the matrix fails closed (and the matrix
    test names the route). It must sit inside the session middleware, which it reads.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.table: _Table | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        app = scope["app"]
        if self.table is None:
            self.table = _Table(app)  # routes are all included by the first request
        key, is_page = self.table.match(scope)
        state = scope.setdefault("state", {})
        if key is None or key.startswith("MOUNT "):
            response = None if key is None or key in RULES else _refuse(Request(scope), key, 403, is_page)
        elif key == SCRAPE and scrape_token_matches(app.state.settings, _authorization(scope)):
            state["principal"] = None  # Prometheus with the scrape token: no user, no token lookup
            response = None
        else:
            request = Request(scope)
            # What the audit log records as where an action came from, for every store this request reaches.
            current_origin.set(Origin(client_address(request), request.headers.get("user-agent", "")[:300]))
            caller = await run_in_threadpool(load_caller, app.state.sessions, app.state.settings, request)
            state["principal"] = caller.principal
            response = self._decide(request, key, is_page, caller)
        if response is not None:
            await response(scope, receive, send)
            return

        async def timed_send(message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                message.setdefault("headers", []).append((b"server-timing", f"app;dur={elapsed:.1f}".encode()))
            await send(message)

        await self.app(scope, receive, timed_send)

    def _decide(self, request: Request, key: str, is_page: bool, caller):
        if caller.refusal:  # an unknown token, or too many of them from this address
            status, detail, headers = caller.refusal
            return JSONResponse({"detail": detail}, status, headers=headers)
        principal = caller.principal
        allowed = RULES.get(key)
        if allowed is None:
            return _refuse(request, key, 403, is_page, principal=principal)
        role = role_of(principal)
        if role in allowed:
            return None
        if principal is None:
            if not is_page:
                return JSONResponse({"detail": "sign in or send an API token"}, 401,
                                    headers={"WWW-Authenticate": "Bearer"})
            login = PORTAL_LOGIN if allowed <= {CUSTOMER} else STAFF_LOGIN
            query = request.url.query
            here = request.headers.get("HX-Current-URL") or request.url.path + (f"?{query}" if query else "")
            target = f"{login}?next={quote(_local(here), safe='/')}"
            if request.headers.get("HX-Request") == "true":
                # A polling fragment must not swap the sign-in page into itself: send the whole page there.
                return HTMLResponse("", 401, headers={"HX-Redirect": target})
            return RedirectResponse(target, 302)
        return _refuse(request, key, 403, is_page, role, principal=principal)


def _authorization(scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return value.decode("latin-1")
    return ""


def _local(url: str) -> str:
    """The path and query of a URL of this site (never another host)."""
    path = re.sub(r"^[a-z]+://[^/]+", "", url)
    return path if path.startswith("/") and not path.startswith("//") else "/"


def _refuse(request: Request, key: str, status: int, is_page: bool, role: str | None = None, *, principal=None):
    """A 403 (JSON for the API and programs, a page for people): staff read what the route needs, customers only
    that it is not for them (the desk's roles are none of their business)."""
    if key not in RULES:
        detail = f"no access rule for {key}: add one to RULES in web/access.py"
    elif role == CUSTOMER:
        detail = "this is not available in the customer portal"
    else:
        needed = ", ".join(sorted(RULES[key]))
        detail = f"this is not open to {role or 'you'}; it needs one of: {needed}"
    if not is_page or prefers_json(request):
        return JSONResponse({"detail": detail}, status)
    return error_page(request, status, detail, principal=principal)

