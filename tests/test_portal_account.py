"""Portal accounts without a browser: mailed sign-up links, single use, sign-in, CSRF, help articles."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import select

from registry.knowledge import create_article, publish_article
from registry.models import Customer, OutboxMail
from tests.intake_kit import csrf_of, portal_client


def links_to(desk, email: str) -> list[str]:
    with desk.sessions.begin() as session:
        mails = session.exec(select(OutboxMail).where(OutboxMail.to_address == email)).all()
    return [re.search(r"/portal/reset/\S+", m.text).group(0) for m in mails]


async def test_sign_up_by_mailed_link_claims_the_customer_who_wrote_before(desk):
    mailed = await desk.intake.open(email="judy@example.com", name="Judy", subject="Parcel", body="Where is it?",
                                    channel="email", category="ladder")
    client = portal_client(desk)
    token = await csrf_of(client, "/portal/signup")
    refused = await client.post("/portal/signup", data={"name": "Judy", "email": "judy@example.com"})
    assert refused.status_code == 403 and links_to(desk, "judy@example.com") == []
    sent = await client.post("/portal/signup", data={"name": "Judy", "email": "Judy@Example.com", "csrf_token": token})
    assert sent.status_code == 200 and "Check your mail" in sent.text
    [link] = links_to(desk, "judy@example.com")
    # A second request within a minute sends nothing more (no mail bombing through the form).
    await client.post("/portal/signup", data={"name": "Judy", "email": "judy@example.com", "csrf_token": token})
    assert len(links_to(desk, "judy@example.com")) == 1

    form = await client.get(link)
    assert form.status_code == 200 and "judy@example.com" in form.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    short = await client.post(link, data={"password": "short", "password_repeat": "short", "csrf_token": token})
    assert short.status_code == 422 and "at least 8 characters" in short.text
    differ = await client.post(link, data={"password": "long enough 1", "password_repeat": "long enough 2",
                                           "csrf_token": token})
    assert differ.status_code == 422 and "differ" in differ.text
    done = await client.post(link, data={"password": "long enough 1", "password_repeat": "long enough 1",
                                         "csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/portal/concerns"
    mine = await client.get("/portal/concerns")
    assert mailed.id in mine.text  # the concern she mailed in before she had an account
    with desk.sessions.begin() as session:
        assert len(session.exec(select(Customer)).all()) == 1
    again = await portal_client(desk).get(link)
    assert again.status_code == 400 and "already used" in again.text


async def test_sign_in_needs_the_password_starts_a_fresh_session_and_sign_out_ends_it(desk):
    client = portal_client(desk)
    token = await csrf_of(client, "/portal/signup")
    await client.post("/portal/signup", data={"name": "Ken", "email": "ken@example.com", "csrf_token": token})
    [link] = links_to(desk, "ken@example.com")
    token = await csrf_of(client, link)
    await client.post(link, data={"password": "kens password", "password_repeat": "kens password", "csrf_token": token})
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/portal/concerns")})
    gone = await client.get("/portal/concerns")
    assert gone.status_code in (302, 303) and gone.headers["location"].startswith("/portal/login")

    before = await csrf_of(client)
    wrong = await client.post("/portal/login", data={"email": "ken@example.com", "password": "nope nope",
                                                     "csrf_token": before})
    assert wrong.status_code == 401 and "do not match" in wrong.text
    unknown = await client.post("/portal/login", data={"email": "nobody@example.com", "password": "nope nope",
                                                       "csrf_token": before})
    assert unknown.status_code == 401 and unknown.text.count("do not match") == wrong.text.count("do not match")
    right = await client.post("/portal/login", data={"email": "KEN@example.com", "password": "kens password",
                                                     "csrf_token": before, "next": "//evil.example/"})
    assert right.status_code == 303 and right.headers["location"] == "/portal/concerns"
    assert await csrf_of(client, "/portal/concerns/new") != before  # the pre-login session is gone
    forgot = await client.post("/portal/forgot", data={"email": "nobody@example.com",
                                                       "csrf_token": await csrf_of(client, "/portal/forgot")})
    assert forgot.status_code == 200 and "Check your mail" in forgot.text
    assert links_to(desk, "nobody@example.com") == []


async def test_help_articles_are_searchable_and_only_published_ones_are_shown(desk):
    with desk.sessions.begin() as session:
        live = create_article(session=session, title="Clearing a paper jam", owner_email="kb@desk.test",
                              body="Open **tray 2** and pull the sheet.\n\n<script>alert(1)</script>")
        publish_article(session=session, article_id=live.id)
        draft = create_article(session=session, title="Paper jam secrets", body="draft", owner_email="kb@desk.test")
    client = portal_client(desk)
    found = await client.get("/portal/kb", params={"q": "paper jam"})
    assert found.status_code == 200 and "Clearing a paper jam" in found.text and "Paper jam secrets" not in found.text
    fragment = await client.get("/portal/kb", params={"q": "paper jam"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<section id="kb-results"') and "HX-Request" in fragment.headers["vary"]
    article = await client.get(f"/portal/kb/{live.id}")
    assert "<strong>tray 2</strong>" in article.text and "<script>alert(1)</script>" not in article.text
    assert (await client.get(f"/portal/kb/{draft.id}")).status_code == 404
    assert (await client.get("/portal/kb/99999")).status_code == 404


async def test_a_new_password_signs_out_every_other_session(desk):
    client = portal_client(desk)
    await client.post("/portal/signup", data={"name": "Lea", "email": "lea@example.com",
                                              "csrf_token": await csrf_of(client, "/portal/signup")})
    [link] = links_to(desk, "lea@example.com")
    await client.post(link, data={"password": "first password", "password_repeat": "first password",
                                  "csrf_token": await csrf_of(client, link)})
    elsewhere = portal_client(desk)  # a second device, or someone who learnt the first password
    signed_in = await elsewhere.post("/portal/login", data={"email": "lea@example.com", "password": "first password",
                                                            "csrf_token": await csrf_of(elsewhere)})
    assert signed_in.status_code == 303 and (await elsewhere.get("/portal/concerns")).status_code == 200

    with desk.sessions.begin() as session:  # the link is old now; ask for a fresh one a minute later
        for mail in session.exec(select(OutboxMail).where(OutboxMail.to_address == "lea@example.com")):
            mail.created_at -= timedelta(minutes=2)
            session.add(mail)
    await client.post("/portal/forgot", data={"email": "lea@example.com",
                                              "csrf_token": await csrf_of(client, "/portal/forgot")})
    link = links_to(desk, "lea@example.com")[-1]
    done = await client.post(link, data={"password": "second password", "password_repeat": "second password",
                                         "csrf_token": await csrf_of(client, link)})
    assert done.status_code == 303 and (await client.get("/portal/concerns")).status_code == 200
    gone = await elsewhere.get("/portal/concerns")
    assert gone.status_code in (302, 303) and gone.headers["location"].startswith("/portal/login")
    refused = await elsewhere.post("/portal/login", data={"email": "lea@example.com", "password": "first password",
                                                          "csrf_token": await csrf_of(elsewhere)})
    assert refused.status_code == 401
