"""Demo data for a first `ccr up`: SOPs, staff of every role, a customer, articles and two concerns."""

from __future__ import annotations

from sqlmodel import select

from api.intake import Intake
from api.security import create_user, hash_password
from registry.customers import find_or_create_customer
from registry.db import Sessions
from registry.knowledge import create_article, publish_article
from registry.models import User
from registry.sop_store import publish, staffing_warnings
from sops.loader import load_definitions

DEMO_PASSWORD = "demo-password"

# Between them they can take every human step of the shipped SOPs (a test checks it). Names are plain names, as
# customers read them in mail and on the portal; pages show role and level beside them where staff need them.
STAFF = [
    ("agent1@demo.test", "Ada", "agent", 1, ["general", "accounts", "billing", "orders", "complaints"]),
    ("agent2@demo.test", "Bo", "agent", 2, ["general", "accounts", "identity", "billing", "orders",
                                                  "complaints"]),
    ("agent3@demo.test", "Cy", "agent", 3, ["general", "accounts", "identity", "security", "billing"]),
    ("lead@demo.test", "Lee", "lead", 3, ["general", "accounts", "identity", "security", "billing", "orders",
                                                 "complaints"]),
    ("owner@demo.test", "Olive", "process_owner", None, []),
    ("sre@demo.test", "Sam", "sre", None, []),
    ("auditor@demo.test", "Audrey", "auditor", None, []),
    ("admin@demo.test", "Alex", "admin", None, []),
]
CUSTOMER = ("customer@demo.test", "Casey Customer")

ARTICLES = [
    ("How to reset your password",
     "If you cannot sign in, use **Forgot password** on the sign-in page. We send you a link that works "
     "for one hour. Check your spam folder if the mail does not arrive.", "account-access"),
    ("Where is my order?",
     "Orders ship within two working days. You find the tracking link in your order confirmation mail.", "orders"),
    ("Changing your invoice address",
     "Open **Account → Billing** and edit the invoice address; the next invoice uses it.", "billing"),
]


def publish_shipped_sops(sessions: Sessions, by: str = "ccr") -> tuple[list[tuple[str, int, bool]], list[str]]:
    """Publish every shipped SOP whose content changed; returns (id, version, newly published) and the
    warnings about human steps that no active agent can take."""
    results = []
    definitions = list(load_definitions().values())
    with sessions.begin() as session:
        for definition in definitions:
            row, created = publish(session=session, definition=definition, by=by)
            results.append((row.sop_id, row.version, created))
        warnings = staffing_warnings(session=session, definitions=definitions)
    return results, warnings


def needs_seed(sessions: Sessions) -> bool:
    """A registry without any staff is a first run."""
    with sessions.begin() as session:
        return session.exec(select(User)).first() is None


def seed_registry(sessions: Sessions) -> None:
    """Staff, a customer with a portal password and published articles."""
    with sessions.begin() as session:
        for email, name, role, level, skills in STAFF:
            create_user(session=session, email=email, password=DEMO_PASSWORD, role=role, name=name, level=level,
                        skills=skills)
        customer, _ = find_or_create_customer(session=session, email=CUSTOMER[0], name=CUSTOMER[1])
        customer.password_hash = hash_password(DEMO_PASSWORD)
        session.add(customer)
        for title, body, category in ARTICLES:
            article = create_article(session=session, title=title, body=body, owner_email="owner@demo.test",
                                     category=category)
            publish_article(session=session, article_id=article.id)


async def seed_concerns(intake: Intake) -> list[str]:
    """Two concerns from the demo customer, so the queue is not empty on the first visit."""
    opened = []
    for subject, body, category in [
        ("Invoice shows the wrong amount", "My invoice for November charges twice for the same plan.", None),
        ("Cannot sign in", "I forgot my password and the app says my account is locked.", "account-access"),
    ]:
        concern = await intake.open(email=CUSTOMER[0], name=CUSTOMER[1], subject=subject, body=body,
                                    channel="web", category=category, idempotency_key=f"demo:{subject}")
        opened.append(concern.id)
    return opened
