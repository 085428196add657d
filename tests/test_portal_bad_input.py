"""Bad input on the portal is refused with a clear reason and leaves nothing half-written."""

from __future__ import annotations

import pytest
from sqlmodel import select

from registry.attachments import Attachment, StoredFile
from registry.models import Concern, Interaction
from registry.ratings import Rating
from tests.intake_kit import act, csrf_of, open_in_portal, signed_in, staff_headers


@pytest.fixture
def desk(desk_on_both):
    """Every test here runs on SQLite and on PostgreSQL (files, raw mail and ratings use upserts that differ)."""
    return desk_on_both


def counts(desk) -> tuple[int, int, int]:
    with desk.sessions.begin() as session:
        return tuple(len(session.exec(select(m)).all()) for m in (Concern, Attachment, StoredFile))


async def test_bad_concern_forms_are_refused_with_reasons_and_store_nothing(desk):
    desk.settings.max_attachment_bytes = 1000
    client = await signed_in(desk, "alice@example.com")
    big = await open_in_portal(client, files=[("attachments", ("photo.png", b"\x89PNG" + b"0" * 2000, "image/png"))])
    assert big.status_code == 422 and "photo.png: the file has 2,004 bytes; the limit is 1,000" in big.text
    exe = await open_in_portal(client, files=[
        ("attachments", ("notes.txt", b"fine", "text/plain")),
        ("attachments", ("setup.exe", b"MZ", "application/octet-stream"))])
    assert exe.status_code == 422 and "setup.exe: files of type .exe are not accepted" in exe.text
    page = await open_in_portal(client, files=[("attachments", ("page.html", b"<script>x</script>", "text/html"))])
    assert page.status_code == 422 and "files of type text/html are not accepted" in page.text
    empty = await open_in_portal(client, subject="  ", body="")
    assert empty.status_code == 422
    assert "Give a subject of 1 to 300 characters." in empty.text and "Describe your concern" in empty.text
    unknown = await open_in_portal(client, category="free-money")
    assert unknown.status_code == 422 and "Choose one of the listed categories." in unknown.text
    no_token = await client.post("/portal/concerns/new", data={"subject": "x", "body": "y"})
    assert no_token.status_code == 403
    desk.settings.max_message_bytes = 5000
    huge = await open_in_portal(client, files=[("attachments", ("a.pdf", b"%PDF" + b"0" * 6000, "application/pdf"))])
    assert huge.status_code == 413 and "all files together may have 5,000" in huge.json()["detail"]
    assert counts(desk) == (0, 0, 0)
    # The refused form comes back filled in, so nothing the customer typed is lost.
    assert 'value="Printer jams"' in big.text and "It jams." in big.text


async def test_a_resubmitted_form_opens_one_concern_and_text_is_shown_escaped(desk):
    client = await signed_in(desk, "alice@example.com")
    subject = "<script>alert('x')</script> jams"
    files = [("attachments", ("a.txt", b"log line", "text/plain"))]
    first = await open_in_portal(client, subject=subject, files=files)
    second = await open_in_portal(client, subject=subject, files=files)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert counts(desk)[:2] == (1, 1)
    page = await client.get(first.headers["location"])
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; jams" in page.text


async def test_replies_and_ratings_are_checked_and_a_concern_is_rated_once(desk):
    client = await signed_in(desk, "alice@example.com")
    cid = (await open_in_portal(client)).headers["location"].rsplit("/", 1)[-1]
    token = await csrf_of(client, f"/portal/concerns/{cid}")
    blank = await client.post(f"/portal/concerns/{cid}/messages", data={"text": " ", "csrf_token": token})
    assert blank.status_code == 422 and "Write a message first." in blank.text
    early = await client.post(f"/portal/concerns/{cid}/rating", data={"csat": "5", "csrf_token": token})
    assert early.status_code == 422 and "once the concern is resolved" in early.text

    _, agent = staff_headers(desk, level=3)
    await desk.wait_for(cid, lambda c: c.level == 3, timeout=30)
    await act(desk, cid, "claim", agent)
    await act(desk, cid, "resolve", agent, text="Cleaned the rollers.")
    await desk.wait_for(cid, lambda c: c.status == "resolved")
    for bad, reason in (({"csat": "9"}, "from 1 to 5"), ({"csat": "4", "nps": "11"}, "from 0 to 10"),
                        ({"csat": "4", "comment": "x" * 2001}, "under 2,000 characters")):
        refused = await client.post(f"/portal/concerns/{cid}/rating", data={**bad, "csrf_token": token})
        assert refused.status_code == 422 and reason in refused.text
    rated = await client.post(f"/portal/concerns/{cid}/rating",
                              data={"csat": "4", "nps": "8", "comment": "Good", "csrf_token": token})
    assert rated.status_code == 303
    again = await client.post(f"/portal/concerns/{cid}/rating", data={"csat": "1", "csrf_token": token})
    assert again.status_code == 409 and "rated already" in again.text
    concern = await desk.wait_for(cid, lambda c: c.csat is not None)
    assert (concern.csat, concern.nps) == (4, 8)
    with desk.sessions.begin() as session:
        assert [(r.csat, r.nps, r.comment) for r in session.exec(select(Rating))] == [(4, 8, "Good")]
        ratings = session.exec(select(Interaction).where(Interaction.kind == "rating")).all()
    assert len(ratings) == 1
