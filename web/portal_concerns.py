"""Customer portal: my concerns, opening one with attachments, its public history, replies, confirmation and rating."""

from __future__ import annotations

import re
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup, escape
from sqlmodel import Session, col, delete, select
from starlette.datastructures import UploadFile

from api.customers import rate_concern
from api.deps import IntakeDep, Principal, SessionsDep, SettingsDep, get_principal
from api.intake import IntakeError
from api.mail_in import DEFAULT_ALLOWED, FORBIDDEN_EXTENSIONS
from registry import customers as crm
from registry.attachments import (
    Attachment, UploadRefused, add_attachment, attachments_by_interaction, check_upload, file_data, link_attachments,
)
from registry.db import Sessions
from registry.expectations import answer_promise
from registry.handover import is_pending
from registry.models import Concern, Customer, Interaction, OutboxMail
from registry.ratings import AlreadyRated, rating_of
from registry.settings import Settings
from registry.sop_store import list_latest
from registry.types import utcnow
from web.templating import is_htmx, render

router = APIRouter()

MAX_FILES = 10
STATUS_TEXT = {"new": "Received", "open": "In progress", "waiting_customer": "Waiting for your answer",
               "resolved": "Resolved", "closed": "Closed"}
LABELS = {"customer_message": "You wrote", "reply": "Customer Care replied", "question": "Customer Care asked you",
          "resolution": "Customer Care resolved it", "automated_answer": "Automatic answer",
          "notice": "Message from Customer Care", "rating": "Your rating"}
# Messages the SOP sends from a template are labelled by what they are to the customer.
TEMPLATE_LABELS = {"kb_answer": "Suggested answer", "password_reset": "Signing in", "ask_details": "Customer Care asked you",
                   "acknowledge": "We received your request", "complaint_received": "We received your complaint",
                   "resolution": "Customer Care resolved it"}
# Templates whose message proposes an answer, which the customer confirms with the page's buttons.
PROPOSALS = frozenset({"kb_answer", "password_reset", "resolution"})
DEFAULT_TEXT = {"solved": "This solved it.", "not_solved": "It did not solve it.",
                "human": "I would like to talk to a person."}
URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def portal_customer(sessions: SessionsDep,
                    principal: Annotated[Principal | None, Depends(get_principal)]) -> Customer | None:
    """The signed-in customer (following merges), or None; whether the session still holds is decided once,
    where the caller is resolved (`api.deps.load_caller`)."""
    if principal is None or principal.kind != "customer":
        return None
    with sessions.begin() as session:
        return crm.surviving(session=session, customer_id=principal.id)


def signed_in(request: Request, customer: Annotated[Customer | None, Depends(portal_customer)]) -> Customer:
    """The signed-in customer; anyone else is sent to the sign-in page and brought back afterwards."""
    if customer is None:
        target = request.url.path if request.method == "GET" else "/portal/concerns"
        raise HTTPException(303, "sign in first", headers={"Location": f"/portal/login?next={target}"})
    return customer


SignedIn = Annotated[Customer, Depends(signed_in)]


def refuse_oversized(request: Request) -> None:
    """Refuse a request body larger than a whole mail may be, before any of it is parsed or spooled."""
    limit = request.app.state.settings.max_message_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise HTTPException(413, f"the upload has {int(length):,} bytes; all files together may have {limit:,}")


def text_html(text: str) -> Markup:
    """Escaped text with line breaks kept and web links clickable."""
    parts, last = [], 0
    for match in URL.finditer(text or ""):
        parts += [escape(text[last:match.start()]),
                  Markup('<a href="{0}" rel="noopener noreferrer nofollow">{0}</a>').format(match.group(0))]
        last = match.end()
    parts.append(escape((text or "")[last:]))
    return Markup("").join(parts).replace("\n", Markup("<br>\n"))


def categories(session: Session) -> list[str]:
    """The categories customers may choose: those the published SOPs apply to."""
    found = {c for row in list_latest(session=session) for c in (row.definition.get("applies_to") or {}).get(
        "categories") or []}
    return sorted(found)


def _visible(session: Session, customer: Customer, concern_id: str) -> tuple[Concern, bool]:
    """The concern and whether it is the customer's own; 404 for anyone else's, so ids are not confirmed."""
    concern = session.get(Concern, concern_id)
    if concern is None or concern.customer_id not in crm.visible_customer_ids(session=session, customer=customer):
        raise HTTPException(404, f"no concern {concern_id}")
    return concern, concern.customer_id in crm.merged_ids(session=session, customer_id=customer.id)


# ---- attachments ------------------------------------------------------------------------------------


async def read_uploads(form, settings: Settings) -> tuple[list[tuple[str, str, bytes]], list[str]]:
    """The acceptable files of a form, and a reason for each refused one."""
    files = [f for f in form.getlist("attachments") if isinstance(f, UploadFile) and f.filename]
    if len(files) > MAX_FILES:
        return [], [f"Attach at most {MAX_FILES} files."]
    accepted, errors = [], []
    for upload in files:
        data = await upload.read(settings.max_attachment_bytes + 1)
        size = max(len(data), upload.size or 0)
        try:
            name, content_type = check_upload(upload.filename, upload.content_type, size,
                                              max_bytes=settings.max_attachment_bytes, allowed_types=DEFAULT_ALLOWED,
                                              forbidden_extensions=FORBIDDEN_EXTENSIONS)
        except UploadRefused as refused:
            errors.append(str(refused))
        else:
            accepted.append((name, content_type, data))
    return accepted, errors


def _store(sessions: Sessions, customer_id: int, uploads: list[tuple[str, str, bytes]]) -> list[dict]:
    with sessions.begin() as session:
        rows = [add_attachment(session=session, data=data, filename=name, content_type=ctype, channel="web",
                               customer_id=customer_id) for name, ctype, data in uploads]
        return [{"id": r.id, "filename": r.filename, "size": r.size, "content_type": r.content_type} for r in rows]


def _discard(sessions: Sessions, stored: list[dict]) -> None:
    if stored:
        with sessions.begin() as session:
            session.exec(delete(Attachment).where(col(Attachment.id).in_([a["id"] for a in stored])))


# ---- pages ------------------------------------------------------------------------------------------


@router.get("/concerns")
def my_concerns(request: Request, sessions: SessionsDep, customer: SignedIn):
    """My concerns (and my organisation's, when allowed), newest first."""
    with sessions.begin() as session:
        own = set(crm.merged_ids(session=session, customer_id=customer.id))
        ids = crm.visible_customer_ids(session=session, customer=customer)
        rows = crm.customer_concerns(session=session, customer_ids=ids)
        names = {c.id: c.name or c.email for c in session.exec(select(Customer).where(col(Customer.id).in_(ids)))}
    items = [{"concern": c, "status": STATUS_TEXT.get(c.status, c.status),
              "colleague": None if c.customer_id in own else names.get(c.customer_id)} for c in rows]
    return render(request, "portal/concerns.html", {"customer": customer, "title": "My concerns", "items": items})


def _new_form(request, session, customer, *, values=None, errors=(), status_code=200):
    values = values or {}
    return render(request, "portal/new_concern.html", {
        "customer": customer, "title": "New concern", "categories": categories(session), "values": values,
        "errors": list(errors), "form_token": values.get("form_token") or secrets.token_urlsafe(16),
        "hits": [], "max_mb": request.app.state.settings.max_attachment_bytes / 1024 / 1024,
    }, status_code=status_code)


@router.get("/concerns/new")
def new_concern_page(request: Request, sessions: SessionsDep, customer: SignedIn, q: str = ""):
    """The form to open a concern, with help articles to try first."""
    with sessions.begin() as session:
        return _new_form(request, session, customer, values={"subject": q.strip()[:300]})


@router.post("/concerns/new")
async def open_concern(request: Request, sessions: SessionsDep, settings: SettingsDep, intake: IntakeDep,
                       customer: SignedIn):
    """Open a concern; everything is checked before anything is stored, and a resubmitted form opens nothing new."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("subject", "body", "category", "form_token")}
    with sessions.begin() as session:
        known = categories(session)
    errors = []
    if not values["subject"] or len(values["subject"]) > 300:
        errors.append("Give a subject of 1 to 300 characters.")
    if not values["body"] or len(values["body"]) > 100_000:
        errors.append("Describe your concern (up to 100,000 characters).")
    if values["category"] and values["category"] not in known:
        errors.append("Choose one of the listed categories.")
    uploads, refused = await read_uploads(form, settings)
    errors += refused
    if errors:
        with sessions.begin() as session:
            return _new_form(request, session, customer, values=values, errors=errors, status_code=422)
    token = values["form_token"] if re.fullmatch(r"[\w-]{16,64}", values["form_token"]) else None
    stored = _store(sessions, customer.id, uploads)
    try:
        concern = await intake.open(
            email=customer.email, phone=None if customer.email else customer.phone, name=customer.name,
            subject=values["subject"], body=values["body"], channel="web", category=values["category"] or None,
            idempotency_key=f"portal:{customer.id}:{token}" if token else None,
            meta={"attachments": stored, "signed_in": True})
    except IntakeError as err:
        _discard(sessions, stored)
        with sessions.begin() as session:
            return _new_form(request, session, customer, values=values, errors=[err.detail],
                             status_code=err.status)
    with sessions.begin() as session:
        first = session.exec(select(Interaction).where(Interaction.concern_id == concern.id)
                             .order_by(Interaction.id)).first()
        already = session.exec(select(Attachment).where(Attachment.interaction_id == first.id)).first()
    if already is not None:  # the same form sent twice: the first submission's files are the ones kept
        _discard(sessions, stored)
    else:
        with sessions.begin() as session:
            link_attachments(session=session, ids=[a["id"] for a in stored], customer_id=concern.customer_id,
                             concern_id=concern.id, interaction_id=first.id)
    return RedirectResponse(f"/portal/concerns/{concern.id}", status_code=303)


def _sent_by_sop(row: Interaction) -> bool:
    return row.direction == "out" and (not row.author or row.author == "e-level")


def _template_of(row: Interaction) -> str | None:
    """The mail template an SOP-sent entry went out with (older rows name it only in the staff text)."""
    if row.meta.get("template"):
        return row.meta["template"]
    found = re.fullmatch(r"(?:Asked the customer|Waiting for the customer) \((\w+)\)|Sent '(\w+)' to the customer",
                         row.body or "")
    return next((g for g in found.groups() if g), None) if found else None


def _mailed_message(mail_text: str) -> str:
    """The message of a mail from before the portal kept its own text: without greeting, sign-off and footer."""
    from activities.mail_out import split_salutations

    return split_salutations(mail_text.split("\n-- \n")[0])[1]


def _history(session: Session, concern: Concern) -> list[dict]:
    """The public history as the customer reads it: what they sent and the desk's messages in the desk's words,
    each once; never internal notes or the staff's record of what was sent."""
    rows = [i for i in session.exec(select(Interaction).where(Interaction.concern_id == concern.id)
                                    .order_by(Interaction.created_at, Interaction.id)) if i.direction in ("in", "out")]
    files = attachments_by_interaction(session=session, concern_ids=[concern.id])
    mails = {m.seq: m.text for m in session.exec(select(OutboxMail).where(OutboxMail.concern_id == concern.id))}
    entries = []
    for index, row in enumerate(rows):
        if row.kind == "survey":
            continue  # the page itself asks for the rating (or thanks for it)
        later = rows[index + 1] if index + 1 < len(rows) else None
        if (row.kind == "automated_answer" and later is not None and later.kind == "question"
                and _sent_by_sop(later) and "portal_text" in later.meta):
            continue  # the answer went out inside the question that follows: one entry, the question's
        body, template = row.body, None
        if _sent_by_sop(row):
            template = _template_of(row)
            if row.kind == "notice" and template == "resolution" and entries and entries[-1]["row"].kind == "resolution":
                continue  # the SOP's resolution notice after the agent's own resolution says nothing new
            if "portal_text" in row.meta:
                body = row.meta["portal_text"]
            elif row.seq in mails and row.kind != "automated_answer":
                body = _mailed_message(mails[row.seq])
        if row.kind == "rating":
            scores = f"Satisfaction {row.meta.get('csat')}/5" + (
                f", likely to recommend {row.meta.get('nps')}/10" if row.meta.get("nps") is not None else "")
            body = f"{scores}\n{body}".strip()
        label = TEMPLATE_LABELS.get(template or "") or LABELS.get(
            row.kind, "Customer Care" if row.direction == "out" else "You wrote")
        if row.kind == "question" and template in ("kb_answer", "resolution"):
            label = "Suggested answer"
        if row.kind == "customer_message" and row.meta.get("logged_by"):
            label = f"You told us ({row.channel.replace('_', '-')}, noted by {row.meta['logged_by']})"
        entries.append({"row": row, "label": label, "body_html": text_html(body), "files": files.get(row.id, []),
                        "mine": row.direction == "in", "template": template,
                        "author": row.author if row.direction == "out" and not _sent_by_sop(row) else ""})
    return entries


def _proposed(history: list[dict]) -> bool:
    """Whether the desk's latest message proposes an answer (an automatic answer, or a resolution) that the
    customer has not yet confirmed or rejected."""
    for entry in reversed(history):
        row = entry["row"]
        if row.kind == "customer_message":
            return False
        if row.direction == "out":
            return row.kind in ("automated_answer", "resolution") or entry["template"] in PROPOSALS
    return False


def _asked_for_person(history: list[dict]) -> bool:
    """Whether the customer asked for a person and nobody from the desk has written since."""
    for entry in reversed(history):
        row = entry["row"]
        if row.direction == "out" and row.kind in ("reply", "question", "resolution") and row.author != "e-level":
            return False
        if row.kind == "customer_message" and row.meta.get("intent") == "human":
            return True
    return False


def calendar_zone(catalog, policy_id: str | None) -> str:
    """The time zone of the business calendar a concern's SLA policy counts in (UTC when unknown)."""
    policy = catalog.policies.get(policy_id or "") if catalog is not None else None
    calendar = catalog.calendars.get(policy.calendar) if policy is not None else None
    return calendar.timezone if calendar is not None else "UTC"


def _promise(request: Request, concern: Concern) -> str | None:
    """When the customer can expect our answer, from the concern's response clocks; None when none is owed."""
    if concern.status not in ("new", "open"):
        return None
    zone = calendar_zone(getattr(request.app.state, "catalog", None), concern.sla_policy)
    return answer_promise(concern.clocks or [], utcnow(), zone)


def _page_context(request: Request, session: Session, customer: Customer, concern: Concern, own: bool) -> dict:
    rating = rating_of(session=session, concern_id=concern.id)
    history = _history(session, concern)
    return {"promise": _promise(request, concern),
        "customer": customer, "title": f"{concern.id}: {concern.subject}", "concern": concern, "own": own,
        "status": STATUS_TEXT.get(concern.status, concern.status), "history": history,
        "rating": rating, "can_write": own and concern.status != "closed",
        "can_confirm": own and concern.status in ("open", "waiting_customer", "resolved") and rating is None
        and _proposed(history),
        "can_rate": own and concern.status == "resolved" and rating is None, "errors": [], "values": {},
        "asked_person": _asked_for_person(history),
        "pending": own and is_pending(session=session, concern_id=concern.id),
    }


@router.get("/concerns/{concern_id}")
def concern_page(concern_id: str, request: Request, sessions: SessionsDep, customer: SignedIn, seen: str = ""):
    """A concern and its public history; htmx polls the history, and a status change reloads the page."""
    with sessions.begin() as session:
        concern, own = _visible(session, customer, concern_id)
        context = _page_context(request, session, customer, concern, own)
    if is_htmx(request) and request.headers.get("HX-Boosted") != "true":
        if seen and seen != concern.status:
            return Response(status_code=204, headers={"HX-Refresh": "true", "Vary": "HX-Request"})
        return render(request, "portal/_history.html", context)
    return render(request, "portal/concern.html", context)


async def _rerender(request, sessions, customer, concern_id, errors, values, status_code):
    with sessions.begin() as session:
        concern, own = _visible(session, customer, concern_id)
        context = {**_page_context(request, session, customer, concern, own), "errors": errors, "values": values}
    return render(request, "portal/concern.html", context, status_code=status_code)


@router.post("/concerns/{concern_id}/messages")
async def post_message(concern_id: str, request: Request, sessions: SessionsDep, settings: SettingsDep,
                       intake: IntakeDep, customer: SignedIn):
    """Reply, answer the desk's question, or say whether the answer solved it."""
    with sessions.begin() as session:
        concern, own = _visible(session, customer, concern_id)
    if not own:
        raise HTTPException(403, "only the customer who opened this concern can write to it")
    form = await request.form()
    intent = str(form.get("intent", "message"))
    text = str(form.get("text", "")).strip()
    errors = [] if intent in ("message", "solved", "not_solved", "human") else ["Unknown action."]
    text = text or DEFAULT_TEXT.get(intent, "")
    if not text:
        errors.append("Write a message first.")
    elif len(text) > 100_000:
        errors.append("The message is too long (up to 100,000 characters).")
    uploads, refused = await read_uploads(form, settings)
    errors += refused
    if errors:
        return await _rerender(request, sessions, customer, concern_id, errors, {"text": text}, 422)
    stored = _store(sessions, customer.id, uploads)
    try:
        row, _ = await intake.message(concern_id=concern.id, text=text, channel="web",
                                      author=customer.name or customer.email or "customer", intent=intent,
                                      meta={"attachments": stored} if stored else None)
    except IntakeError as err:
        _discard(sessions, stored)
        return await _rerender(request, sessions, customer, concern_id, [err.detail], {"text": text}, err.status)
    with sessions.begin() as session:
        link_attachments(session=session, ids=[a["id"] for a in stored], customer_id=concern.customer_id,
                         concern_id=concern.id, interaction_id=row.id)
    return RedirectResponse(f"/portal/concerns/{concern.id}#latest", status_code=303)


@router.post("/concerns/{concern_id}/rating")
async def rate(concern_id: str, request: Request, sessions: SessionsDep, intake: IntakeDep, customer: SignedIn):
    """Rate the service once: CSAT 1-5, NPS 0-10 and a comment."""
    with sessions.begin() as session:
        concern, own = _visible(session, customer, concern_id)
    if not own:
        raise HTTPException(403, "only the customer who opened this concern can rate it")
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("csat", "nps", "comment")}
    errors = []
    csat = int(values["csat"]) if values["csat"] in {"1", "2", "3", "4", "5"} else None
    nps = int(values["nps"]) if values["nps"].isdigit() and int(values["nps"]) <= 10 else None
    if csat is None:
        errors.append("Choose how satisfied you are, from 1 to 5.")
    if values["nps"] and nps is None:
        errors.append("How likely you are to recommend us is a number from 0 to 10.")
    if len(values["comment"]) > 2000:
        errors.append("Keep the comment under 2,000 characters.")
    if not errors and concern.status != "resolved":
        errors.append("You can rate the service once the concern is resolved.")
    if errors:
        return await _rerender(request, sessions, customer, concern_id, errors, values, 422)
    try:
        await rate_concern(intake, concern=concern, customer_id=customer.id, csat=csat, nps=nps,
                           comment=values["comment"])
    except AlreadyRated as err:
        return await _rerender(request, sessions, customer, concern_id, [str(err)], values, 409)
    except IntakeError as err:
        return await _rerender(request, sessions, customer, concern_id, [err.detail], values, err.status)
    return RedirectResponse(f"/portal/concerns/{concern.id}#rating", status_code=303)


@router.get("/attachments/{attachment_id}")
def download(attachment_id: int, sessions: SessionsDep, customer: SignedIn):
    """A file sent with one of my concerns, always as a download."""
    with sessions.begin() as session:
        row = session.get(Attachment, attachment_id)
        if row is None or row.concern_id is None:
            raise HTTPException(404, "no such file")
        _visible(session, customer, row.concern_id)
        data = file_data(session=session, sha256=row.sha256)
    return attachment_response(row, data)


def attachment_response(row: Attachment, data: bytes) -> Response:
    """A stored file as a download that browsers never render in our origin."""
    return Response(data, media_type=row.content_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.filename)}",
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox", "Cache-Control": "private",
    })
