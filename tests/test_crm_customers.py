"""The customer record: one customer across channels, one timeline, merges, profile edits, staff-only access."""

from __future__ import annotations

from sqlmodel import select

from api.mail_in import parse_inbound
from api.mail_intake import MailIntake
from registry.models import Concern, Customer, Interaction
from tests.intake_kit import customer_mail, open_in_portal, signed_in, staff_headers


async def mail_in(desk, msg) -> str:
    raw = msg.as_bytes()
    mail = parse_inbound(raw, max_bytes=desk.settings.max_message_bytes,
                         max_attachment_bytes=desk.settings.max_attachment_bytes)
    outcome = await MailIntake(desk.intake).deliver(raw, mail)
    return outcome.concern_id


async def test_web_then_mail_from_the_same_address_is_one_customer_with_one_timeline(desk):
    portal = await signed_in(desk, "Ada.Lovelace@Example.com", name="Ada Lovelace")
    opened = await open_in_portal(portal, subject="Invoice missing", body="Where is my March invoice?")
    web_id = opened.headers["location"].rsplit("/", 1)[-1]
    mail_id = await mail_in(desk, customer_mail("My parcel has not arrived.", sender="Ada <ada.lovelace@example.com>",
                                                message_id="<parcel@example.com>", subject="Parcel"))
    phone = await desk.http.post("/api/customers", headers=desk.auth,
                                 json={"phone": "+44 20 7946 0000", "email": "ADA.lovelace@example.com"})
    assert phone.status_code == 200  # found, not created
    with desk.sessions.begin() as session:
        [ada] = session.exec(select(Customer)).all()
        assert {c.customer_id for c in session.exec(select(Concern))} == {ada.id}
    assert ada.phone == "+442079460000"
    record = (await desk.http.get(f"/api/customers/{ada.id}", headers=desk.auth)).json()
    assert {c["id"] for c in record["concerns"]} == {web_id, mail_id}
    channels = [t["channel"] for t in record["timeline"] if t["kind"] == "customer_message"]
    assert channels == ["email", "web"]  # newest first
    stamps = [t["created_at"] for t in record["timeline"]]
    assert stamps == sorted(stamps, reverse=True)
    page = await desk.http.get(f"/customers/{ada.id}", headers=desk.auth)
    assert page.status_code == 200
    assert 'data-channel="email"' in page.text and 'data-channel="web"' in page.text
    assert '<span class="channel ch-email" title="email" aria-label="email">✉</span>' in page.text


async def test_merging_two_records_merges_their_timelines_and_later_lookups(desk_on_both):
    desk = desk_on_both
    first = await desk.intake.open(email="bob@example.com", name="Bob", subject="Login", body="Cannot log in",
                                   channel="web", category="ladder")
    second = await desk.intake.open(email=None, phone="+1 555 0100", name="Bob B.", subject="Call",
                                    body="Phoned about login", channel="phone", category="ladder")
    with desk.sessions.begin() as session:
        keep = session.exec(select(Customer).where(Customer.email == "bob@example.com")).one()
        dup = session.exec(select(Customer).where(Customer.phone == "+15550100")).one()
    headers, _ = staff_headers(desk)
    merged = await desk.http.post(f"/api/customers/{keep.id}/merge", json={"duplicate_id": dup.id}, headers=headers)
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert {c["id"] for c in body["concerns"]} == {first.id, second.id}
    assert body["phone"] == "+15550100" and body["merged_ids"] == [keep.id, dup.id]
    assert any(t["kind"] == "merged" for t in body["timeline"])
    with desk.sessions.begin() as session:
        assert session.get(Customer, dup.id).merged_into_id == keep.id
        assert {i.customer_id for i in session.exec(select(Interaction))} == {keep.id}
    # The old id answers for the survivor; merging again is refused with the reason.
    assert (await desk.http.get(f"/api/customers/{dup.id}", headers=headers)).json()["id"] == keep.id
    again = await desk.http.post(f"/api/customers/{keep.id}/merge", json={"duplicate_id": dup.id}, headers=headers)
    assert again.status_code == 409 and "already merged" in again.json()["detail"]
    # A later call from the duplicate's phone lands on the survivor.
    later = await desk.intake.open(email=None, phone="+1-555-0100", subject="Again", body="Still locked out",
                                   channel="phone", category="ladder")
    assert later.customer_id == keep.id


async def test_merge_button_on_the_customer_page(desk):
    await desk.intake.open(email="carol@example.com", subject="A", body="a", channel="web", category="ladder")
    await desk.intake.open(email="carol.work@example.com", subject="B", body="b", channel="email", category="ladder")
    with desk.sessions.begin() as session:
        keep = session.exec(select(Customer).where(Customer.email == "carol@example.com")).one()
    page = await desk.http.get(f"/customers/{keep.id}", headers=desk.auth)
    assert f'action="/customers/{keep.id}/merge"' in page.text
    done = await desk.http.post(f"/customers/{keep.id}/merge", data={"duplicate": "carol.work@example.com"},
                                headers=desk.auth)
    assert done.status_code == 303 and done.headers["location"] == f"/customers/{keep.id}?done=merged"
    page = await desk.http.get(done.headers["location"], headers=desk.auth)
    assert "Records merged" in page.text and page.text.count('data-kind="customer_message"') == 2
    missing = await desk.http.post(f"/customers/{keep.id}/merge", data={"duplicate": "nobody@example.com"},
                                   headers=desk.auth)
    assert missing.status_code == 404 and "no customer" in missing.text


async def test_tier_organisation_and_preferences_are_edited_by_agents_only(desk):
    concern = await desk.intake.open(email="dan@example.com", subject="A", body="a", channel="web", category="ladder")
    cid = concern.customer_id
    agent, _ = staff_headers(desk)
    auditor, _ = staff_headers(desk, role="auditor", level=None)
    patch = {"tier": "gold", "organisation": "Acme Ltd", "preferences": {"organisation_access": True}}
    assert (await desk.http.patch(f"/api/customers/{cid}", json=patch, headers=auditor)).status_code == 403
    changed = await desk.http.patch(f"/api/customers/{cid}", json=patch, headers=agent)
    assert changed.status_code == 200 and changed.json()["tier"] == "gold"
    assert changed.json()["preferences"] == {"organisation_access": True}
    record = (await desk.http.get(f"/api/customers/{cid}", headers=auditor)).json()
    assert record["organisation"]["name"] == "Acme Ltd"
    bad = await desk.http.patch(f"/api/customers/{cid}", json={"tier": "diamond"}, headers=agent)
    assert bad.status_code == 422
    unknown = await desk.http.patch(f"/api/customers/{cid}", json={"preferences": {"shoe_size": 42}}, headers=agent)
    assert unknown.status_code == 422 and "unknown preference" in unknown.json()["detail"]
    saved = await desk.http.post(f"/customers/{cid}/profile", headers=agent,
                                 data={"tier": "platinum", "organisation": "", "contact_channel": "phone"})
    assert saved.status_code == 303
    page = await desk.http.get(saved.headers["location"], headers=agent)
    assert "<dt>Tier</dt><dd>platinum</dd>" in page.text and "Profile saved." in page.text
    with desk.sessions.begin() as session:
        dan = session.get(Customer, cid)
        assert (dan.tier, dan.organisation_id, dan.preferences) == (
            "platinum", None, {"organisation_access": False, "contact_channel": "phone"})


async def test_customer_records_are_for_staff_only(desk):
    portal = await signed_in(desk, "eve@example.com")
    with desk.sessions.begin() as session:
        eve = session.exec(select(Customer).where(Customer.email == "eve@example.com")).one()
    assert (await portal.get(f"/api/customers/{eve.id}")).status_code == 403
    assert (await portal.get(f"/customers/{eve.id}")).status_code == 403
    anonymous = await desk.http.get(f"/customers/{eve.id}")
    assert anonymous.status_code in (302, 303) and anonymous.headers["location"].startswith("/login")
    assert (await desk.http.get(f"/api/customers/{eve.id}")).status_code == 401
    # Staff forms need the session's CSRF token; only bearer-token API clients are exempt.
    assert (await portal.post(f"/customers/{eve.id}/profile", data={"tier": "gold"})).status_code == 403
