"""The outbox for staff: every mail to customers, newest first, each one opened with its headers, body and state.

In the embedded set-up there is no relay and the outbox is where mail ends up, so this is also where an
admin finds a new customer's sign-up link. Mails that carry such a link open for admins only, and each
opening is logged and shown on the page."""

from __future__ import annotations

import logging
from typing import Annotated

import nh3
from fastapi import APIRouter, HTTPException, Request

from api.customers import VIEWERS
from api.deps import Principal, SessionsDep, SettingsDep
from registry.models import OutboxMail
from registry.outbox import carries_sign_in_link, delivery_state, list_outbox
from registry.types import utcnow
from web.customers import _staff
from web.templating import render

router = APIRouter(prefix="/customers/outbox", tags=["customers"], include_in_schema=False)
log = logging.getLogger("ccr.outbox")

Viewer = Annotated[Principal, _staff(VIEWERS)]
PAGE = 100


def _row(mail: OutboxMail, relay: bool) -> dict:
    text, state = delivery_state(mail, relay=relay)
    return {"mail": mail, "state_text": text, "state": state, "guarded": carries_sign_in_link(mail)}


@router.get("")
def outbox(request: Request, sessions: SessionsDep, settings: SettingsDep, staff: Viewer, to: str = "",
           before: int | None = None):
    """Every outbound mail, newest first, optionally to one recipient."""
    to = to.strip()[:320]
    with sessions.read() as session:
        mails = list_outbox(session=session, recipient=to, limit=PAGE + 1, before=before)
    relay = settings.relay_host is not None
    rows = [_row(m, relay) for m in mails[:PAGE]]
    return render(request, "customers/outbox.html", {
        "rows": rows, "to": to, "relay": relay, "title": "Outbox",
        "older": mails[PAGE - 1].id if len(mails) > PAGE else None})


@router.get("/{mail_id:int}")
def outbox_mail(mail_id: int, request: Request, sessions: SessionsDep, settings: SettingsDep, staff: Viewer):
    """One outbound mail: headers, state, attempts, errors, and its text and HTML (for sign-in links, admins only)."""
    with sessions.read() as session:
        mail = session.get(OutboxMail, mail_id)
    if mail is None:
        raise HTTPException(404, f"no outbound mail {mail_id}")
    row = _row(mail, settings.relay_host is not None)
    shown = not row["guarded"] or staff.role == "admin"
    opened_at = None
    if row["guarded"] and shown:
        opened_at = utcnow()
        log.warning("outbox mail %s to %s, which carries a sign-in link, opened by %s (user %s)", mail.id,
                    mail.to_address, staff.email, staff.id)
    # The HTML part is shown cleaned: tags and attributes from nh3's safe list only, links to the web and mail.
    html = nh3.clean(mail.html, url_schemes={"http", "https", "mailto"},
                     clean_content_tags={"script", "style", "title"}) if shown and mail.html else ""
    return render(request, "customers/outbox_mail.html", {
        **row, "shown": shown, "html": html, "opened_at": opened_at, "title": f"Mail {mail.id}",
        "from_address": settings.support_address})
