"""validate_sop: each kind of problem, named with its step, and all of them reported together."""

from pathlib import Path

import pytest
import yaml

from sops import KNOWN_ACTIONS, KNOWN_TEMPLATES, Problem, SopDefinition, load_definitions, load_policies, validate_sop

CATALOG = {"actions": KNOWN_ACTIONS, "templates": KNOWN_TEMPLATES, "policies": {"standard", "premium"}}


def sop(start: str | None = None, **steps) -> dict:
    """A small SOP whose start is the first step given."""
    return {"id": "t", "title": "Test", "sla": "standard", "start": start or next(iter(steps)), "steps": steps}


def human(level=1, **outcomes):
    return {"type": "human", "level": level, "outcomes": outcomes}


END = {"type": "end"}
STEP_TYPES = "automate, decide, human, ask_customer, notify, survey, end"


def reasons(definition, **catalog) -> set[tuple[str | None, str]]:
    return {(p.step, p.reason) for p in validate_sop(definition, **catalog)}


def test_a_good_small_sop_has_no_problems():
    definition = sop(l1=human(resolved="done", escalated="l2"), l2=human(2, resolved="done"), done=END)
    assert validate_sop(definition, **CATALOG) == []


def test_shipped_sops_validate_cleanly():
    policies = set(load_policies())
    for definition in load_definitions().values():
        assert validate_sop(definition, actions=KNOWN_ACTIONS, templates=KNOWN_TEMPLATES, policies=policies) == []
        assert validate_sop(definition.model_dump(mode="json"), **CATALOG) == []


def test_problem_reads_with_its_step():
    assert str(Problem("level1", "target 'level9' does not exist")) == "step 'level1': target 'level9' does not exist"
    assert str(Problem(None, "there is no end step")) == "there is no end step"


def test_unknown_step_type():
    found = reasons(sop(a={"type": "teleport", "next": "done"}, done=END))
    assert ("a", f"unknown step type 'teleport' (expected one of {STEP_TYPES})") in found


def test_bad_duration_is_named_with_its_field():
    found = reasons(sop(a={"type": "ask_customer", "message": "ask_details", "wait": "soon",
                           "outcomes": {"replied": "done", "no_reply": "done"}}, done=END))
    assert found == {("a", "wait: 'soon' is not a duration; use seconds or a form like 30s, 15m, 2h, 3d, 1h30m")}


def test_missing_and_unknown_fields():
    found = reasons(sop(a={"type": "automate", "outcomes": {"ok": "done"}, "colour": "red"}, done=END))
    assert ("a", "missing field 'action'") in found
    assert ("a", "unknown field 'colour'") in found
    assert (None, "missing field 'title'") in reasons({k: v for k, v in sop(done=END).items() if k != "title"})


def test_unknown_action_and_template_suggest_a_near_name():
    found = reasons(
        sop(a={"type": "automate", "action": "kb_anwser", "outcomes": {"answered": "b"}},
            b={"type": "notify", "template": "acknowledgement", "next": "done"}, done=END),
        **CATALOG,
    )
    assert found == {("a", "unknown action 'kb_anwser' (did you mean 'kb_answer'?)"),
                     ("b", "unknown template 'acknowledgement' (did you mean 'acknowledge'?)")}


def test_catalog_checks_are_skipped_when_no_catalog_is_given():
    assert validate_sop(sop(a={"type": "automate", "action": "anything", "outcomes": {"ok": "done"}}, done=END)) == []


def test_unknown_sla_policy():
    assert reasons({**sop(done=END), "sla": "gold"}, **CATALOG) == {(None, "unknown SLA policy 'gold'")}


def test_start_step_missing():
    assert (None, "start step 'begin' does not exist") in reasons(sop("begin", done=END))


def test_dangling_target():
    problems = validate_sop(sop(level1=human(resolved="done", escalated="level9"), done=END))
    assert [str(p) for p in problems] == ["step 'level1': target 'level9' does not exist"]


def test_unreachable_step():
    assert reasons(sop(l1=human(resolved="done"), orphan=human(resolved="done"), done=END)) == {
        ("orphan", "unreachable from the start step")}


def test_loop_without_waiting_step():
    found = reasons(sop(
        a={"type": "automate", "action": "classify", "outcomes": {"again": "b", "ok": "done"}},
        b={"type": "decide", "on": "priority", "cases": {"urgent": "done"}, "default": "c"},
        c={"type": "notify", "template": "acknowledge", "next": "a"},
        done=END,
    ))
    assert found == {("a", "loop a -> b -> c -> a has no waiting step (human, ask_customer or survey)")}


def test_self_loop_of_an_automate_step():
    retry = {"type": "automate", "action": "order_status", "outcomes": {"retry": "a", "ok": "done"}}
    found = reasons(sop(a=retry, done=END))
    assert found == {("a", "loop a -> a has no waiting step (human, ask_customer or survey)")}


def _ask_loop(**bound) -> dict:
    """classify -> unclear -> ask -> replied -> classify: the loop that asked the same question forever."""
    return sop(
        a={"type": "automate", "action": "classify", "outcomes": {"classified": "l1", "unclear": "ask"}},
        ask={"type": "ask_customer", "message": "ask_details", "wait": "2d",
             "outcomes": {"replied": "a", "no_reply": "done"}, **bound},
        l1=human(resolved="done", escalated="l1"),
        done=END,
    )


def test_a_waiting_loop_without_a_person_or_a_bound_is_refused():
    assert reasons(_ask_loop(), **CATALOG) == {
        ("a", "loop a -> ask -> a can repeat forever without a person: give one of its steps max_visits and "
              "on_max_visits, or lead it through a human step")}


def test_a_bounded_waiting_loop_is_fine():
    assert validate_sop(_ask_loop(max_visits=2, on_max_visits="l1"), **CATALOG) == []


def test_a_loop_through_a_human_step_needs_no_bound():
    definition = sop(
        ask={"type": "ask_customer", "message": "ask_details", "wait": "2d",
             "outcomes": {"replied": "l1", "no_reply": "done"}},
        l1=human(resolved="done", escalated="ask"),
        done=END,
    )
    assert validate_sop(definition, **CATALOG) == []


def test_a_bound_needs_both_fields_a_step_it_can_bound_and_an_existing_target():
    assert reasons(_ask_loop(max_visits=2)) >= {
        ("ask", "max_visits and on_max_visits go together: the bound and where to go when it is reached")}
    assert ("ask", "target 'nowhere' does not exist") in reasons(_ask_loop(max_visits=2, on_max_visits="nowhere"))
    assert ("ask", "max_visits: Input should be greater than or equal to 1") in reasons(
        _ask_loop(max_visits=0, on_max_visits="l1"))
    bounded_human = sop(l1={**human(resolved="done"), "max_visits": 1, "on_max_visits": "done"}, done=END)
    assert reasons(bounded_human) == {("l1", "max_visits bounds automated and waiting steps; a human step needs no bound")}


def test_a_bound_changes_the_hash_but_unbounded_sops_keep_the_hash_they_had_before_bounds_existed():
    bounded = SopDefinition.model_validate(_ask_loop(max_visits=2, on_max_visits="l1"))
    assert bounded.content_hash() != SopDefinition.model_validate(_ask_loop()).content_hash()
    # A complaint SOP without a bound, kept as it was published before bounds existed, keeps that version's hash.
    before = SopDefinition.model_validate(yaml.safe_load((Path(__file__).parent / "complaint_before_bounds.yaml")
                                                         .read_text()))
    assert before.content_hash() == "49d98449eb24d8a33a0bf589b17eaf7ea5f1aa17528f15d4595557becfea7aed"


def test_human_step_without_a_way_out():
    found = reasons(sop(a={"type": "automate", "action": "classify", "outcomes": {"ok": "l1", "done": "done"}},
                        l1=human(resolved="l1"), done=END))
    assert ("l1", "a human step without any way out: every outcome leads back to it") in found
    assert ("l1", "no end step can be reached from here") in found


def test_escalation_timer_needs_somewhere_to_go():
    found = reasons(sop(l1={**human(resolved="done"), "escalate_after": "2h"}, done=END))
    assert found == {("l1", "escalate_after is set but there is no 'timeout' or 'escalated' outcome")}


def test_customer_reply_needs_somewhere_to_go():
    step = {"type": "ask_customer", "message": "ask_details", "wait": "1d",
            "outcomes": {"solved": "done", "no_reply": "done"}}
    found = reasons(sop(a=step, done=END))
    assert found == {("a", "a reply has nowhere to go: give 'replied', or both 'solved' and 'not_solved'")}


def test_decide_cases_must_be_values_of_the_field():
    step = {"type": "decide", "on": "tier", "cases": {"gold": "done", "diamond": "done"}, "default": "done"}
    assert reasons(sop(a=step, done=END)) == {("a", "case 'diamond' is not a tier (one of standard, gold, platinum)")}
    free = {"type": "decide", "on": "category", "cases": {"anything-goes": "done"}, "default": "done"}
    assert validate_sop(sop(a=free, done=END)) == []


def test_no_end_step_reachable():
    found = reasons(sop(l1=human(resolved="l2"), l2=human(2, resolved="l1"), done=END))
    assert (None, "no end step is reachable from the start step 'l1'") in found
    assert (None, "there is no end step") in reasons(sop(l1=human(resolved="l2"), l2=human(2, resolved="l1")))


def test_step_from_which_no_end_is_reachable():
    found = reasons(sop(
        a={"type": "decide", "on": "priority", "cases": {"urgent": "l2"}, "default": "l1"},
        l1=human(resolved="done"),
        l2=human(2, resolved="l3"),
        l3=human(3, resolved="l2"),
        done=END,
    ))
    assert found == {("l2", "no end step can be reached from here"), ("l3", "no end step can be reached from here")}


def test_every_problem_is_reported_at_once():
    definition = {
        "id": "Not A Slug", "title": "Broken", "sla": "gold", "start": "kb",
        "steps": {
            "kb": {"type": "automate", "action": "kb_lookup",
                   "outcomes": {"answered": "confirm", "no_match": "level1"}},
            "confirm": {"type": "ask_customer", "message": "kb_answer", "wait": "-2h",
                        "outcomes": {"solved": "close", "not_solved": "level1", "no_reply": "close"}},
            "level1": {"type": "human", "level": 1, "outcomes": {"resolved": "close", "escalated": "level9"}},
            "spare": {"type": "robot"},
            "close": {"type": "end"},
        },
    }
    found = reasons(definition, **CATALOG)
    assert {
        (None, "id: 'Not A Slug' must be lowercase letters and digits joined by '-' or '_'"),
        (None, "unknown SLA policy 'gold'"),
        ("kb", "unknown action 'kb_lookup'"),
        ("confirm", "wait: '-2h' is not a duration; use seconds or a form like 30s, 15m, 2h, 3d, 1h30m"),
        ("level1", "target 'level9' does not exist"),
        ("spare", f"unknown step type 'robot' (expected one of {STEP_TYPES})"),
        ("spare", "unreachable from the start step"),
    } <= found
    assert len(found) == 7


def test_a_step_failing_the_schema_still_counts_in_the_graph():
    # level2 is broken (level 9) yet exists, so level1's edge to it is not reported as dangling.
    found = reasons(sop(level1=human(resolved="done", escalated="level2"), level2=human(9, resolved="done"), done=END))
    assert found == {("level2", "level: Input should be less than or equal to 3")}


def test_validate_accepts_a_model_and_rejects_non_mappings():
    model = SopDefinition.model_validate(sop(l1=human(resolved="done"), done=END))
    assert validate_sop(model, **CATALOG) == []
    assert validate_sop(["not", "a", "sop"]) == [Problem(None, "a SOP must be a mapping of fields, not list")]


@pytest.mark.parametrize("bad_id", ["with space", "dot.ted"])
def test_step_ids_must_be_plain(bad_id):
    found = reasons(sop(**{bad_id: human(resolved="done")}, done=END))
    assert found == {(bad_id, "a step id may only hold letters, digits, '_' and '-'")}
