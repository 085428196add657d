"""Helpers for the intake, portal and CRM tests: signed-in portal clients, staff tokens, real SMTP conversations."""

from __future__ import annotations

import re
import smtplib
from email import policy
from email.message import EmailMessage

import httpx

from api.security import create_token, create_user, hash_password
from registry.customers import find_or_create_customer
from workflows.concern import ConcernWorkflow
from workflows.payloads import AgentAction, AgentRef

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SUPPORT = "support@ccr.localhost"


def portal_client(desk) -> httpx.AsyncClient:
    """A separate cookie jar on the desk's app, like a second browser."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app), base_url="http://desk")


async def csrf_of(client: httpx.AsyncClient, path: str = "/portal/login") -> str:
    page = await client.get(path)
    return CSRF.search(page.text).group(1)


async def signed_in(desk, email: str, *, name: str = "", password: str = "a good password") -> httpx.AsyncClient:
    """A portal client signed in as the customer with `email` (created with a password if new)."""
    with desk.sessions.begin() as session:
        customer, _ = find_or_create_customer(session=session, email=email, name=name or email.split("@")[0].title())
        customer.password_hash = hash_password(password)
        session.add(customer)
    client = portal_client(desk)
    token = await csrf_of(client)
    response = await client.post("/portal/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.text
    return client


async def open_in_portal(client: httpx.AsyncClient, *, subject: str = "Printer jams", body: str = "It jams.",
                         category: str = "ladder", files=None) -> httpx.Response:
    """Post the new-concern form as a browser without JavaScript would."""
    token = await csrf_of(client, "/portal/concerns/new")
    data = {"csrf_token": token, "subject": subject, "body": body, "category": category,
            "form_token": f"form-{abs(hash((subject, body))) % 10**12:012d}"}
    return await client.post("/portal/concerns/new", data=data, files=files or [])


def staff_headers(desk, *, role: str = "agent", level: int | None = 1,
                  email: str | None = None) -> tuple[dict, AgentRef]:
    """A bearer header for a new member of staff, and their AgentRef for workflow updates."""
    email = email or f"{role}{level or ''}@desk.test"
    with desk.sessions.begin() as session:
        user = create_user(session=session, email=email, password="staff-password", role=role,
                           level=level if role in ("agent", "lead") else None, skills=["general"])
        token = create_token(session=session, user=user)
        ref = AgentRef(id=user.id, name=user.name, level=level or 3, skills=["general"])
    return {"Authorization": f"Bearer {token}"}, ref


async def act(desk, concern_id: str, type: str, agent: AgentRef, **kw):
    """An agent action as a workflow update, as the agent workspace sends it."""
    concern = await desk.concern(concern_id)
    handle = desk.client.get_workflow_handle(concern.workflow_id)
    return await handle.execute_update(ConcernWorkflow.act, AgentAction(type=type, agent=agent, **kw))


def customer_mail(body: str = "My printer jams on every page.", *, sender: str = "Alice Example <alice@example.com>",
                  message_id: str = "<first@example.com>", subject: str = "Printer jams",
                  **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = f"Customer Care <{SUPPORT}>"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def send(port: int, msg: EmailMessage | bytes, *, sender: str = "alice@example.com",
         rcpt: str = SUPPORT) -> tuple[int, str]:
    """MAIL, RCPT and DATA over a real socket; the server's reply to DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("mx.example.com")
        assert smtp.mail(sender)[0] == 250
        code, reply = smtp.rcpt(rcpt)
        if code != 250:
            return code, reply.decode()
        code, reply = smtp.data(msg if isinstance(msg, bytes) else msg.as_bytes(policy=policy.SMTP))
        return code, reply.decode()
