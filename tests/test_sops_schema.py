"""The SOP and SLA models: durations, steps, hashes, calendars, and loading the shipped files."""

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from sops import (
    DEFINITIONS_DIR,
    KNOWN_ACTIONS,
    KNOWN_TEMPLATES,
    AskCustomerStep,
    BusinessCalendar,
    DecideStep,
    Duration,
    HumanStep,
    SlaPolicy,
    SopDefinition,
    SopInvalid,
    format_duration,
    load_calendars,
    load_definitions,
    load_policies,
    load_sop_file,
    sop_from_yaml,
)

DURATION = TypeAdapter(Duration)
TARGETS = {"first_response": "1h", "next_response": "2h", "resolution": "8h"}
ALL_TARGETS = {p: TARGETS for p in ("low", "normal", "high", "urgent")}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("3d", 259200), ("1h30m", 5400), ("1d2h3m4s", 93784), (45, 45),
     ("90", 90)],
)
def test_durations_parse_to_seconds(text, seconds):
    assert DURATION.validate_python(text) == seconds


@pytest.mark.parametrize("bad", [0, -5, "", "abc", "2x", "1.5h", "h", "2h1d", True, 1.5, None, "0m", "400d"])
def test_bad_durations_are_rejected_with_a_hint(bad):
    with pytest.raises(ValidationError) as caught:
        DURATION.validate_python(bad)
    message = str(caught.value)
    assert "duration" in message


def test_format_duration_spells_the_shortest_form():
    assert [format_duration(s) for s in (30, 5400, 86400, 93784)] == ["30s", "1h30m", "1d", "1d2h3m4s"]


def test_durations_serialise_as_seconds():
    step = HumanStep(level=1, escalate_after="2h", outcomes={"resolved": "done"})
    assert step.model_dump()["escalate_after"] == 7200
    assert json.loads(step.model_dump_json())["escalate_after"] == 7200


def test_steps_are_frozen_and_forbid_unknown_fields():
    step = HumanStep(level=2, outcomes={"resolved": "done"})
    with pytest.raises(ValidationError):
        step.level = 3
    with pytest.raises(ValidationError, match="Extra inputs"):
        HumanStep(level=2, outcomes={"resolved": "done"}, colour="red")


def test_human_outcomes_need_resolved_and_known_names():
    with pytest.raises(ValidationError, match="outcome 'resolved' is required"):
        HumanStep(level=1, outcomes={"escalated": "x"})
    with pytest.raises(ValidationError, match="unknown outcome 'fixed'"):
        HumanStep(level=1, outcomes={"resolved": "x", "fixed": "y"})
    with pytest.raises(ValidationError):
        HumanStep(level=4, outcomes={"resolved": "x"})


def test_ask_customer_needs_no_reply():
    with pytest.raises(ValidationError, match="outcome 'no_reply' is required"):
        AskCustomerStep(message="ask_details", wait="1d", outcomes={"replied": "x"})


def test_decide_on_survives_yaml_reading_on_as_true():
    raw = yaml.safe_load("{type: decide, on: priority, cases: {}, default: x}")
    assert True in raw  # what plain YAML 1.1 makes of `on:`
    step = TypeAdapter(DecideStep).validate_python(raw)
    assert step.on == "priority"


def test_targets_lists_each_target_once_in_order():
    sop = load_sop_file(DEFINITIONS_DIR / "account-access.yaml")
    assert sop.targets("level1") == ["survey", "level2"]
    assert sop.targets("close") == []
    assert load_sop_file(DEFINITIONS_DIR / "complaint.yaml").targets("triage") == ["alert_team", "level2", "level1"]


def _account_access() -> dict:
    return yaml.safe_load((DEFINITIONS_DIR / "account-access.yaml").read_text())


def test_content_hash_is_stable_and_ignores_version_and_spelling():
    a = SopDefinition.model_validate(_account_access())
    b = SopDefinition.model_validate(_account_access())
    assert a.content_hash() == b.content_hash()
    assert len(a.content_hash()) == 64
    assert a.model_copy(update={"version": 7}).content_hash() == a.content_hash()
    data = _account_access()
    data["steps"]["level1"]["escalate_after"] = 7200  # "2h" spelled in seconds
    assert SopDefinition.model_validate(data).content_hash() == a.content_hash()


def test_content_hash_changes_when_a_step_changes():
    base = SopDefinition.model_validate(_account_access()).content_hash()
    data = _account_access()
    data["steps"]["level1"]["escalate_after"] = "3h"
    assert SopDefinition.model_validate(data).content_hash() != base
    data = _account_access()
    data["steps"]["survey"]["title"] = "How did we do?"
    assert SopDefinition.model_validate(data).content_hash() != base


def test_sop_round_trips_through_json():
    sop = load_sop_file(DEFINITIONS_DIR / "general-inquiry.yaml")
    again = SopDefinition.model_validate_json(sop.model_dump_json())
    assert again == sop and again.content_hash() == sop.content_hash()


def test_policy_needs_every_priority_and_sane_warning():
    with pytest.raises(ValidationError, match="urgent"):
        SlaPolicy(id="p", title="P", calendar="c", priorities={p: TARGETS for p in ("low", "normal", "high")})
    for warn_at in (0, 1, 1.5):
        with pytest.raises(ValidationError):
            SlaPolicy(id="p", title="P", calendar="c", warn_at=warn_at, priorities=ALL_TARGETS)
    with pytest.raises(ValidationError, match="level 4"):
        SlaPolicy(id="p", title="P", calendar="c", priorities=ALL_TARGETS, levels={4: "1h"})
    with pytest.raises(ValidationError, match="first_response"):
        slow_first = {**ALL_TARGETS, "low": {**TARGETS, "first_response": "9h"}}
        SlaPolicy(id="p", title="P", calendar="c", priorities=slow_first)


def test_policy_levels_round_trip_through_json():
    policy = load_policies()["standard"]
    assert policy.levels == {1: 4 * 3600, 2: 9 * 3600, 3: 27 * 3600}
    assert SlaPolicy.model_validate_json(policy.model_dump_json()) == policy


def _calendar(**changes) -> BusinessCalendar:
    base = {"id": "c", "timezone": "Europe/Berlin", "hours": {"mon": ["09:00-17:00"]}}
    return BusinessCalendar.model_validate({**base, **changes})


def test_opening_intervals_parse_sort_and_serialise_back():
    cal = _calendar(hours={"mon": ["13:00-17:00", "08:00-12:00"], "sun": ["00:00-24:00"]})
    assert cal.hours["mon"] == [(8 * 3600, 12 * 3600), (13 * 3600, 17 * 3600)]
    assert cal.hours["sun"] == [(0, 86400)]
    assert cal.model_dump(mode="json")["hours"] == {"mon": ["08:00-12:00", "13:00-17:00"], "sun": ["00:00-24:00"]}


@pytest.mark.parametrize(
    "hours",
    [{"mon": ["17:00-09:00"]}, {"mon": ["25:00-26:00"]}, {"mon": ["9-17"]}, {"mon": ["08:00-12:00", "11:00-13:00"]},
     {"mon": []}, {}, {"funday": ["09:00-17:00"]}, {"mon": ["24:00-24:00"]}, {"mon": ["10:00-24:30"]}],
)
def test_bad_opening_hours_are_rejected(hours):
    with pytest.raises(ValidationError):
        _calendar(hours=hours)


def test_calendar_rejects_unknown_zone_and_holiday_source():
    with pytest.raises(ValidationError, match="IANA"):
        _calendar(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="holiday"):
        _calendar(holidays={"country": "XX"})
    with pytest.raises(ValidationError, match="holiday"):
        _calendar(holidays={"country": "DE", "subdiv": "ZZ"})


def test_pinned_calendar_writes_out_public_holidays():
    cal = load_calendars()["office-berlin"]
    pinned = cal.pinned(2025, 2026)
    assert pinned.holidays is None
    assert {date(2025, 10, 3), date(2025, 4, 21), date(2026, 12, 25), date(2025, 3, 8)} <= set(pinned.closed_dates)
    assert all(2025 <= d.year <= 2026 for d in pinned.closed_dates)
    assert pinned.closed_dates == sorted(pinned.closed_dates)
    assert BusinessCalendar.model_validate_json(pinned.model_dump_json()) == pinned
    with pytest.raises(ValueError):
        cal.pinned(2026, 2025)


def test_shipped_files_load_and_validate_against_the_catalog():
    policies = load_policies()
    calendars = load_calendars()
    assert set(policies) == {"standard", "premium"} and set(calendars) == {"office-berlin", "always"}
    assert {p.calendar for p in policies.values()} <= set(calendars)
    sops = load_definitions(actions=KNOWN_ACTIONS, templates=KNOWN_TEMPLATES, policies=set(policies))
    assert set(sops) == {"general-inquiry", "account-access", "complaint"}


def test_invalid_file_raises_with_every_problem_readably(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: broken\ntitle: B\nsla: standard\nstart: a\nsteps:\n  a: {type: robot}\n  b: {type: end}\n")
    with pytest.raises(SopInvalid) as caught:
        load_sop_file(path)
    text = str(caught.value)
    assert text.splitlines()[0] == f"{path}: 3 problems"
    assert "  - step 'a': unknown step type 'robot'" in text
    assert "  - step 'b': unreachable from the start step" in text
    assert caught.value.path == path and len(caught.value.problems) == 3


def test_bad_yaml_is_reported_not_raised_raw():
    with pytest.raises(SopInvalid, match="not valid YAML"):
        sop_from_yaml("id: [unclosed")


def test_load_definitions_skips_sla_and_refuses_duplicate_ids(tmp_path: Path):
    for name in ("sla.yaml", "account-access.yaml"):
        (tmp_path / name).write_text((DEFINITIONS_DIR / name).read_text())
    assert set(load_definitions(tmp_path)) == {"account-access"}
    (tmp_path / "copy.yaml").write_text((DEFINITIONS_DIR / "account-access.yaml").read_text())
    with pytest.raises(SopInvalid, match="already used"):
        load_definitions(tmp_path)


def test_policy_naming_an_unknown_calendar_is_refused(tmp_path: Path):
    data = yaml.safe_load((DEFINITIONS_DIR / "sla.yaml").read_text())
    data["policies"]["standard"]["calendar"] = "nowhere"
    data["policies"]["premium"]["warn_at"] = 2
    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SopInvalid) as caught:
        load_policies(path)
    assert "policy 'premium': warn_at" in str(caught.value)
    data["policies"]["premium"]["warn_at"] = 0.5
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SopInvalid, match="policy 'standard': unknown calendar 'nowhere'"):
        load_policies(path)


def test_package_imports_nothing_of_ours_or_of_the_server():
    code = (
        "import sys, sops, sops.graph, sops.validate, sops.business_time;"
        "bad = [m for m in sys.modules if m.split('.')[0] in"
        " {'temporalio', 'fastapi', 'sqlmodel', 'sqlalchemy', 'workflows', 'activities', 'api', 'web', 'registry'}];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stdout + result.stderr
