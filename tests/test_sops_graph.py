"""to_mermaid: shapes per step type, labelled edges, the current step, and safe labels."""

import re

import pytest

from sops import DEFINITIONS_DIR, SopDefinition, load_sop_file, to_mermaid

ACCOUNT = load_sop_file(DEFINITIONS_DIR / "account-access.yaml")
NODE = re.compile(r"^    (step_\w+)(\[\[|\{\{|\{|\[/|\[|>|\(\[)\"")
EDGE = re.compile(r"^    (step_\w+) -->(?:\|\"([^\"]*)\"\|)? (step_\w+)$")


def _nodes_and_edges(chart: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    nodes, edges = {}, []
    for line in chart.splitlines()[1:]:
        if match := EDGE.match(line):
            edges.append((match[1], match[2] or "", match[3]))
        elif match := NODE.match(line):
            nodes[match[1]] = match[2]
    return nodes, edges


def test_every_step_is_a_node_shaped_by_its_type():
    chart = to_mermaid(ACCOUNT)
    assert chart.startswith("flowchart TD\n")
    nodes, _ = _nodes_and_edges(chart)
    assert nodes == {
        "step_kb": "[[", "step_confirm": "[/", "step_reset": "[[", "step_confirm_reset": "[/",
        "step_level1": "[", "step_level2": "[", "step_level3": "[",
        "step_survey": "{{", "step_close": "([", "step_closed_unanswered": "([",
    }
    assert 'step_level2["Identity team<br/>L2 agent #40;accounts, identity#41;, escalates after 8h"]' in chart


def test_edges_carry_outcome_names_and_join_shared_targets():
    _, edges = _nodes_and_edges(to_mermaid(ACCOUNT))
    assert ("step_kb", "answered", "step_confirm") in edges
    assert ("step_reset", "not_eligible / no_email / error", "step_level1") in edges
    assert ("step_level1", "escalated / timeout", "step_level2") in edges
    assert ("step_survey", "", "step_close") in edges
    assert len(edges) == 16


def test_decide_and_notify_shapes_and_default_edge():
    complaint = load_sop_file(DEFINITIONS_DIR / "complaint.yaml")
    nodes, edges = _nodes_and_edges(to_mermaid(complaint))
    assert nodes["step_triage"] == "{" and nodes["step_acknowledge"] == ">"
    assert ("step_triage", "default", "step_level1") in edges
    assert ("step_triage", "urgent", "step_alert_team") in edges


def test_current_step_gets_the_current_class():
    chart = to_mermaid(ACCOUNT, current="level2")
    assert "classDef current " in chart
    assert chart.splitlines()[-1] == "    class step_level2 current"
    assert "class step_kb entry" in chart
    assert " current\n" not in to_mermaid(ACCOUNT).replace("classDef current", "")
    with pytest.raises(ValueError, match="nowhere"):
        to_mermaid(ACCOUNT, current="nowhere")


def test_labels_are_escaped_and_reserved_ids_avoided():
    sop = SopDefinition.model_validate({
        "id": "odd", "title": "Odd", "sla": "standard", "start": "end",
        "steps": {
            "end": {"type": "automate", "title": 'Say "hi" [now] <b>#1</b> {x} |y| (z)', "action": "a",
                    "outcomes": {"ok|go": "end-2"}},
            "end-2": {"type": "end"},
            "end_2": {"type": "end"},
        },
    })
    chart = to_mermaid(sop)
    first = chart.splitlines()[1]
    assert first == ('    step_end[["Say #quot;hi#quot; #91;now#93; #lt;b#gt;#35;1#lt;/b#gt; '
                     '#123;x#125; #124;y#124; #40;z#41;<br/>automate: a"]]')
    assert '-->|"ok#124;go"| step_end_2' in chart
    nodes, _ = _nodes_and_edges(chart)
    assert set(nodes) == {"step_end", "step_end_2", "step_end_2_2"}


def test_missing_targets_are_drawn_as_missing():
    sop = SopDefinition.model_validate({
        "id": "gap", "title": "Gap", "sla": "standard", "start": "l1",
        "steps": {"l1": {"type": "human", "level": 1, "outcomes": {"resolved": "done", "escalated": "l9"}},
                  "done": {"type": "end"}},
    })
    chart = to_mermaid(sop)
    assert 'step_l9["l9<br/>missing step"]:::missing' in chart
    assert '    step_l1 -->|"escalated"| step_l9' in chart


def test_every_edge_joins_declared_nodes_for_every_shipped_sop():
    for path in DEFINITIONS_DIR.glob("*.yaml"):
        if path.name == "sla.yaml":
            continue
        sop = load_sop_file(path)
        nodes, edges = _nodes_and_edges(to_mermaid(sop))
        assert len(nodes) == len(sop.steps)
        assert all(a in nodes and b in nodes for a, _, b in edges)
        assert len(edges) == sum(len(sop.targets(sid)) for sid in sop.steps)
