"""Writes ccr.json, the Grafana dashboard, from the desk's metrics and from deploy/prometheus/alerts.yaml (one panel
per alert, showing the expression it fires on), so the dashboard and the alerts always name the same series.

    python deploy/grafana/make_dashboard.py        # rewrite ccr.json
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

HERE = Path(__file__).parent
ALERTS = HERE.parent / "prometheus" / "alerts.yaml"
OUT = HERE / "ccr.json"

# (title, unit, expressions with their legends): what an SRE looks at first.
METRIC_PANELS = [
    ("Concerns by status and level", "short", [("sum by (status, level) (max without (instance) (ccr_concerns_by_level))",
                                                "{{status}} L{{level}}")]),
    ("What /ops shows", "short", [("max by (kind) (ccr_attention)", "{{kind}}")]),
    ("Mail to the relay", "ops", [("sum by (result) (rate(ccr_mail_total[5m]))", "{{result}}")]),
    ("E-level outcomes by action", "ops", [("sum by (action, outcome) (rate(ccr_elevel_outcomes_total[5m]))",
                                           "{{action}}: {{outcome}}")]),
    ("SLA warnings and breaches by clock and policy", "short",
     [("sum by (kind, clock, policy) (increase(ccr_sla_events_total[1h]))", "{{kind}} {{clock}} ({{policy}})")]),
    ("SLA timer lateness (p50, p95)", "s",
     [("histogram_quantile(0.5, sum by (le) (rate(ccr_sla_timer_lateness_seconds_bucket[15m])))", "p50"),
      ("histogram_quantile(0.95, sum by (le) (rate(ccr_sla_timer_lateness_seconds_bucket[15m])))", "p95")]),
    ("Registry write latency (record activity, p95)", "s",
     [("histogram_quantile(0.95, sum by (le) (rate(ccr_registry_write_seconds_bucket[5m])))", "p95")]),
    ("Hand-overs pending", "short", [("max by (kind) (ccr_handovers_pending_by_kind)", "{{kind}}"),
                                     ("max(ccr_handover_oldest_seconds)", "oldest (s)")]),
    ("Task queue backlog", "short", [("max by (type) (ccr_task_queue_backlog)", "{{type}}")]),
    ("Schedule-to-start latency (p95, ms)", "ms",
     [("histogram_quantile(0.95, sum by (le) (rate(temporal_workflow_task_schedule_to_start_latency_bucket[5m])))",
       "workflow tasks"),
      ("histogram_quantile(0.95, sum by (le) (rate(temporal_activity_schedule_to_start_latency_bucket[5m])))",
       "activities")]),
    ("Operator actions", "short", [("sum by (action) (increase(ccr_operator_actions_total[1h]))", "{{action}}")]),
]


def _panel(panel_id: int, title: str, unit: str, targets: list[tuple[str, str]], y: int, x: int,
           description: str = "") -> dict:
    return {
        "id": panel_id, "type": "timeseries", "title": title, "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
    }


def _alert_expr(expr: str) -> str:
    """The series an alert compares, without the comparison (so the panel shows the level, not 0 or 1)."""
    return re.sub(r"\s*(==|>|<)\s*[\d.]+\s*$", "", " ".join(expr.split()))


def dashboard() -> dict:
    panels = []
    for n, (title, unit, targets) in enumerate(METRIC_PANELS):
        panels.append(_panel(n + 1, title, unit, targets, y=(n // 2) * 8, x=(n % 2) * 12))
    offset = len(panels)
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    top = ((offset + 1) // 2) * 8
    panels.append({"id": 100, "type": "row", "title": "Alerts (deploy/prometheus/alerts.yaml)",
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": top}, "collapsed": False, "panels": []})
    for n, rule in enumerate(rules):
        panels.append(_panel(101 + n, f"{rule['alert']} ({rule['labels']['severity']}, for {rule['for']})", "short",
                             [(_alert_expr(rule["expr"]), rule["alert"])], y=top + 1 + (n // 2) * 8, x=(n % 2) * 12,
                             description=f"{rule['annotations']['summary']}. {rule['annotations']['runbook']}"))
    return {
        "title": "Customer Care Registry", "uid": "ccr-desk", "schemaVersion": 39, "version": 1,
        "tags": ["ccr", "temporal"], "timezone": "utc", "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
