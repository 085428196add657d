"""Phone calls and walk-in visits logged by agents join the customer's one timeline."""

from __future__ import annotations

from sqlmodel import select

from registry.models import Concern, Customer, Interaction
from tests.intake_kit import staff_headers


async def test_an_agent_logs_a_call_for_a_new_caller_then_a_visit_on_the_same_concern(desk):
    headers, agent = staff_headers(desk)
    found = await desk.http.post("/api/customers", json={"phone": "0049 30 1234567", "name": "Frank"}, headers=headers)
    assert found.status_code == 201
    frank = found.json()["id"]
    again = await desk.http.post("/api/customers", json={"phone": "+49 (30) 123-4567"}, headers=headers)
    assert (again.status_code, again.json()["id"]) == (200, frank)

    call = {"channel": "phone", "text": "My router blinks red since this morning.", "category": "ladder"}
    opened = await desk.http.post(f"/api/customers/{frank}/calls", json=call,
                                  headers={**headers, "Idempotency-Key": "call-1"})
    assert opened.status_code == 201, opened.text
    logged = opened.json()
    assert logged["opened"] is True
    retry = await desk.http.post(f"/api/customers/{frank}/calls", json=call,
                                 headers={**headers, "Idempotency-Key": "call-1"})
    assert retry.json()["concern_id"] == logged["concern_id"]
    concern = await desk.wait_for(logged["concern_id"], lambda c: c.level == 1)
    assert (concern.channel, concern.subject) == ("phone", "Phone call: My router blinks red since this morning.")

    visit = await desk.http.post(f"/api/customers/{frank}/calls", headers=headers, json={
        "channel": "walk_in", "text": "Brought the router to the shop.", "concern_id": logged["concern_id"]})
    assert visit.status_code == 201 and visit.json() == {
        "concern_id": logged["concern_id"], "interaction_id": visit.json()["interaction_id"], "opened": False,
        "follows": None}
    record = (await desk.http.get(f"/api/customers/{frank}", headers=headers)).json()
    said = [(t["channel"], t["body"]) for t in record["timeline"] if t["kind"] == "customer_message"]
    assert said == [("walk_in", "Brought the router to the shop."),
                    ("phone", "My router blinks red since this morning.")]
    assert all(t["meta"]["logged_by"] == agent.name for t in record["timeline"] if t["kind"] == "customer_message")
    with desk.sessions.begin() as session:
        assert len(session.exec(select(Concern)).all()) == 1


async def test_the_call_form_finds_the_customer_who_wrote_by_mail(desk):
    mailed = await desk.intake.open(email="grace@example.com", name="Grace", subject="Parcel", body="Where is it?",
                                    channel="email", category="ladder")
    headers, _ = staff_headers(desk)
    page = await desk.http.get("/customers", headers=headers)
    assert 'action="/customers/calls"' in page.text
    done = await desk.http.post("/customers/calls", headers=headers, data={
        "email": "Grace@Example.com", "channel": "walk_in", "subject": "At the counter",
        "text": "Came by to ask about the parcel <script>alert(1)</script>", "form_token": "t-1"})
    assert done.status_code == 303
    with desk.sessions.begin() as session:
        [grace] = session.exec(select(Customer)).all()
        concerns = session.exec(select(Concern).where(Concern.customer_id == grace.id)).all()
    assert done.headers["location"].startswith(f"/customers/{grace.id}?done=call_opened")
    assert {c.channel for c in concerns} == {"email", "walk_in"} and mailed.customer_id == grace.id
    shown = await desk.http.get(done.headers["location"], headers=headers)
    assert "Call logged as a new concern." in shown.text and 'title="walk-in"' in shown.text
    assert "<script>alert(1)</script>" not in shown.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text


async def test_bad_calls_are_refused_with_reasons_and_write_nothing(desk):
    headers, _ = staff_headers(desk)
    other = await desk.intake.open(email="heidi@example.com", subject="A", body="a", channel="web", category="ladder")
    ivan = (await desk.http.post("/api/customers", json={"email": "ivan@example.com"}, headers=headers)).json()["id"]
    await desk.wait_for(other.id, lambda c: c.level == 1)  # the opened concern's own rows are all written
    with desk.sessions.begin() as session:
        before = len(session.exec(select(Interaction).where(Interaction.direction == "in")).all())
    fax = await desk.http.post(f"/api/customers/{ivan}/calls", json={"channel": "fax", "text": "hi"}, headers=headers)
    assert fax.status_code == 422
    empty = await desk.http.post(f"/api/customers/{ivan}/calls", json={"channel": "phone", "text": ""}, headers=headers)
    assert empty.status_code == 422
    foreign = await desk.http.post(f"/api/customers/{ivan}/calls", headers=headers,
                                   json={"channel": "phone", "text": "hi", "concern_id": other.id})
    assert foreign.status_code == 404 and "has no concern" in foreign.json()["detail"]
    nobody = await desk.http.post("/customers/calls", headers=headers, data={"channel": "phone", "text": "hello"})
    assert nobody.status_code == 422 and "e-mail address or phone number" in nobody.text
    auditor, _ = staff_headers(desk, role="auditor", level=None)
    denied = await desk.http.post(f"/api/customers/{ivan}/calls", json={"channel": "phone", "text": "hi"},
                                  headers=auditor)
    assert denied.status_code == 403
    with desk.sessions.begin() as session:
        assert len(session.exec(select(Interaction).where(Interaction.direction == "in")).all()) == before
