"""`ccr sop`: the API's validator and publish on the command line, and list, show and diff."""

from __future__ import annotations

from tests.test_cli import ccr
from tests.test_sops_api import SIMPLE


def test_validate_names_the_line_of_a_duplicate_step_and_of_each_problem(tmp_path):
    doubled = tmp_path / "doubled.yaml"
    doubled.write_text(SIMPLE + "  level1: {type: end}\n")
    done = ccr("sop", "validate", str(doubled))
    assert done.returncode == 1
    assert "line 14, step 'level1': a second step named 'level1'; the first is on line 7" in done.stdout, done.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(SIMPLE.replace("sla: slow", "sla: standard").replace("resolved: close", "resolved: closed"))
    done = ccr("sop", "validate", str(broken))
    assert "line 12, step 'level1': target 'closed' does not exist" in done.stdout, done.stdout


def test_publish_list_show_and_diff(tmp_path):
    data = str(tmp_path / "var")
    first = tmp_path / "returns.yaml"
    first.write_text(SIMPLE.replace("sla: slow", "sla: standard"))
    published = ccr("sop", "publish", str(first), "--data", data, "--note", "Returns get a desk", "--by", "olive")
    assert published.returncode == 0 and "returns v1 published" in published.stdout, published.stderr
    assert "no active agent has the skill 'general'" in published.stderr  # printed, and published anyway
    second = tmp_path / "returns2.yaml"
    second.write_text(first.read_text().replace("title: Returns desk", "title: Returns and refunds")
                      .replace("sla: standard", "sla: premium"))
    assert "returns v2 published" in ccr("sop", "publish", str(second), "--data", data, "--note", "Refunds").stdout
    assert "returns v2 unchanged" in ccr("sop", "publish", str(second), "--data", data).stdout
    listed = ccr("sop", "list", "--data", data).stdout.splitlines()
    assert listed[0].split("\t")[:3] == ["returns", "v2", "Returns"] and "by ccr" in listed[0]
    shown = ccr("sop", "show", "returns", "--version", "1", "--data", data).stdout
    assert "# returns v1: Returns" in shown and "by olive: Returns get a desk" in shown
    assert shown.endswith(first.read_text())
    diff = ccr("sop", "diff", "returns", "1", "2", "--data", data).stdout
    assert "sla: standard -> premium" in diff and "step 'level1' title: Returns desk -> Returns and refunds" in diff
    assert "-    title: Returns desk" in diff and "+    title: Returns and refunds" in diff
    missing = ccr("sop", "show", "returns", "--version", "7", "--data", data)
    assert missing.returncode == 1 and "no SOP 'returns' version 7" in missing.stderr
