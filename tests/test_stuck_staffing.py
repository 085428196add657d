"""Unstaffed steps are named on publishing and marked for leads; leads move concerns from the concern page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from api.demo import STAFF
from api.security import create_user
from registry.sop_store import staffing_warnings, unstaffed_steps
from sops.loader import load_definitions
from tests.web_support import Agent, make_staff

ROOT = Path(__file__).parent.parent


def test_the_demo_staff_can_take_every_human_step_of_the_shipped_sops():
    desk = [(level, skills) for _, _, role, level, skills in STAFF if role in ("agent", "lead")]
    assert [w for d in load_definitions().values() for w in unstaffed_steps(d, desk)] == []


def test_publishing_warns_about_steps_no_active_agent_can_take(sessions):
    complaint = load_definitions()["complaint"]
    with sessions.begin() as session:
        create_user(session=session, email="ann@desk.test", password="long-enough", role="agent", level=3,
                    skills=["general"])
        gone = create_user(session=session, email="cy@desk.test", password="long-enough", role="agent", level=3,
                           skills=["complaints"])
        gone.active = False
        create_user(session=session, email="aud@desk.test", password="long-enough", role="auditor")
    with sessions.begin() as session:
        warnings = staffing_warnings(session=session, definitions=[complaint])
    assert warnings == [
        "complaint: step 'level1' (Customer care) needs an agent of level 1 with the skills complaints, "
        "and no active agent can take it",
        "complaint: step 'level2' (Complaints team) needs an agent of level 2 with the skills complaints, "
        "and no active agent can take it",
    ]


def test_ccr_sop_publish_prints_the_warning(tmp_path):
    data = str(tmp_path / "var")

    def ccr(*args):
        return subprocess.run([sys.executable, "-m", "ccr", *args, "--data", data], capture_output=True, text=True,
                              timeout=120, cwd=ROOT, env={**os.environ, "CCR_NEW_PASSWORD": "long-enough"})

    assert ccr("user", "add", "--email", "ann@desk.test", "--role", "agent", "--level", "3",
               "--skills", "general").returncode == 0
    published = ccr("sop", "publish", str(ROOT / "sops/definitions/complaint.yaml"))
    assert published.returncode == 0 and "complaint v1 published" in published.stdout
    assert ("warning: complaint: line 42, step 'level2': no active agent has the skill 'complaints'; nobody can "
            "take this step") in published.stderr.splitlines()


async def _complaint_at_level2(desk):
    concern = await desk.intake.open(email="cal@example.com", name="Cal", subject="Rude driver",
                                     body="The driver threw my parcel over the fence.", channel="web",
                                     category="complaint", priority="high")
    return await desk.wait_for(concern.id, lambda c: c.step == "level2")


async def test_leads_see_concerns_no_agent_can_take_marked_in_their_queue(desk):
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, skills=["general"], name="Lee")
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, skills=["general"], name="Ada")
    concern = await _complaint_at_level2(desk)
    async with Agent(desk, "lee@desk.test") as lee:
        queue = await lee.http.get("/queue")
        row = queue.text.split(f'id="row-{concern.id}"', 1)[1].split("</tr>", 1)[0]
        assert "no agent can take this step" in row
        page = await lee.http.get(f"/concerns/{concern.id}")
        assert "No active agent can take this step: it needs level 2 with the skills complaints." in page.text
    make_staff(desk.sessions, "bo@desk.test", "agent", level=2, skills=["complaints"], name="Bo")
    async with Agent(desk, "lee@desk.test") as lee:
        queue = await lee.http.get("/queue")
        row = queue.text.split(f'id="row-{concern.id}"', 1)[1].split("</tr>", 1)[0]
        assert "no agent can take this step" not in row


async def test_a_lead_moves_a_concern_from_the_concern_page_and_an_agent_is_not_offered_it(desk):
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, skills=["general"], name="Lee")
    make_staff(desk.sessions, "ada@desk.test", "agent", level=1, skills=["general", "complaints"], name="Ada")
    concern = await _complaint_at_level2(desk)
    async with Agent(desk, "ada@desk.test") as ada:
        assert 'id="form-move"' not in (await ada.http.get(f"/concerns/{concern.id}")).text
        refused = await ada.act(concern.id, "move", step="level1", reason="mine")
        assert refused.status_code == 409 and "only a lead or an admin can move" in refused.text
    async with Agent(desk, "lee@desk.test") as lee:
        page = (await lee.http.get(f"/concerns/{concern.id}")).text
        form = page.split('id="form-move"', 1)[1].split("</form>", 1)[0]
        assert '<option value="level1"' in form and '<option value="level2"' not in form  # not where it is
        missing = await lee.act(concern.id, "move", step="level1", reason="")
        assert missing.status_code == 409 and "give a reason for the move" in missing.text
        moved = await lee.act(concern.id, "move", step="level1", reason="Ada handles complaints this week")
        assert moved.status_code == 303
    c = await desk.wait_for(concern.id, lambda c: c.step == "level1")
    assert c.level == 1
    async with Agent(desk, "lee@desk.test") as lee:
        page = (await lee.http.get(f"/concerns/{concern.id}")).text
        assert "Moved from &#39;level2&#39; to &#39;level1&#39; by Lee: Ada handles complaints this week" in page
