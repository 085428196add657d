"""E-level actions against a real registry: the action registry, `kb_answer` and `password_reset`."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from tests.knowledge_corpus import load_corpus

import activities.elevel.actions  # noqa: F401
from activities.elevel import ACTIONS, Automation, AutomationContext, AutomationRequest, AutomationResult
from activities.elevel.kb_answer import DEFAULT_KB_THRESHOLD
from activities.elevel.password_reset import (
    ResetTokenExpired,
    ResetTokenInvalid,
    make_reset_token,
    reset_link_for,
    verify_reset_token,
)
from registry.db import Sessions
from registry.knowledge import create_article, publish_article, update_article
from registry.models import Customer
from registry.settings import Settings

BASE_URL = "https://desk.example"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key="test-secret", public_url=BASE_URL + "/")


def _customer(sessions: Sessions, email: str | None = "ann@example.com", password_hash: str | None = None) -> int:
    with sessions.begin() as session:
        customer = Customer(email=email, name="Ann", password_hash=password_hash)
        session.add(customer)
        session.flush()
        return customer.id


def _request(action: str, subject: str, body: str = "", customer_id: int = 1, **kw) -> AutomationRequest:
    return AutomationRequest(action=action, concern_id="C-7", workflow_id="concern-C-7", step=action, seq=3,
                             customer_id=customer_id, subject=subject, body=body, **kw)


async def _run(name: str, request: AutomationRequest, sessions: Sessions, settings: Settings, **options):
    async with httpx.AsyncClient() as http:
        ctx = AutomationContext(sessions=sessions, settings=settings, http=http, options=options)
        return await ACTIONS[name]().run(request, ctx)


def test_every_action_is_registered_under_its_name():
    expected = {"classify", "kb_answer", "password_reset", "order_status"}
    assert expected <= set(ACTIONS)
    for name in expected:
        assert issubclass(ACTIONS[name], Automation) and ACTIONS[name].name == name


async def test_a_matching_article_answers_the_concern(sessions, settings):
    ids = load_corpus(sessions)
    request = _request("kb_answer", "Password reset link not arriving",
                       "I forgot my password. I asked for a reset twice but no e-mail came.")
    result = await _run("kb_answer", request, sessions, settings)
    article_id = ids["Reset a forgotten password"]
    assert (result.outcome, result.article_id) == ("answered", article_id)
    assert result.score >= DEFAULT_KB_THRESHOLD
    assert result.message.startswith("Reset a forgotten password\n\n")
    assert "choose Forgot password." in result.message, "the customer gets plain text, not Markdown"
    assert "- Check your spam folder" in result.message
    assert result.message.endswith(f"Read this article online: {BASE_URL}/portal/kb/{article_id}")
    assert f"article {article_id}" in result.detail and "version 1" in result.detail


async def test_an_unrelated_concern_finds_no_match(sessions, settings):
    load_corpus(sessions)
    nothing = await _run("kb_answer", _request("kb_answer", "Zebra", "Quantum marmalade"), sessions, settings)
    assert (nothing.outcome, nothing.message, nothing.score) == ("no_match", None, 0.0)
    weak = await _run("kb_answer", _request("kb_answer", "Catalogue request", "Could you send me a printed catalogue?"),
                      sessions, settings)
    assert weak.outcome == "no_match" and weak.message is None
    assert 0 < weak.score < DEFAULT_KB_THRESHOLD and "below" in weak.detail


async def test_the_threshold_is_configurable(sessions, settings):
    load_corpus(sessions)
    request = _request("kb_answer", "Refund not received", "The refund is still not back on my card.")
    assert (await _run("kb_answer", request, sessions, settings)).outcome == "answered"
    strict = await _run("kb_answer", request, sessions, settings, kb_threshold=0.99)
    assert strict.outcome == "no_match" and "below 0.99" in strict.detail


async def test_drafts_never_answer_customers_but_their_edits_do_once_published(sessions, settings):
    with sessions.begin() as session:
        draft = create_article(session=session, title="Warranty claims", owner_email="kb@desk.example",
                               body="Send a photo of the defect and your receipt to claim the warranty.")
    request = _request("kb_answer", "Warranty claim", "How do I claim the warranty for a defect?")
    assert (await _run("kb_answer", request, sessions, settings)).outcome == "no_match"
    with sessions.begin() as session:
        update_article(session=session, article_id=draft.id, edited_by="kb@desk.example",
                       body="Send a photo of the defect and your receipt; we answer warranty claims in 2 days.")
        publish_article(session=session, article_id=draft.id)
    result = await _run("kb_answer", request, sessions, settings)
    assert (result.outcome, result.article_id) == ("answered", draft.id)
    assert "warranty claims in 2 days" in result.message


async def test_the_reset_action_says_a_link_is_sent_and_when_it_expires_but_carries_no_link(sessions, settings):
    customer_id = _customer(sessions)
    request = _request("password_reset", "Can't log in", customer_id=customer_id, customer_email="old@example.com")
    result = await _run("password_reset", request, sessions, settings)
    assert isinstance(result, AutomationResult) and result.outcome == "sent"
    assert re.fullmatch(r"Sent a password-reset link \(valid until \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", result.message)
    # The action's result is stored in the workflow history, which SREs and auditors read.
    assert "/portal/reset/" not in result.model_dump_json()


async def test_the_mailed_reset_link_names_the_customer_and_works_once(sessions, settings):
    customer_id = _customer(sessions, password_hash="$argon2id$old")
    with sessions.begin() as session:
        link = reset_link_for(session.get(Customer, customer_id), settings=settings)
    token = re.fullmatch(re.escape(BASE_URL) + r"/portal/reset/([\w.-]+)", link).group(1)
    assert verify_reset_token(token, settings=settings, sessions=sessions) == "ann@example.com"
    with sessions.begin() as session:
        session.get(Customer, customer_id).password_hash = "$argon2id$new"
    with pytest.raises(ResetTokenInvalid, match="already used"):
        verify_reset_token(token, settings=settings, sessions=sessions)


async def test_no_reset_link_without_an_email_address(sessions, settings):
    customer_id = _customer(sessions, email=None)
    result = await _run("password_reset", _request("password_reset", "Reset", customer_id=customer_id),
                        sessions, settings)
    assert (result.outcome, result.message) == ("no_email", None)


def test_reset_tokens_expire(settings):
    token = make_reset_token("ann@example.com", settings=settings)
    assert verify_reset_token(token, settings=settings, max_age=60) == "ann@example.com"
    time.sleep(1.1)
    with pytest.raises(ResetTokenExpired, match="expired"):
        verify_reset_token(token, settings=settings, max_age=0)


def test_forged_reset_tokens_are_refused(settings, tmp_path):
    token = make_reset_token("ann@example.com", settings=settings)
    payload, timestamp, signature = token.split(".")
    tampered_payload = make_reset_token("eve@example.com", settings=settings).split(".")[0]
    other_key = Settings(data_dir=tmp_path, secret_key="another-secret")
    forgeries = [
        f"{tampered_payload}.{timestamp}.{signature}",
        f"{payload}.{timestamp}.{signature[:-2]}xx",
        make_reset_token("ann@example.com", settings=other_key),
        URLSafeTimedSerializer("test-secret", salt="session").dumps({"email": "ann@example.com"}),
        URLSafeTimedSerializer("test-secret", salt="password-reset").dumps("ann@example.com"),
        "not-a-token",
        "",
    ]
    for forged in forgeries:
        with pytest.raises(ResetTokenInvalid, match="not valid"):
            verify_reset_token(forged, settings=settings)
