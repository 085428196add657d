"""The staff audit log: every audited action appears with who, when and from where; the chain names any edited,
deleted or inserted row; only auditors and admins read it (API, CSV and page), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io

import httpx
import sqlalchemy as sa

from api.audit_verify import verify
from api.security import hash_password
from registry import audit, chain
from registry import customers as crm
from registry.knowledge import create_article
from tests.test_audit_verify import ccr
from tests.web_support import PASSWORD, Agent, csrf_of, make_staff, publish_workspace_sop


def _write(sessions, n: int) -> None:
    for i in range(n):
        with sessions.begin() as session:
            audit.record(session=session, actor=f"p{i % 3}@desk.test", action="user.updated",
                         target=f"user:u{i}@desk.test", detail={"role": ["agent", "lead"], "n": i}, ip="10.0.0.9",
                         user_agent="tests")


def _problems(sessions) -> list[str]:
    with sessions.read() as session:
        return [f"{p['row']}: {p['problem']}" for p in audit.check_audit_chain(session=session)]


def test_the_chain_names_an_edited_a_deleted_and_an_inserted_row(sessions):
    _write(sessions, 6)
    assert _problems(sessions) == []
    with sessions.begin() as session:
        db = session.connection()
        db.execute(sa.text("UPDATE auditentry SET actor = 'someone-else@desk.test' WHERE seq = 3"))
    assert any(p.startswith("audit log row #3 (user.updated by someone-else@desk.test") and "it was edited" in p
               for p in _problems(sessions)), _problems(sessions)
    with sessions.begin() as session:
        session.connection().execute(sa.text("UPDATE auditentry SET actor = 'p2@desk.test' WHERE seq = 3"))
    assert _problems(sessions) == []

    with sessions.begin() as session:
        kept = dict(session.connection().execute(sa.text("SELECT * FROM auditentry WHERE seq = 4")).mappings().one())
        session.connection().execute(sa.text("DELETE FROM auditentry WHERE seq = 4"))
    found = _problems(sessions)
    assert "audit log rows #4..#4: missing: deleted from the log" in found
    assert any(p.startswith("audit log row #5") and "link to the previous row is broken" in p for p in found)
    with sessions.begin() as session:
        kept["detail"] = chain.canonical(kept["detail"]) if isinstance(kept["detail"], dict) else kept["detail"]
        session.connection().execute(sa.text(
            "INSERT INTO auditentry (id, seq, at, actor, action, target, detail, ip, user_agent, prev_hash, row_hash) "
            "VALUES (:id, :seq, :at, :actor, :action, :target, :detail, :ip, :user_agent, :prev_hash, :row_hash)"),
            kept)
    assert _problems(sessions) == []

    # Inserted at the end, hashed by someone who knows the scheme: the chain's head still names the real last row.
    with sessions.begin() as session:
        last = audit.audit_rows(session=session)[-1]
        forged = {**{k: last[k] for k in chain.AUDIT_FIELDS}, "seq": 7, "action": "user.created"}
        forged["row_hash"] = chain.row_hash(chain.audit_content(forged), last["row_hash"])
        session.connection().execute(sa.insert(audit.AuditEntry.__table__).values(**forged,
                                                                                  prev_hash=last["row_hash"]))
    assert any(p.startswith("audit log row #7") and "head names row #6" in p for p in _problems(sessions))


def test_parallel_writers_keep_one_unbroken_chain(sessions):
    async def main():
        await asyncio.gather(*(asyncio.to_thread(_write, sessions, 5) for _ in range(4)))

    asyncio.run(main())
    with sessions.read() as session:
        rows = audit.audit_rows(session=session)
    assert [r["seq"] for r in rows] == list(range(1, 21))
    assert _problems(sessions) == []


async def test_every_audited_staff_action_appears_in_the_log(desk_on_both):
    desk = desk_on_both
    publish_workspace_sop(desk.sessions)
    lead = make_staff(desk.sessions, "lead@desk.test", "lead", level=3, name="Lena")
    agent = make_staff(desk.sessions, "agent@desk.test", "agent", level=1, name="Ada")
    make_staff(desk.sessions, "owner@desk.test", "process_owner", name="Owen")
    make_staff(desk.sessions, "auditor@desk.test", "auditor", name="Aud")
    with desk.sessions.begin() as session:
        customer, _ = crm.find_or_create_customer(session=session, email="cus@example.com", name="Cus")
        customer.password_hash = hash_password(PASSWORD)
        article = create_article(session=session, title="Reset a password", body="Use the link.",
                                 owner_email="agent@desk.test").id
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app), base_url="http://desk",
                             headers={"User-Agent": "AuditTest/1.0"})
    page = await http.get("/login")
    failed = await http.post("/login", data={"email": "lead@desk.test", "password": "wrong-password",
                                             "csrf_token": csrf_of(page.text)})
    assert failed.status_code == 401
    portal = await http.get("/portal/login")
    await http.post("/portal/login", data={"email": "cus@example.com", "password": "nope-nope",
                                           "csrf_token": csrf_of(portal.text)})
    await http.post("/portal/login", data={"email": "cus@example.com", "password": PASSWORD,
                                           "csrf_token": csrf_of(portal.text)})
    await http.aclose()

    assert ccr(desk, "user", "update", "--email", "agent@desk.test", "--level", "2", "--skills", "general,billing"
               ).returncode == 0
    made = ccr(desk, "token", "create", "--email", "agent@desk.test", "--name", "shop")
    assert made.returncode == 0
    listed = ccr(desk, "token", "list", "--email", "agent@desk.test").stdout.split("\t")[0]
    assert ccr(desk, "token", "revoke", listed).returncode == 0

    async with Agent(desk, "owner@desk.test") as owner:
        published = await owner.http.post(f"/kb/articles/{article}/publish", data={"csrf_token": owner.token})
        assert published.status_code in (200, 303), published.text
    concern = await desk.intake.open(email="cus@example.com", name="Cus", subject="Locked out", body="Help",
                                     channel="web", category="workspace")
    await desk.wait_for(concern.id, lambda c: c.level == 1)
    async with Agent(desk, "lead@desk.test") as leader:
        assigned = await leader.act(concern.id, "assign", assignee_id=str(agent["id"]))
        assert assigned.status_code == 303, assigned.text
        moved = await leader.act(concern.id, "move", step="level2", reason="needs an expert")
        assert moved.status_code == 303, moved.text
    async with Agent(desk, "auditor@desk.test") as auditor:
        exported = await auditor.http.get("/api/audit.csv")
        assert exported.status_code == 200
    await verify(sessions=desk.sessions, client=desk.client, actor="auditor@desk.test", concern_id=concern.id)

    response = await desk.http.get("/api/audit", params={"limit": 200}, headers=desk.auth)
    assert response.status_code == 200
    log = response.json()["items"]
    by_action = {}
    for e in log:
        by_action.setdefault(e["action"], []).append(e)
    failed_in = by_action["staff.sign_in_failed"][0]
    assert failed_in["actor"] == "lead@desk.test" and failed_in["ip"] == "127.0.0.1"
    assert failed_in["user_agent"] == "AuditTest/1.0"
    assert {e["actor"] for e in by_action["staff.sign_in"]} >= {"owner@desk.test", "lead@desk.test",
                                                                "auditor@desk.test"}
    assert by_action["customer.sign_in_failed"][0]["actor"] == "cus@example.com"
    assert by_action["customer.sign_in"][0]["actor"] == "cus@example.com"
    update = by_action["user.updated"][0]
    assert update["target"] == "user:agent@desk.test" and update["actor"].startswith("cli:")
    assert update["detail"] == {"level": [1, 2], "skills": [["general"], ["general", "billing"]]}
    assert by_action["token.created"][0]["detail"]["name"] == "shop"
    assert by_action["token.revoked"][0]["detail"]["name"] == "shop"
    assert by_action["kb.published"][0]["actor"] == "owner@desk.test"
    assert by_action["kb.published"][0]["target"] == f"article:{article}"
    assigned = by_action["concern.assigned"][0]
    assert assigned["actor"] == "lead@desk.test" and assigned["detail"]["to"] == "Ada"
    assert assigned["target"] == f"concern:{concern.id}"
    assert by_action["concern.moved"][0]["detail"] == {"from": "level1", "to": "level2", "reason": "needs an expert"}
    assert by_action["audit.exported"][0]["actor"] == "auditor@desk.test"
    assert by_action["audit.verified"][0]["detail"]["ok"] is True
    assert {"user.created"} <= set(by_action)

    # Filters and the cursor: a person's entries, page by page, newest first.
    first = (await desk.http.get("/api/audit", params={"actor": "lead@", "limit": 2}, headers=desk.auth)).json()
    rest = (await desk.http.get("/api/audit", params={"actor": "lead@", "cursor": first["next_cursor"]},
                                headers=desk.auth)).json()
    seqs = [e["seq"] for e in first["items"] + rest["items"]]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == len(set(seqs)) >= 4
    assert all(e["actor"] == "lead@desk.test" for e in first["items"] + rest["items"])
    kb = (await desk.http.get("/api/audit", params={"action": "kb."}, headers=desk.auth)).json()["items"]
    assert [e["action"] for e in kb] == ["kb.published"]
    rows = list(csv.DictReader(io.StringIO((await desk.http.get("/api/audit.csv", params={"action": "concern."},
                                                                 headers=desk.auth)).text)))
    assert [r["action"] for r in rows] == ["concern.moved", "concern.assigned"]
    assert all(chain.row_hash(chain.audit_content(r), r["prev_hash"]) == r["row_hash"] for r in rows)


async def test_only_auditors_and_admins_read_the_log(desk):
    people = {role: make_staff(desk.sessions, f"{role}@roles.test", role, level=1 if role in ("agent", "lead") else None)
              for role in ("agent", "lead", "process_owner", "sre", "auditor")}
    for role in people:
        async with Agent(desk, f"{role}@roles.test") as person:
            page = await person.http.get("/audit")
            api = await person.http.get("/api/audit")
            csv_file = await person.http.get("/api/audit.csv")
            bundle = await person.http.post("/audit/bundle", data={"csrf_token": person.token, "from": "2026-01-01",
                                                                   "to": "2026-01-02"})
            if role == "auditor":
                assert page.status_code == api.status_code == csv_file.status_code == 200
                assert "Staff audit log" in page.text and bundle.status_code == 200
                assert bundle.headers["content-type"] == "application/zip"
            else:
                assert (page.status_code, api.status_code, csv_file.status_code, bundle.status_code) == \
                    (403, 403, 403, 403), role
                assert "it needs one of: admin, auditor" in page.text
    anonymous = await desk.http.get("/audit")
    assert anonymous.status_code == 302 and anonymous.headers["location"].startswith("/login")
    assert (await desk.http.get("/api/audit")).status_code == 401
