"""Customer portal: sign up (by a mailed link), sign in and out, password reset, and the help articles."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from activities.elevel.password_reset import ResetTokenError, make_reset_token, reset_link, verify_reset_token
from activities.mail_out import Mailer, build_message, mark_failed, mark_sent
from api import throttles
from api.deps import SessionsDep, SettingsDep
from api.security import hash_password, verify_password
from registry import audit
from registry import customers as crm
from registry.access import Refused
from registry.db import Sessions
from registry.knowledge import get_article, render_markdown, search_articles
from registry.knowledge_feedback import (
    category_label, popular_articles, published_categories, published_in, record_view, record_vote,
)
from registry.models import Customer, OutboxMail
from registry.settings import Settings
from registry.types import utcnow
from web import portal_concerns
from web.auth_pages import begin_session, end_session
from web.csrf import verify_csrf
from web.portal_concerns import portal_customer
from web.templating import is_htmx, render, templates

# The size check runs first: checking the CSRF token of a form means reading the whole form.
router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False,
                   dependencies=[Depends(portal_concerns.refuse_oversized), Depends(verify_csrf)])
router.include_router(portal_concerns.router)

MIN_PASSWORD = 8
# One sign-in link per address per minute: enough for a lost mail, too few to bomb someone's inbox.
LINK_INTERVAL = timedelta(seconds=60)


MaybeCustomer = Annotated[Customer | None, Depends(portal_customer)]


def _sign_in(request: Request, sessions: Sessions, customer: Customer, how: str = "password") -> None:
    begin_session(request, sessions, customer_id=customer.id, epoch=customer.session_epoch,
                  actor=customer.email or f"customer:{customer.id}", how=how)


def _failed_sign_in(sessions: Sessions, email: str) -> None:
    with sessions.begin() as session:
        audit.record(session=session, actor=email or "(no e-mail given)", action="customer.sign_in_failed",
                     target=f"customer:{email}",
                     detail={"reason": "wrong e-mail or password"})


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/portal") and not value.startswith("//") else "/portal/concerns"


def _email(value: str) -> str | None:
    try:
        return crm.normalise_email(validate_email(value.strip(), check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


async def send_sign_in_link(*, sessions: Sessions, settings: Settings, customer: Customer, welcome: bool) -> None:
    """Mail the customer a single-use link to choose a password (it proves they own the address)."""
    link = reset_link(make_reset_token(customer.email, settings=settings, password_hash=customer.password_hash),
                      settings=settings)
    context = {"name": customer.name, "link": link, "welcome": welcome}
    subject = "Choose your password for Customer Care" if welcome else "Set a new password for Customer Care"
    text = templates.env.get_template("portal/mail/sign_in_link.txt").render(context)
    html = templates.env.get_template("portal/mail/sign_in_link.html").render(context)
    domain = settings.support_address.rsplit("@", 1)[-1]
    message_id = f"<ccr.account.{secrets.token_hex(12)}@{domain}>"
    with sessions.begin() as session:
        recent = session.exec(select(OutboxMail).where(
            OutboxMail.to_address == customer.email, col(OutboxMail.concern_id).is_(None),
            OutboxMail.created_at > utcnow() - LINK_INTERVAL)).first()
        if recent is not None:
            return
        row = OutboxMail(to_address=customer.email, subject=subject, message_id=message_id, text=text, html=html)
        session.add(row)
        session.flush()
        row_id, created = row.id, row.created_at
    message = build_message(to=customer.email, from_address=settings.support_address, subject=subject, text=text,
                            html=html, message_id=message_id, in_reply_to=None, references=[], automated=True,
                            date=created)
    try:
        relayed = await Mailer(settings).send(message)
    except Exception as err:  # noqa: BLE001 - the failure is recorded on the outbox row for staff to see
        with sessions.begin() as session:
            mark_failed(session=session, outbox_id=row_id, error=str(err))
        return
    with sessions.begin() as session:
        mark_sent(session=session, outbox_id=row_id, relayed=relayed)


# ---- sign up, sign in, sign out, reset -------------------------------------------------------------


@router.get("")
def home(request: Request, customer: MaybeCustomer):
    """The portal's front page: my concerns when signed in, otherwise help articles and sign-in."""
    if customer is not None:
        return RedirectResponse("/portal/concerns", status_code=303)
    return render(request, "portal/home.html", {"customer": None, "title": "Customer portal"})


@router.get("/signup")
def signup_page(request: Request, customer: MaybeCustomer):
    """The form to create an account."""
    return render(request, "portal/signup.html", {"customer": customer, "title": "Create an account",
                                                  "mode": "signup", "values": {}, "errors": []})


@router.get("/forgot")
def forgot_page(request: Request, customer: MaybeCustomer):
    """The form to ask for a new password."""
    return render(request, "portal/signup.html", {"customer": customer, "title": "Forgot your password?",
                                                  "mode": "forgot", "values": {}, "errors": []})


async def _link_form(request: Request, sessions: Sessions, settings: Settings, mode: str):
    form = await request.form()
    name, raw_email = str(form.get("name", "")).strip()[:200], str(form.get("email", ""))
    email = _email(raw_email)
    errors = [] if email else ["Enter a valid e-mail address."]
    if mode == "signup" and not name:
        errors.append("Enter your name.")
    status, headers = 422, None
    if not errors:
        # Counted whether or not the address has an account, so the answer does not tell who has one.
        verdict = await run_in_threadpool(throttles.take, sessions, throttles.keyed(
            throttles.LINK_REQUESTS, email=email, address=throttles.client_address(request)))
        if isinstance(verdict, Refused):
            errors.append(verdict.message(email=email))
            status, headers = 429, throttles.retry_headers(verdict)
    if errors:
        return render(request, "portal/signup.html", {
            "customer": None, "title": "Create an account" if mode == "signup" else "Forgot your password?",
            "mode": mode, "values": {"name": name, "email": raw_email}, "errors": errors}, status_code=status,
            headers=headers)
    with sessions.begin() as session:
        if mode == "signup":
            customer, _ = crm.find_or_create_customer(session=session, email=email, name=name)
        else:
            customer = crm.find_customer(session=session, email=email)
    # The same answer whether or not the address is known, so the page does not reveal who has an account.
    if customer is not None and customer.email:
        await send_sign_in_link(sessions=sessions, settings=settings, customer=customer, welcome=mode == "signup")
    return render(request, "portal/link_sent.html", {"customer": None, "title": "Check your mail", "email": email})


@router.post("/signup")
async def signup(request: Request, sessions: SessionsDep, settings: SettingsDep):
    """Register the address and mail a link to choose a password."""
    return await _link_form(request, sessions, settings, "signup")


@router.post("/forgot")
async def forgot(request: Request, sessions: SessionsDep, settings: SettingsDep):
    """Mail a link to choose a new password, if the address has an account."""
    return await _link_form(request, sessions, settings, "forgot")


@router.get("/login")
def login_page(request: Request, customer: MaybeCustomer, next: str | None = None):
    """The sign-in form."""
    return render(request, "portal/login.html", {"customer": customer, "title": "Sign in", "next": _safe_next(next),
                                                 "email": "", "error": None})


@router.post("/login")
async def login(request: Request, sessions: SessionsDep):
    """Check the password and start a fresh session; after 5 failures in 5 minutes for one address, pause."""
    form = await request.form()
    email, password = str(form.get("email", "")).strip()[:320], str(form.get("password", ""))[:1000]
    target = _safe_next(str(form.get("next", "")))
    limits = throttles.keyed(throttles.PORTAL_SIGN_IN, email=email.lower(), address=throttles.client_address(request))

    def page(error: str, status: int, headers: dict | None = None):
        return render(request, "portal/login.html", {"customer": None, "title": "Sign in", "next": target,
                                                     "email": email, "error": error}, status_code=status,
                      headers=headers)

    # Counted before the password is checked, in one step, so parallel guesses get no more checks than the limit.
    verdict = await run_in_threadpool(throttles.take, sessions, limits)
    if isinstance(verdict, Refused):
        return page(verdict.message(email=email), 429, throttles.retry_headers(verdict))
    with sessions.begin() as session:
        customer = crm.find_customer(session=session, email=email) if email else None
    if not await run_in_threadpool(verify_password, password, customer.password_hash if customer else None):
        await run_in_threadpool(_failed_sign_in, sessions, email.lower())
        hint = "" if verdict.left > 2 else " Sign-in is paused for 5 minutes after 5 failures."
        return page("That e-mail address and password do not match an account." + hint, 401)
    await run_in_threadpool(throttles.succeeded, sessions, limits)
    _sign_in(request, sessions, customer)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(request: Request, sessions: SessionsDep):
    """End the session, on the server too (a copy of the cookie is refused from now on)."""
    end_session(request, sessions)
    return RedirectResponse("/portal/login", status_code=303)


def _reset_email(token: str, settings: Settings, sessions: Sessions) -> tuple[str | None, str | None]:
    try:
        return verify_reset_token(token, settings=settings, sessions=sessions), None
    except ResetTokenError as err:
        return None, str(err)


@router.get("/reset/{token}")
def reset_page(token: str, request: Request, settings: SettingsDep, sessions: SessionsDep):
    """Choose a password with a mailed link (sign-up and forgotten passwords alike)."""
    email, error = _reset_email(token, settings, sessions)
    return render(request, "portal/reset.html", {"customer": None, "title": "Choose a password", "token": token,
                                                 "email": email, "error": error, "errors": []},
                  status_code=400 if error else 200)


@router.post("/reset/{token}")
async def reset(token: str, request: Request, settings: SettingsDep, sessions: SessionsDep):
    """Set the password, which also uses up the link, and sign in."""
    email, error = _reset_email(token, settings, sessions)
    form = await request.form()
    password, repeat = str(form.get("password", "")), str(form.get("password_repeat", ""))
    errors = []
    if len(password) < MIN_PASSWORD or len(password) > 200:
        errors.append(f"Choose a password of at least {MIN_PASSWORD} characters.")
    elif password != repeat:
        errors.append("The two passwords differ.")
    if error or errors:
        return render(request, "portal/reset.html", {"customer": None, "title": "Choose a password", "token": token,
                                                     "email": email, "error": error, "errors": errors},
                      status_code=400 if error else 422)
    hashed = hash_password(password)
    with sessions.begin() as session:
        owner = session.exec(select(Customer).where(Customer.email == email)).one()
        customer = crm.surviving(session=session, customer_id=owner.id)
        # The link names the address's own row; changing its hash too is what makes the link single-use.
        for row in {owner.id: owner, customer.id: customer}.values():
            row.password_hash = hashed
            row.session_epoch += 1  # whoever was signed in before the new password is signed out
            session.add(row)
    _sign_in(request, sessions, customer, how="mailed link")
    return RedirectResponse("/portal/concerns", status_code=303)


# ---- help articles -------------------------------------------------------------------------------


# A help search answer must cover the question better than a word in passing (see `match_score`).
MIN_HELP_SCORE = 0.2


@router.get("/kb")
def knowledge(request: Request, sessions: SessionsDep, customer: MaybeCustomer, q: str = "", subject: str = "",
              category: str = ""):
    """The help centre: search, browse by category, popular articles; htmx gets the search results alone
    (`subject` comes from the new-concern form)."""
    q = (q or subject).strip()[:200]
    category = category.strip()[:60]
    with sessions.begin() as session:
        hits = search_articles(session=session, query=q, limit=8, min_score=MIN_HELP_SCORE) if q else []
        browse = {"categories": [(c, category_label(c), n) for c, n in published_categories(session=session)],
                  "popular": [] if q or category else popular_articles(session=session, limit=5),
                  "in_category": published_in(session=session, category=category) if category else [],
                  "category": category, "category_title": category_label(category)}
    # Suggestions beside the new-concern form open in a new tab, so the half-written concern is not lost.
    context = {"customer": customer, "title": "Help centre", "q": q, "hits": hits, "new_tab": bool(subject), **browse}
    if is_htmx(request) and request.headers.get("HX-Boosted") != "true":
        return render(request, "portal/_kb_results.html", context)
    return render(request, "portal/kb.html", context)


def _vote_of(request: Request, article_id: int) -> bool | None:
    """This visitor's earlier answer to "was this helpful?" for the article (kept in their session)."""
    vote = (request.session.get("kb_votes") or {}).get(str(article_id))
    return None if vote is None else vote == "yes"


@router.get("/kb/{article_id}")
def article(article_id: int, request: Request, sessions: SessionsDep, customer: MaybeCustomer):
    """A published help article (the e-level's answers link here), with "was this helpful?"."""
    with sessions.begin() as session:
        found = get_article(session=session, article_id=article_id)
        if found is None or found.status != "published":
            raise HTTPException(404, "no such help article")
        record_view(session=session, article_id=article_id)
    return render(request, "portal/article.html", {"customer": customer, "title": found.title, "article": found,
                                                   "body_html": render_markdown(found.body),
                                                   "ask": quote(found.title), "vote": _vote_of(request, article_id),
                                                   "category_title": category_label(found.category)})


@router.post("/kb/{article_id}/helpful")
async def helpful(article_id: int, request: Request, sessions: SessionsDep, customer: MaybeCustomer):
    """Answer "was this helpful?" once per visitor (a second answer replaces the first); counted per article."""
    form = await request.form()
    answer = str(form.get("helpful", ""))
    if answer not in ("yes", "no"):
        raise HTTPException(422, "answer yes or no")
    with sessions.begin() as session:
        found = get_article(session=session, article_id=article_id)
        if found is None or found.status != "published":
            raise HTTPException(404, "no such help article")
        record_vote(session=session, article_id=article_id, helpful=answer == "yes",
                    previous=_vote_of(request, article_id))
    request.session["kb_votes"] = {**(request.session.get("kb_votes") or {}), str(article_id): answer}
    context = {"customer": customer, "article": found, "vote": answer == "yes", "ask": quote(found.title)}
    if is_htmx(request) and request.headers.get("HX-Boosted") != "true":
        return render(request, "portal/_helpful.html", context)
    return RedirectResponse(f"/portal/kb/{article_id}#helpful", status_code=303)
