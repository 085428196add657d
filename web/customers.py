"""Staff pages of the customer record: search, the customer page with one timeline, merges, calls, the mailbox."""

from __future__ import annotations

import re
import secrets
from typing import Annotated
from urllib.parse import quote

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import or_
from sqlmodel import col, select

from api.customers import EDITORS, VIEWERS, CallIn, current_customer, log_call
from api.deps import IntakeDep, Principal, SessionsDep, get_principal
from registry import customers as crm
from registry.attachments import Attachment, attachments_by_interaction, attachments_of_raw_mail, file_data
from registry.mailbox import RawMail, list_raw_mail
from registry.models import Customer, Organisation, OutboxMail
from registry.outbox import carries_sign_in_link, delivery_state
from registry.ratings import Rating
from registry.types import row_id, utcnow
from web.csrf import verify_csrf
from web.portal_concerns import attachment_response, text_html
from web.templating import render

router = APIRouter(prefix="/customers", tags=["customers"], include_in_schema=False,
                   dependencies=[Depends(verify_csrf)])

# The agent workspace's concern page (issue 5); the customer page links every concern there.
CONCERN_PAGE = "/concerns/{}"
# Rows the workflow writes about itself rather than anything a person said or did; one toggle hides them.
SYSTEM_KINDS = frozenset({"step", "decided", "automated", "bounded", "opened", "closed", "team_notice", "clock"})
NOTICES = {"saved": "Profile saved.", "merged": "Records merged; the timelines are one now.",
           "call_opened": "Call logged as a new concern.", "call_added": "Call added to the concern."}


def _staff(roles: tuple[str, ...]):
    async def check(request: Request, principal: Annotated[Principal | None, Depends(get_principal)]) -> Principal:
        if principal is None:
            raise HTTPException(303, "sign in first", headers={"Location": f"/login?next={quote(request.url.path)}"})
        if principal.role not in roles:
            raise HTTPException(403, f"customer records are for staff with one of the roles: {', '.join(roles)}")
        request.state.principal = principal  # the page header shows who is signed in
        return principal

    return Depends(check)


Viewer = Annotated[Principal, _staff(VIEWERS)]
Editor = Annotated[Principal, _staff(EDITORS)]


@router.get("")
def index(request: Request, sessions: SessionsDep, staff: Viewer, q: str = ""):
    """Find a customer by e-mail, phone or name; log a call for someone new."""
    with sessions.begin() as session:
        found = crm.search_customers(session=session, query=q[:200], limit=50)
    return render(request, "customers/index.html", {"q": q, "found": found, "errors": [], "values": {},
                                                    "can_edit": staff.role in EDITORS,
                                                    "form_token": secrets.token_urlsafe(12)})


def _call_from_form(form) -> CallIn:
    data = {k: str(form.get(k, "")).strip() for k in ("channel", "text", "subject", "concern_id", "category")}
    data = {k: v for k, v in data.items() if v or k in ("channel", "text")}
    return CallIn.model_validate(data)


def _form_errors(err: ValidationError) -> list[str]:
    return [f"{'/'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in err.errors()]


@router.post("/calls")
async def log_call_for_anyone(request: Request, sessions: SessionsDep, intake: IntakeDep, staff: Editor):
    """Log a call or visit for a customer found by e-mail or phone, or created on the spot."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("email", "phone", "name", "channel", "subject", "text")}
    errors = [] if values["email"] or values["phone"] else ["Give the customer's e-mail address or phone number."]
    try:
        call = _call_from_form(form)
        if values["email"]:
            values["email"] = validate_email(values["email"], check_deliverability=False).normalized
    except ValidationError as err:
        errors += _form_errors(err)
    except EmailNotValidError as err:
        errors.append(f"That e-mail address is not valid: {err}")
    if values["phone"] and not crm.normalise_phone(values["phone"]):
        errors.append("That phone number has no digits.")
    if not errors:
        with sessions.begin() as session:
            customer, _ = crm.find_or_create_customer(session=session, email=values["email"] or None,
                                                      phone=values["phone"] or None, name=values["name"])
            customer_id = customer.id
        try:
            logged = await log_call(intake, customer_id=customer_id, call=call, agent=staff,
                                    idempotency_key=str(form.get("form_token", ""))[:100] or None)
        except HTTPException as err:
            errors.append(str(err.detail))
    if errors:
        with sessions.begin() as session:
            found = crm.search_customers(session=session, query="", limit=20)
        return render(request, "customers/index.html", {"q": "", "found": found, "errors": errors, "values": values,
                                                        "can_edit": True, "form_token": secrets.token_urlsafe(12)},
                      status_code=422)
    done = "call_opened" if logged.opened else "call_added"
    return RedirectResponse(f"/customers/{customer_id}?done={done}&concern={logged.concern_id}", status_code=303)


@router.get("/mail")
def mailbox(request: Request, sessions: SessionsDep, staff: Viewer, all: bool = False):
    """Inbound mail that needs a look: set aside, ignored as machine mail, or with parsing problems."""
    with sessions.begin() as session:
        rows = list_raw_mail(session=session, limit=200) if all else list_raw_mail(
            session=session, with_problems=True, limit=200)
        ignored = list_raw_mail(session=session, statuses=("ignored",), limit=50) if not all else []
    return render(request, "customers/mailbox.html", {"rows": rows, "ignored": ignored, "all": all})


@router.get("/mail/{raw_mail_id}")
def raw_mail(raw_mail_id: int, request: Request, sessions: SessionsDep, staff: Viewer):
    """One inbound mail exactly as received (shown as text, never rendered), with its problems and files."""
    with sessions.begin() as session:
        row = session.get(RawMail, raw_mail_id)
        if row is None:
            raise HTTPException(404, f"no inbound mail {raw_mail_id}")
        raw = file_data(session=session, sha256=row.sha256)
        files = attachments_of_raw_mail(session=session, raw_mail_id=row.id)
    shown = raw[:200_000].decode("utf-8", "replace")
    return render(request, "customers/raw_mail.html", {"row": row, "raw_text": shown, "files": files,
                                                      "cut": len(raw) > 200_000})


@router.get("/mail/{raw_mail_id}/message.eml")
def raw_mail_download(raw_mail_id: int, sessions: SessionsDep, staff: Viewer):
    """The inbound mail's bytes, to open in a mail program."""
    with sessions.begin() as session:
        row = session.get(RawMail, raw_mail_id)
        if row is None:
            raise HTTPException(404, f"no inbound mail {raw_mail_id}")
        data = file_data(session=session, sha256=row.sha256)
    return Response(data, media_type="message/rfc822", headers={
        "Content-Disposition": f'attachment; filename="mail-{raw_mail_id}.eml"', "X-Content-Type-Options": "nosniff"})


@router.get("/attachments/{attachment_id}")
def attachment(attachment_id: int, sessions: SessionsDep, staff: Viewer):
    """A file a customer sent, as a download."""
    with sessions.begin() as session:
        row = session.get(Attachment, attachment_id)
        if row is None:
            raise HTTPException(404, f"no attachment {attachment_id}")
        data = file_data(session=session, sha256=row.sha256)
    return attachment_response(row, data)


def _outbox_rows(mails: list[OutboxMail], relay: bool) -> list[dict]:
    rows = []
    for m in mails:
        text, state = delivery_state(m, relay=relay)
        rows.append({"mail": m, "state_text": text, "state": state, "guarded": carries_sign_in_link(m)})
    return rows


def _detail_context(session, customer: Customer, *, relay: bool) -> dict:
    ids = crm.merged_ids(session=session, customer_id=customer.id)
    concerns = crm.customer_concerns(session=session, customer_ids=ids)
    subjects = {c.id: c.subject for c in concerns}
    files = attachments_by_interaction(session=session, concern_ids=subjects)
    timeline = [{"row": i, "body_html": text_html(i.body), "files": files.get(i.id, []),
                 "subject": subjects.get(i.concern_id or "")}
                for i in crm.customer_timeline(session=session, customer_ids=ids)]
    organisation = session.get(Organisation, customer.organisation_id) if customer.organisation_id else None
    members = [m for m in crm.organisation_members(session=session, organisation_id=organisation.id)
               if m.id != customer.id] if organisation else []
    ratings = {r.concern_id: r for r in session.exec(select(Rating).where(col(Rating.customer_id).in_(ids)))}
    return {
        "customer": customer, "organisation": organisation, "members": members, "concerns": concerns,
        "timeline": timeline, "ratings": ratings, "tiers": crm.TIERS, "concern_page": CONCERN_PAGE,
        "merged": [session.get(Customer, i) for i in ids if i != customer.id],
        "mails": list_raw_mail(session=session, customer_ids=ids, statuses=("ignored", "stored", "received"),
                               limit=50),
        "outbox": _outbox_rows(list(session.exec(select(OutboxMail).where(
            or_(col(OutboxMail.concern_id).in_(list(subjects)), OutboxMail.to_address == (customer.email or "")))
            .order_by(col(OutboxMail.id).desc()).limit(50))), relay),
        "open_concerns": [c for c in concerns if c.status != "closed"], "errors": [], "values": {},
        "form_token": secrets.token_urlsafe(12),
    }


def _relay(request: Request) -> bool:
    return request.app.state.settings.relay_host is not None


def is_system(row) -> bool:
    """Whether a timeline row is the workflow's own bookkeeping (a step entered, a decision, automation)."""
    return row.direction == "internal" and row.kind in SYSTEM_KINDS


@router.get("/{customer_id:int}")
def customer_page(customer_id: int, request: Request, sessions: SessionsDep, staff: Viewer,
                  done: str = "", concern: str = "", system: str = ""):
    """Profile, organisation, tier, preferences, concerns and every interaction on every channel, newest first.

    `system=hide` leaves out the workflow's own rows (steps, decisions, automation), with or without htmx."""
    with sessions.begin() as session:
        customer = current_customer(session, customer_id)
        if customer.id != customer_id:
            return RedirectResponse(f"/customers/{customer.id}", status_code=303)
        context = _detail_context(session, customer, relay=_relay(request))
    notice = NOTICES.get(done)
    concern = concern if re.fullmatch(r"CCR-[0-9A-Z]{8}", concern) else ""
    hide = system == "hide"
    hidden = sum(1 for e in context["timeline"] if is_system(e["row"]))
    if hide:
        context["timeline"] = [e for e in context["timeline"] if not is_system(e["row"])]
    return render(request, "customers/detail.html", {**context, "notice": notice, "notice_concern": concern,
                                                     "can_edit": staff.role in EDITORS, "now": utcnow(),
                                                     "hide_system": hide, "system_rows": hidden})


async def _detail_error(request, sessions, customer_id: int, errors: list[str], values: dict, status_code: int):
    with sessions.begin() as session:
        context = _detail_context(session, current_customer(session, customer_id), relay=_relay(request))
    return render(request, "customers/detail.html", {**context, "errors": errors, "values": values, "notice": None,
                                                     "can_edit": True, "now": utcnow(), "hide_system": False,
                                                     "system_rows": 0}, status_code=status_code)


@router.post("/{customer_id:int}/profile")
async def save_profile(customer_id: int, request: Request, sessions: SessionsDep, staff: Editor):
    """Change tier, organisation and preferences."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("tier", "organisation", "contact_channel", "name")}
    preferences = {"organisation_access": form.get("organisation_access") == "on",
                   "contact_channel": values["contact_channel"] or None}
    try:
        with sessions.begin() as session:
            customer = current_customer(session, customer_id)
            crm.update_customer(session=session, customer=customer, name=values["name"] or None,
                                tier=values["tier"] or None, organisation=values["organisation"],
                                preferences=preferences)
    except ValueError as err:
        return await _detail_error(request, sessions, customer_id, [str(err)], values, 422)
    return RedirectResponse(f"/customers/{customer_id}?done=saved", status_code=303)


@router.post("/{customer_id:int}/merge")
async def merge(customer_id: int, request: Request, sessions: SessionsDep, staff: Editor):
    """Merge a duplicate record (by its number or e-mail) into this customer."""
    form = await request.form()
    other = str(form.get("duplicate", "")).strip()
    try:
        with sessions.begin() as session:
            duplicate = session.get(Customer, row_id(other)) if row_id(other) is not None else crm.find_customer(
                session=session, email=other, phone=other)
            if duplicate is None:
                raise LookupError(f"no customer {other!r}; give the duplicate's number, e-mail or phone")
            crm.merge_customers(session=session, keep_id=customer_id, duplicate_id=duplicate.id,
                                by=staff.name or staff.email or f"user {staff.id}")
    except LookupError as err:
        return await _detail_error(request, sessions, customer_id, [str(err)], {"duplicate": other}, 404)
    except crm.MergeRefused as err:
        return await _detail_error(request, sessions, customer_id, [str(err)], {"duplicate": other}, 409)
    return RedirectResponse(f"/customers/{customer_id}?done=merged", status_code=303)


@router.post("/{customer_id:int}/calls")
async def log_call_page(customer_id: int, request: Request, sessions: SessionsDep, intake: IntakeDep, staff: Editor):
    """Log a phone call or walk-in visit on a concern of this customer's, or as a new concern."""
    form = await request.form()
    try:
        call = _call_from_form(form)
    except ValidationError as err:
        values = {k: str(form.get(k, "")) for k in ("channel", "text", "subject", "concern_id")}
        return await _detail_error(request, sessions, customer_id, _form_errors(err), values, 422)
    try:
        logged = await log_call(intake, customer_id=customer_id, call=call, agent=staff,
                                idempotency_key=str(form.get("form_token", ""))[:100] or None)
    except HTTPException as err:
        values = {k: str(form.get(k, "")) for k in ("channel", "text", "subject", "concern_id")}
        return await _detail_error(request, sessions, customer_id, [str(err.detail)], values, err.status_code)
    done = "call_opened" if logged.opened else "call_added"
    return RedirectResponse(f"/customers/{customer_id}?done={done}&concern={logged.concern_id}", status_code=303)
