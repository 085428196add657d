"""FastAPI dependencies as `Annotated` aliases: settings, sessions, Temporal, intake and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import bindparam, select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.catalog import Catalog
from api.intake import Intake
from api.security import user_for_token
from api.throttles import UNKNOWN_TOKENS, client_address
from registry.access import Refused, count, live_session, touch_session, uncount
from registry.db import Sessions
from registry.models import Customer, User
from registry.settings import Settings
from registry.types import utcnow
from workflows.client import TemporalUnreachable, make_client
from workflows.payloads import AgentRef


@dataclass
class Principal:
    """Who is calling: a member of staff or a customer."""

    kind: str  # "user" or "customer"
    id: int
    name: str
    email: str | None
    role: str
    level: int | None = None
    skills: tuple[str, ...] = ()

    @classmethod
    def of_user(cls, user: User) -> Principal:
        """From a `User`, or a row of its columns (the sign-in check reads only those)."""
        return cls("user", user.id, user.name, user.email, user.role, user.level, tuple(user.skills))

    @classmethod
    def of_customer(cls, customer: Customer) -> Principal:
        return cls("customer", customer.id, customer.name, customer.email, "customer")

    def agent_ref(self) -> AgentRef:
        return AgentRef(id=self.id, name=self.name, level=self.level or (3 if self.role == "admin" else 1),
                        skills=list(self.skills), lead=self.role in ("lead", "admin"))


# Dependencies that do no I/O are coroutines: FastAPI runs a plain function in the thread pool, a hop
# that under load waits behind other requests' database work.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_sessions(request: Request) -> Sessions:
    return request.app.state.sessions


async def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


async def get_client(request: Request) -> Client:
    """The shared Temporal client; connects on first use if Temporal was down when the app started."""
    state = request.app.state
    if state.client is None:
        try:
            state.client = await make_client(state.settings)
        except TemporalUnreachable as err:
            raise HTTPException(503, str(err)) from err
    return state.client


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionsDep = Annotated[Sessions, Depends(get_sessions)]
ClientDep = Annotated[Client, Depends(get_client)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]


async def get_intake(request: Request, sessions: SessionsDep, settings: SettingsDep, catalog: CatalogDep) -> Intake:
    """Intake on the app's Temporal client. Without one (Temporal was down when the app started), it stores and
    leaves the hand-over pending: the app's sweeper connects, with back-off, and hands it over."""
    sweeper = request.app.state.sweeper
    metrics = getattr(request.app.state, "metrics", None)
    return Intake(sessions=sessions, client=request.app.state.client, settings=settings, catalog=catalog,
                  on_pending=sweeper.wake if sweeper is not None else None,
                  on_opened=metrics.count_opened if metrics is not None else None)


IntakeDep = Annotated[Intake, Depends(get_intake)]


@dataclass
class Caller:
    """Who is calling, or why the request is refused before it reaches a route (status, detail, headers)."""

    principal: Principal | None
    refusal: tuple[int, str, dict] | None = None

    def http_error(self) -> HTTPException:
        status, detail, headers = self.refusal
        return HTTPException(status, detail, headers=headers)


async def get_principal(request: Request, sessions: SessionsDep) -> Principal | None:
    """The caller from a bearer token or the sign-in session, or None."""
    resolved = request.scope.get("state") or {}
    if "principal" in resolved:  # the site's access middleware resolved it once for this request
        return resolved["principal"]
    caller = await run_in_threadpool(load_caller, sessions, request.app.state.settings, request)
    if caller.refusal:
        raise caller.http_error()
    return caller.principal


_USERS = User.__table__
_SIGNED_IN_USER = select(_USERS.c.id, _USERS.c.name, _USERS.c.email, _USERS.c.role, _USERS.c.level, _USERS.c.skills,
                         _USERS.c.active, _USERS.c.session_epoch).where(_USERS.c.id == bindparam("id"))
# A session's idle time restarts at most this often: a page polled every few seconds is not a write each time.
TOUCH_EVERY = timedelta(seconds=60)


def load_caller(sessions: Sessions, settings: Settings, request: Request) -> Caller:
    """The caller from a bearer token or the sign-in session (the cookie holds only the session's id)."""
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return _token_caller(sessions, authorization[7:].strip(), client_address(request))
    session_id = (request.scope.get("session") or {}).get("sid")
    if not session_id:
        return Caller(None)
    lifetime, idle = settings.session_limits
    principal = None
    with sessions.read() as session:
        row = live_session(session=session, session_id=str(session_id), lifetime=lifetime, idle=idle)
        if row is not None and row.user_id is not None:
            # Every page asks this; plain columns by primary key, without loading an ORM object.
            user = session.connection().execute(_SIGNED_IN_USER, {"id": row.user_id}).first()
            if user is not None and user.active and user.session_epoch == row.epoch:
                principal = Principal.of_user(user)
        elif row is not None and row.customer_id is not None:
            customer = session.get(Customer, row.customer_id)
            if customer is not None and customer.session_epoch == row.epoch:
                principal = Principal.of_customer(customer)
    if principal is not None and utcnow() - row.seen_at > min(TOUCH_EVERY, idle / 2):
        with sessions.begin() as session:
            touch_session(session=session, session_id=str(session_id))
    return Caller(principal)


def _token_caller(sessions: Sessions, token: str, address: str) -> Caller:
    # Counted before the token is looked up and in the same transaction, so parallel guesses from one address
    # get no more lookups than the limit; a known token gives its attempt back.
    with sessions.begin() as session:
        verdict = count(session=session, limit=UNKNOWN_TOKENS, value=address)
        if isinstance(verdict, Refused):
            return Caller(None, (429, verdict.message(), {"Retry-After": str(verdict.retry_after)}))
        user = user_for_token(session=session, token=token)
        if user is None:
            return Caller(None, (401, "the API token is unknown or revoked", {"WWW-Authenticate": "Bearer"}))
        uncount(session=session, limit=UNKNOWN_TOKENS, value=address)
        return Caller(Principal.of_user(user))


def require(*roles: str):
    """A dependency that admits only callers with one of `roles` (401 when anonymous, 403 otherwise)."""

    async def check(principal: Annotated[Principal | None, Depends(get_principal)]) -> Principal:
        if principal is None:
            raise HTTPException(401, "sign in or send an API token", headers={"WWW-Authenticate": "Bearer"})
        if principal.role not in roles:
            raise HTTPException(403, f"this needs one of the roles: {', '.join(roles)}")
        return principal

    return Depends(check)


def db_session(sessions: SessionsDep):
    with sessions.begin() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session)]
