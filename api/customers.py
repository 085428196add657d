"""JSON routes for the customer record (CRM): profile, timeline across channels, merges and logged calls."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlmodel import Session, select

from api.deps import DbSession, IntakeDep, Principal, require
from api.intake import Intake, IntakeError
from api.schemas import ConcernSummary, Priority, TimelineItem
from registry import customers as crm
from registry.handover import add_handover
from registry.models import Concern, Customer, Interaction, Organisation
from registry.ratings import record_rating

router = APIRouter(prefix="/api/customers", tags=["customers"])

VIEWERS = ("agent", "lead", "admin", "auditor")
EDITORS = ("agent", "lead", "admin")
Viewer = Annotated[Principal, require(*VIEWERS)]
Editor = Annotated[Principal, require(*EDITORS)]


class OrganisationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    tier: str


class CustomerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str | None
    phone: str | None
    name: str
    tier: str
    preferences: dict
    organisation_id: int | None
    merged_into_id: int | None
    created_at: datetime


class TimelineEntry(TimelineItem):
    concern_id: str | None


class CustomerDetail(CustomerPublic):
    """A customer with their organisation, every concern and every interaction on every channel, newest first."""

    organisation: OrganisationPublic | None
    merged_ids: list[int]
    concerns: list[ConcernSummary]
    timeline: list[TimelineEntry]


class CustomerFind(BaseModel):
    """Who a caller or visitor is: found by e-mail or phone, or created."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    name: str = Field(default="", max_length=200)


class CustomerUpdate(BaseModel):
    """Profile changes; `organisation: ""` removes the customer from their organisation."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    tier: Literal["standard", "gold", "platinum"] | None = None
    organisation: str | None = Field(default=None, max_length=200)
    preferences: dict | None = None


class MergeIn(BaseModel):
    """The duplicate record to fold into this one."""

    model_config = ConfigDict(extra="forbid")

    duplicate_id: int


class CallIn(BaseModel):
    """A call or visit an agent logs for the customer; without `concern_id` it opens a concern."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["phone", "walk_in"]
    text: str = Field(min_length=1, max_length=100_000)
    subject: str | None = Field(default=None, max_length=300)
    concern_id: str | None = Field(default=None, max_length=20)
    category: str | None = Field(default=None, max_length=60)
    priority: Priority | None = None


class CallLogged(BaseModel):
    concern_id: str
    interaction_id: int
    opened: bool
    follows: str | None = None


def current_customer(session: Session, customer_id: int) -> Customer:
    """The customer (or the record it was merged into); 404 when unknown."""
    customer = crm.surviving(session=session, customer_id=customer_id)
    if customer is None:
        raise HTTPException(404, f"no customer {customer_id}")
    return customer


def customer_detail(session: Session, customer: Customer) -> CustomerDetail:
    """The whole record for staff, internal notes included."""
    ids = crm.merged_ids(session=session, customer_id=customer.id)
    organisation = session.get(Organisation, customer.organisation_id) if customer.organisation_id else None
    return CustomerDetail.model_validate({
        **customer.model_dump(), "organisation": organisation, "merged_ids": ids,
        "concerns": crm.customer_concerns(session=session, customer_ids=ids),
        "timeline": crm.customer_timeline(session=session, customer_ids=ids),
    })


async def log_call(intake: Intake, *, customer_id: int, call: CallIn, agent: Principal,
                   idempotency_key: str | None = None) -> CallLogged:
    """Record what the customer said on the phone or at the desk, on a concern of theirs or a new one."""
    with intake.sessions.begin() as session:
        customer = current_customer(session, customer_id)
        if not customer.email and not customer.phone:
            raise HTTPException(422, "the customer has neither an e-mail address nor a phone number; add one first")
        concern = None
        if call.concern_id:
            concern = session.get(Concern, call.concern_id)
            ids = crm.merged_ids(session=session, customer_id=customer.id)
            if concern is None or concern.customer_id not in ids:
                raise HTTPException(404, f"customer {customer.id} has no concern {call.concern_id}")
        email, phone, name = customer.email, customer.phone, customer.name
    meta = {"logged_by": agent.name, "logged_by_id": agent.id}
    author = name or email or phone or "customer"
    try:
        if concern is not None and concern.status != "closed":
            try:
                row, _ = await intake.message(
                    concern_id=concern.id, text=call.text, channel=call.channel, author=author, meta=meta,
                    source_key=f"call:{agent.id}:{idempotency_key}" if idempotency_key else None)
                return CallLogged(concern_id=concern.id, interaction_id=row.id, opened=False)
            except IntakeError as err:
                if err.status != 409:
                    raise
        text, follows = call.text, None
        if concern is not None:
            follows = concern.id
            text = f"{text}\n\n(Follow-up to the closed concern {concern.id}: {concern.subject})"
            meta["follows"] = follows
        label = "Phone call" if call.channel == "phone" else "Walk-in visit"
        subject = (call.subject or "").strip() or f"{label}: {call.text.strip().splitlines()[0][:80]}"
        key = f"call:{agent.id}:{idempotency_key}" if idempotency_key else None
        opened = await intake.open(email=email, phone=phone, name=name, subject=subject, body=text,
                                   channel=call.channel, priority=call.priority, category=call.category or None,
                                   idempotency_key=key, meta=meta)
    except IntakeError as err:
        raise HTTPException(err.status, err.detail) from err
    with intake.sessions.begin() as session:
        first = session.exec(select(Interaction).where(Interaction.concern_id == opened.id)
                             .order_by(Interaction.id)).first()
    return CallLogged(concern_id=opened.id, interaction_id=first.id, opened=True, follows=follows)


async def rate_concern(intake: Intake, *, concern: Concern, customer_id: int, csat: int, nps: int | None,
                       comment: str) -> None:
    """Keep a customer's one rating of a concern and hand it to the workflow as `survey_answer` (via the outbox)."""
    with intake.sessions.begin() as session:
        record_rating(session=session, concern_id=concern.id, customer_id=customer_id, csat=csat, nps=nps,
                      comment=comment)
        add_handover(session=session, concern_id=concern.id, kind="rating")
    await intake.handover.hand_over(concern.id)


@router.get("", response_model=list[CustomerPublic])
def list_customers(session: DbSession, staff: Viewer,
                   q: Annotated[str, Query(max_length=200)] = "") -> list[CustomerPublic]:
    """Customers whose e-mail, phone or name contains `q`, newest first."""
    return [CustomerPublic.model_validate(c) for c in crm.search_customers(session=session, query=q)]


@router.post("", response_model=CustomerPublic, responses={201: {"description": "created"}})
def find_or_create(body: CustomerFind, session: DbSession, staff: Editor, response: Response) -> CustomerPublic:
    """The customer with this e-mail or phone, or a new one (201) for a first-time caller."""
    if not body.email and not body.phone:
        raise HTTPException(422, "give the customer's e-mail address or phone number")
    customer, created = crm.find_or_create_customer(session=session, email=body.email, phone=body.phone,
                                                    name=body.name)
    session.flush()
    response.status_code = 201 if created else 200
    return CustomerPublic.model_validate(customer)


@router.get("/{customer_id}", response_model=CustomerDetail)
def get_customer(customer_id: int, session: DbSession, staff: Viewer) -> CustomerDetail:
    """A customer with organisation, concerns and timeline across channels (a merged id answers for the survivor)."""
    return customer_detail(session, current_customer(session, customer_id))


@router.patch("/{customer_id}", response_model=CustomerPublic)
def update_customer(customer_id: int, body: CustomerUpdate, session: DbSession, staff: Editor) -> CustomerPublic:
    """Change name, tier, organisation or preferences."""
    customer = current_customer(session, customer_id)
    try:
        crm.update_customer(session=session, customer=customer, name=body.name, tier=body.tier,
                            organisation=body.organisation, preferences=body.preferences)
    except ValueError as err:
        raise HTTPException(422, str(err)) from err
    return CustomerPublic.model_validate(customer)


@router.post("/{customer_id}/merge", response_model=CustomerDetail,
             responses={409: {"description": "the records cannot be merged; `detail` says why"}})
def merge_customer(customer_id: int, body: MergeIn, session: DbSession, staff: Editor) -> CustomerDetail:
    """Fold the duplicate record into this one: concerns and timelines merge, the duplicate points here."""
    try:
        keep = crm.merge_customers(session=session, keep_id=customer_id, duplicate_id=body.duplicate_id,
                                   by=staff.name or staff.email or f"user {staff.id}")
    except LookupError as err:
        raise HTTPException(404, str(err)) from err
    except crm.MergeRefused as err:
        raise HTTPException(409, str(err)) from err
    return customer_detail(session, keep)


@router.post("/{customer_id}/calls", status_code=201, response_model=CallLogged)
async def post_call(customer_id: int, body: CallIn, intake: IntakeDep, staff: Editor,
                    idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> CallLogged:
    """Log a phone call or walk-in visit: it continues the named concern or opens a new one."""
    return await log_call(intake, customer_id=customer_id, call=body, agent=staff, idempotency_key=idempotency_key)
