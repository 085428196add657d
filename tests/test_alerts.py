"""The shipped alert rules and dashboard: valid for Prometheus, each alert firing on the series it is meant for,
and naming only metrics the desk exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "ccr.json"
# What the Temporal SDK's Prometheus exporter on CCR_WORKER_METRICS_ADDRESS provides (histograms in ms).
SDK_METRICS = {"temporal_workflow_task_schedule_to_start_latency", "temporal_activity_schedule_to_start_latency"}
NAME = re.compile(r"\b((?:ccr|temporal)_[a-z_]+)\b")


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: apt-get install prometheus (the README's test command does)"
    return found


def test_promtool_checks_the_rules_and_every_alert_fires_as_its_unit_test_says():
    checked = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([_promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                            cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_says_for_how_long_how_bad_and_what_to_do():
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {"CcrNoPollers", "CcrWorkflowTaskFailures", "CcrNonDeterminism", "CcrScheduleToStartHigh",
            "CcrSlaTimersLate", "CcrMailFailing", "CcrConcernsWithoutWorkflow", "CcrHandoversPendingTooLong",
            "CcrBreachesRising"} <= names
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert len(rule["annotations"]["runbook"]) > 60 and rule["annotations"]["summary"], rule["alert"]


def test_the_dashboard_is_generated_from_the_alerts():
    import runpy

    generator = runpy.run_path(str(ROOT / "deploy" / "grafana" / "make_dashboard.py"))
    assert DASHBOARD.read_text() == generator["render"](), "run python deploy/grafana/make_dashboard.py"
    titles = [p["title"] for p in generator["dashboard"]()["panels"]]
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert all(any(t.startswith(r["alert"]) for t in titles) for r in rules)


async def test_alerts_and_dashboard_name_only_metrics_the_desk_exports(desk):
    text = (await desk.http.get("/metrics", headers=desk.auth)).text
    exported = {f.name for f in text_string_to_metric_families(text)}
    series = {f"{name}{suffix}" for name in exported for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    series |= {f"{name}{suffix}" for name in SDK_METRICS for suffix in ("_bucket", "_count", "_sum")}
    named = set(NAME.findall(RULES.read_text())) | set(NAME.findall(DASHBOARD.read_text()))
    assert named and named <= series, sorted(named - series)
