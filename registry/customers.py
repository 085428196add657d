"""Customers matched across channels by normalised e-mail and phone."""

from __future__ import annotations

import re

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from registry.attachments import Attachment
from registry.mailbox import RawMail
from registry.models import Concern, Customer, Interaction, Organisation
from registry.ratings import Rating

_PHONE_JUNK = re.compile(r"[^\d+]")


def normalise_email(email: str | None) -> str | None:
    """Lower-cased, trimmed e-mail, or None when empty."""
    if not email:
        return None
    email = email.strip().lower()
    return email or None


def normalise_phone(phone: str | None) -> str | None:
    """Digits with an optional leading +, so '+49 30 1234-5' and '+4930 12345' match."""
    if not phone:
        return None
    digits = _PHONE_JUNK.sub("", phone.strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    return digits or None


def find_customer(*, session: Session, email: str | None = None, phone: str | None = None) -> Customer | None:
    """The customer with this e-mail or phone, following merges to the surviving record."""
    email, phone = normalise_email(email), normalise_phone(phone)
    customer = None
    if email:
        customer = session.exec(select(Customer).where(Customer.email == email)).first()
    if customer is None and phone:
        customer = session.exec(select(Customer).where(Customer.phone == phone)).first()
    while customer is not None and customer.merged_into_id is not None:
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def find_or_create_customer(
    *, session: Session, email: str | None = None, phone: str | None = None, name: str = ""
) -> tuple[Customer, bool]:
    """The existing customer for this e-mail or phone, or a new one; fills in a missing name or phone."""
    customer = find_customer(session=session, email=email, phone=phone)
    if customer is not None:
        if name and not customer.name:
            customer.name = name
        if phone and not customer.phone and find_customer(session=session, phone=phone) is None:
            customer.phone = normalise_phone(phone)
        session.add(customer)
        return customer, False
    customer = Customer(email=normalise_email(email), phone=normalise_phone(phone), name=name.strip())
    session.add(customer)
    session.flush()
    return customer, True


# ---- the customer record: merges, organisations, profile and timeline ---------------------------

TIERS = ("standard", "gold", "platinum")
# Preferences staff may set; `organisation_access` lets a customer read their organisation's concerns.
PREFERENCE_KEYS = {"organisation_access": bool, "contact_channel": str, "language": str, "notes": str}


class MergeRefused(ValueError):
    """Two records that cannot be merged; the message says why."""


def surviving(*, session: Session, customer_id: int) -> Customer | None:
    """The record a customer id stands for now: itself, or the one it was merged into."""
    customer = session.get(Customer, customer_id)
    seen = set()
    while customer is not None and customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def merged_ids(*, session: Session, customer_id: int) -> list[int]:
    """The customer's id and those of every record merged into it, directly or through others."""
    ids, frontier = [customer_id], [customer_id]
    while frontier:
        found = session.exec(select(Customer.id).where(col(Customer.merged_into_id).in_(frontier))).all()
        frontier = [i for i in found if i not in ids]
        ids += frontier
    return ids


def visible_customer_ids(*, session: Session, customer: Customer) -> list[int]:
    """Whose concerns a signed-in customer may read: their own, plus their organisation's if staff allowed it."""
    ids = merged_ids(session=session, customer_id=customer.id)
    if customer.organisation_id is not None and (customer.preferences or {}).get("organisation_access") is True:
        for member in organisation_members(session=session, organisation_id=customer.organisation_id):
            ids += [i for i in merged_ids(session=session, customer_id=member.id) if i not in ids]
    return ids


def organisation_members(*, session: Session, organisation_id: int) -> list[Customer]:
    """The organisation's customers (records merged away are left out)."""
    return list(session.exec(select(Customer).where(
        Customer.organisation_id == organisation_id, col(Customer.merged_into_id).is_(None)).order_by(Customer.name)))


def organisation_named(*, session: Session, name: str) -> Organisation:
    """The organisation with this name (ignoring case), created when new."""
    name = " ".join(name.split())[:200]
    if not name:
        raise ValueError("an organisation needs a name")
    found = session.exec(select(Organisation).where(func.lower(Organisation.name) == name.lower())).first()
    if found is None:
        found = Organisation(name=name)
        session.add(found)
        session.flush()
    return found


def update_customer(*, session: Session, customer: Customer, name: str | None = None, tier: str | None = None,
                    organisation: str | None = None, preferences: dict | None = None) -> Customer:
    """Change a customer's profile; `organisation=""` removes them from their organisation."""
    if customer.merged_into_id is not None:
        raise MergeRefused(f"customer {customer.id} was merged into {customer.merged_into_id}; edit that record")
    if name is not None:
        customer.name = " ".join(name.split())[:200]
    if tier is not None:
        if tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
        customer.tier = tier
    if organisation is not None:
        customer.organisation_id = organisation_named(session=session, name=organisation).id if organisation.strip() \
            else None
    if preferences is not None:
        merged = dict(customer.preferences or {})
        for key, value in preferences.items():
            kind = PREFERENCE_KEYS.get(key)
            if kind is None:
                raise ValueError(f"unknown preference {key!r}; known: {', '.join(PREFERENCE_KEYS)}")
            if value is None:
                merged.pop(key, None)
            elif not isinstance(value, kind):
                raise ValueError(f"preference {key!r} must be a {kind.__name__}")
            else:
                merged[key] = value[:500] if isinstance(value, str) else value
        customer.preferences = merged
    session.add(customer)
    session.flush()
    return customer


def merge_customers(*, session: Session, keep_id: int, duplicate_id: int, by: str) -> Customer:
    """Merge the duplicate into `keep_id`: concerns, timeline and files move; the duplicate points to the survivor."""
    if keep_id == duplicate_id:
        raise MergeRefused("a customer cannot be merged into themselves")
    # Lock both records first, in id order: workflows writing the timeline meanwhile take key-share locks on the
    # customer, and locking after moving their concerns would deadlock with them (PostgreSQL aborts one side).
    locked = {cid: session.get(Customer, cid, with_for_update=True) for cid in sorted((keep_id, duplicate_id))}
    keep, dup = locked[keep_id], locked[duplicate_id]
    for wanted, row in ((keep_id, keep), (duplicate_id, dup)):
        if row is None:
            raise LookupError(f"no customer {wanted}")
        if row.merged_into_id is not None:
            raise MergeRefused(f"customer {row.id} was already merged into {row.merged_into_id}")
    for table in (Concern, Interaction, Attachment, RawMail, Rating):
        session.execute(update(table).where(table.customer_id == dup.id).values(customer_id=keep.id))
    session.execute(update(Customer).where(Customer.merged_into_id == dup.id).values(merged_into_id=keep.id))
    moved = {}
    # Unique columns move by clearing the duplicate first; otherwise the duplicate keeps them and lookups follow.
    for field in ("email", "phone"):
        if getattr(keep, field) is None and getattr(dup, field) is not None:
            moved[field] = getattr(dup, field)
            setattr(dup, field, None)
    session.add(dup)
    session.flush()
    for field, value in moved.items():
        setattr(keep, field, value)
    keep.name = keep.name or dup.name
    keep.password_hash = keep.password_hash or dup.password_hash
    keep.organisation_id = keep.organisation_id or dup.organisation_id
    keep.tier = max(keep.tier, dup.tier, key=lambda t: TIERS.index(t) if t in TIERS else -1)  # a merge never demotes
    keep.preferences = {**(dup.preferences or {}), **(keep.preferences or {})}
    dup.merged_into_id = keep.id
    session.add_all([keep, dup])
    label = dup.email or dup.phone or dup.name or f"#{dup.id}"
    session.add(Interaction(
        customer_id=keep.id, kind="merged", channel="system", direction="internal", author=by,
        body=f"Customer record #{dup.id} ({label}) merged into this one by {by}", source_key=f"merge:{dup.id}",
        meta={"duplicate_id": dup.id, "duplicate_email": dup.email, "moved": sorted(moved)},
    ))
    session.flush()
    return keep


def search_customers(*, session: Session, query: str, limit: int = 50) -> list[Customer]:
    """Customers whose e-mail, phone or name contains `query`, newest first (merged records left out)."""
    query = " ".join(query.split())
    base = select(Customer).where(col(Customer.merged_into_id).is_(None))
    if query:
        like = f"%{query.lower()}%"
        phone = normalise_phone(query)
        terms = [func.lower(Customer.email).like(like), func.lower(Customer.name).like(like)]
        if phone and len(phone) >= 3:
            terms.append(col(Customer.phone).like(f"%{phone}%"))
        base = base.where(or_(*terms))
    return list(session.exec(base.order_by(col(Customer.id).desc()).limit(limit)))


def customer_concerns(*, session: Session, customer_ids: list[int]) -> list[Concern]:
    """Every concern of these customer records, newest first."""
    return list(session.exec(select(Concern).where(col(Concern.customer_id).in_(customer_ids))
                             .order_by(col(Concern.created_at).desc(), col(Concern.id).desc())))


def customer_timeline(*, session: Session, customer_ids: list[int], limit: int = 300) -> list[Interaction]:
    """Every interaction of these customer records on every channel, newest first."""
    # Workflows started before a merge keep writing under the old id, so the whole merged family is read.
    return list(session.exec(select(Interaction).where(col(Interaction.customer_id).in_(customer_ids))
                             .order_by(col(Interaction.created_at).desc(), col(Interaction.id).desc()).limit(limit)))
