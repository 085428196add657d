"""Customers matched across channels by normalised e-mail and phone."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from registry.models import Customer

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
