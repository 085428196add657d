"""chart_graph and steps_passed: the graph every page's flow chart draws, and the steps a concern went through."""

from __future__ import annotations

import json
from types import SimpleNamespace

from sops import DEFINITIONS_DIR, SopDefinition, load_definitions, load_sop_file
from sops.graph import chart_graph, steps_passed
from tests.engine_support import open_concern
from tests.web_support import Agent, make_staff

COMPLAINT = load_sop_file(DEFINITIONS_DIR / "complaint.yaml")
GENERAL = load_sop_file(DEFINITIONS_DIR / "general-inquiry.yaml")


def entry(kind: str, body: str = "", **meta):
    return SimpleNamespace(kind=kind, body=body, meta=meta)


def test_every_step_and_outcome_of_every_shipped_sop_is_in_the_graph_with_its_full_title():
    for sop in load_definitions().values():
        graph = chart_graph(sop)
        json.dumps(graph)  # the page embeds it as JSON
        nodes = {n["id"]: n for n in graph["nodes"]}
        assert list(nodes) == list(sop.steps)
        for sid, step in sop.steps.items():
            node = nodes[sid]
            if step.title:
                assert node["label"] == step.title
            assert node["type"] == step.type and node["start"] == (sid == sop.start)
            assert node["details"][0] == ["type", node["details"][0][1]] and node["summary"]
            assert [(o["outcome"], o["target"]) for o in node["outcomes"]] == step.edges()
            for label, target in step.edges():
                edge = next(e for e in graph["edges"] if (e["source"], e["target"]) == (sid, target))
                assert label in edge["outcomes"] and (not label or label in edge["label"])
        assert len(graph["edges"]) == sum(len(sop.targets(sid)) for sid in sop.steps)
        assert not any(n["visited"] or n["current"] for n in graph["nodes"])


def test_long_titles_and_untitled_steps_keep_every_word():
    nodes = {n["id"]: n for n in chart_graph(GENERAL)["nodes"]}
    assert nodes["confirm_order"]["label"] == "Send the order status and ask if that answers it"
    assert nodes["ask_details"]["label"] == "Ask the customer for details"
    assert nodes["done"]["label"] == "Done"  # no title: the id in words
    assert nodes["level1"]["summary"] == "L1 agent (general), 4h"
    assert dict(map(tuple, nodes["level1"]["details"])) == {
        "type": "agent queue", "level": "L1", "skills": "general", "escalates after": "4h"}
    assert dict(map(tuple, nodes["ask_details"]["details"]))["at most"] == "1 visit, then acknowledge"
    edge = next(e for e in chart_graph(GENERAL)["edges"] if e["id"] == "order_lookup->acknowledge")
    assert edge["label"] == "not_found / unavailable"


def test_passed_steps_mark_the_visited_steps_and_the_edges_taken():
    passed = ["classify", "acknowledge", "triage", "alert_team", "level2"]
    graph = chart_graph(COMPLAINT, current="level2", passed=passed)
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert graph["visited"] == passed
    assert [n["id"] for n in graph["nodes"] if n["current"]] == ["level2"]
    assert nodes["triage"]["visited"] and nodes["acknowledge"]["visited"] and not nodes["level1"]["visited"]
    taken = {e["id"] for e in graph["edges"] if e["visited"]}
    assert taken == {"classify->acknowledge", "acknowledge->triage", "triage->alert_team", "alert_team->level2"}


def test_marks_for_compare_views_and_missing_targets():
    sop = SopDefinition.model_validate({
        "id": "gap", "title": "Gap", "sla": "standard", "start": "l1",
        "steps": {"l1": {"type": "human", "level": 1, "outcomes": {"resolved": "done", "escalated": "l9"}},
                  "done": {"type": "end"}},
    })
    graph = chart_graph(sop, marks={"l1": "changed", "done": "added"})
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert (nodes["l1"]["mark"], nodes["done"]["mark"]) == ("changed", "added")
    assert nodes["l9"]["type"] == "missing" and nodes["l9"]["summary"] == "missing step"
    assert {e["id"] for e in graph["edges"]} == {"l1->done", "l1->l9"}


def test_steps_passed_reads_decide_notify_and_survey_entries_and_older_ones_without_a_step():
    timeline = [
        entry("opened"), entry("customer_message"),
        entry("step", step="classify", type="automate"), entry("automated"),
        entry("notice", "Sent 'complaint_received' to the customer", step="acknowledge"),
        entry("decided", "priority is urgent: to alert_team", step="triage"),
        # Written before notify and survey entries carried their step:
        entry("team_notice", "Sent 'complaint_received' to the team", template="complaint_received"),
        entry("step", step="level2", type="human"), entry("claimed"),
        entry("step", step="acknowledge", type="notify"),  # a lead moved it there
        entry("notice", "Sent 'complaint_received' to the customer"),
        entry("survey", "Asked the customer to rate the service"),
        entry("step", step="close", type="end"),
    ]
    assert steps_passed(COMPLAINT, timeline) == ["classify", "acknowledge", "triage", "alert_team", "level2",
                                                 "acknowledge", "acknowledge", "survey", "close"]
    bounded = [entry("step", step="ask_details"), entry("bounded", step="ask_details", to="acknowledge"),
               entry("notice", "Sent 'acknowledge' to the customer", step="acknowledge")]
    passed = steps_passed(GENERAL, bounded)
    graph = chart_graph(GENERAL, passed=passed)
    assert "ask_details->acknowledge" in {e["id"] for e in graph["edges"] if e["visited"]}


async def test_a_concern_marks_the_decide_and_notify_steps_it_passed_on_its_page(desk):
    make_staff(desk.sessions, "lee@desk.test", "lead", level=3, skills=("complaints",), name="Lee")
    concern = await open_concern(desk, category="complaint", priority="urgent", subject="Broken on arrival",
                                 body="The kettle arrived broken and I want my money back.")
    await desk.wait_for(concern.id, lambda c: c.step == "level2")
    from registry import concerns as store

    with desk.sessions.read() as session:
        timeline = store.timeline(session=session, concern_id=concern.id)
    passed = steps_passed(COMPLAINT, timeline)
    assert passed == ["classify", "acknowledge", "triage", "alert_team", "level2"]

    # Without JavaScript the page lists every step and outcome, marks what the concern passed, and carries the graph.
    async with Agent(desk, "lee@desk.test") as lee:
        page = (await lee.http.get(f"/concerns/{concern.id}")).text
    assert 'class="sop-chart-data"' in page and "/static/elk-0.12.1.bundled.js" in page
    for sid in ("acknowledge", "triage", "alert_team"):
        assert f'class="step type-{COMPLAINT.steps[sid].type} visited" data-step="{sid}"' in page
    assert 'class="step type-human visited current" data-step="level2"' in page
    assert 'class="step type-human" data-step="level1"' in page
    for step in COMPLAINT.steps.values():
        if step.title:
            assert f"<strong>{step.title}</strong>" in page
    assert "urgent → Alert the complaints team" in page


def test_compare_graph_marks_added_removed_and_changed_steps_and_edges():
    from sops.graph import compare_graph

    old = GENERAL.model_dump(mode="json")
    new = json.loads(json.dumps(old))
    del new["steps"]["level2"]
    new["steps"]["level1"]["outcomes"] = {"resolved": "survey", "escalated": "specialist", "timeout": "specialist"}
    new["steps"]["specialist"] = {"type": "human", "title": "Specialists", "level": 3, "outcomes": {"resolved": "survey"}}
    graph = compare_graph(old, new)
    marks = {n["id"]: n["mark"] for n in graph["nodes"] if n["mark"]}
    assert marks == {"level1": "changed", "specialist": "added", "level2": "removed"}
    edges = {e["id"]: e["mark"] for e in graph["edges"] if e["mark"]}
    assert edges == {"level1->specialist": "added", "specialist->survey": "added", "level1->level2": "removed",
                     "level2->survey": "removed"}
    assert len(graph["nodes"]) == len(GENERAL.steps) + 1
