"""deploy/monitoring's rules and dashboard, read and checked without a Prometheus: promtool
accepts the rules and passes their unit tests, every alert has a test that fires it and
one that does not, every metric and label they name is one the server exports, and
docs/operations.md has a section for every alert."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.availability import require_tool
from tests.monitoring.conftest import (
    DASHBOARD,
    RULE_TESTS,
    RULES,
    as_prometheus_sees_it,
    dashboard_targets,
)
from tests.monitoring.promql import grouping_labels, selectors
from tests.serve.conftest import ExportedModel, make_client
from tests.tools import run_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
# Labels Prometheus adds to every scraped series, and a histogram's bucket bound.
TARGET_LABELS = frozenset({"job", "instance"})
BUCKET_LABEL = "le"


def test_promtool_accepts_the_rules() -> None:
    promtool = require_tool("promtool")
    result = run_tool([promtool, "check", "rules", RULES])
    assert "SUCCESS: 13 rules found" in result.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    promtool = require_tool("promtool")
    result = run_tool([promtool, "test", "rules", RULE_TESTS], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_test_that_fires_it_and_one_that_does_not(
    rules: list[dict[str, Any]],
) -> None:
    document = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    checks = [check for test in document["tests"] for check in test.get("alert_rule_test", [])]
    for alert in (rule["alert"] for rule in rules if "alert" in rule):
        expected = [check["exp_alerts"] for check in checks if check["alertname"] == alert]
        assert any(expected), f"{alert}: no unit test expects it to fire"
        assert not all(expected), f"{alert}: no unit test expects it to stay quiet"


def test_every_alert_says_how_bad_and_where_its_runbook_is(rules: list[dict[str, Any]]) -> None:
    operations = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    # A heading's anchor, as GitHub makes it: lower case, spaces as '-'.
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in operations.splitlines()
        if line.startswith("### ")
    }
    alerts = [rule for rule in rules if "alert" in rule]
    assert len(alerts) == 7
    for rule in alerts:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md"
        assert anchor == rule["alert"].lower() and anchor in anchors, rule["alert"]


@pytest.fixture(scope="module")
def exported_series(
    breast_cancer_model: ExportedModel, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, set[str]]:
    """Sample name -> label names, from /metrics of an app that predicted and logged."""
    log = tmp_path_factory.mktemp("prediction_log") / "predictions.jsonl"
    with make_client(breast_cancer_model, prediction_log=log) as client:
        assert client.post("/predict", breast_cancer_model.feature_rows(3)).status == 200
        text = client.get("/metrics").body.decode()
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def check_names(
    expr: str, exported: dict[str, set[str]], recorded: set[str], where: str
) -> list[str]:
    """What in `expr` the server does not export: metric names, matcher labels and
    grouping labels."""
    problems = []
    every_label = set().union(*exported.values()) | TARGET_LABELS | {BUCKET_LABEL}
    for selector in selectors(expr):
        if selector.metric in recorded or selector.metric == "up":
            labels = every_label
        elif selector.metric in exported:
            labels = exported[selector.metric] | TARGET_LABELS
        else:
            problems.append(f"{where}: {selector.metric} is not exported")
            continue
        problems += [
            f"{where}: {selector.metric} has no label {label}"
            for label, _, _ in selector.matchers
            if label not in labels
        ]
    problems += [
        f"{where}: no exported series has a label {label}"
        for label in sorted(grouping_labels(expr) - every_label)
    ]
    return problems


def test_the_dashboard_reads_only_what_the_server_exports(
    dashboard: dict[str, Any], exported_series: dict[str, set[str]]
) -> None:
    problems: list[str] = []
    for title, target in dashboard_targets(dashboard):
        expr = as_prometheus_sees_it(target["expr"])
        problems += check_names(expr, exported_series, set(), f"{DASHBOARD.name} {title!r}")
    assert problems == []
    variables = [item["query"]["query"] for item in dashboard["templating"]["list"][1:]]
    assert variables == ["label_values(tabml_model_info, job)"]
    assert "tabml_model_info" in exported_series


def test_the_rules_read_only_what_the_server_exports(
    rules: list[dict[str, Any]], exported_series: dict[str, set[str]]
) -> None:
    recorded = {rule["record"] for rule in rules if "record" in rule}
    problems: list[str] = []
    for rule in rules:
        name = rule.get("record") or rule["alert"]
        problems += check_names(rule["expr"], exported_series, recorded, f"{RULES.name} {name}")
    assert problems == []


def test_a_renamed_metric_or_label_is_caught(exported_series: dict[str, set[str]]) -> None:
    renamed_metric = 'rate(tabml_http_request_total{endpoint="/predict"}[5m])'
    renamed_label = 'rate(tabml_http_requests_total{path="/predict"}[5m])'
    renamed_grouping = "sum by (klass) (rate(tabml_predicted_class_total[5m]))"
    assert check_names(renamed_metric, exported_series, set(), "x") == [
        "x: tabml_http_request_total is not exported"
    ]
    assert check_names(renamed_label, exported_series, set(), "x") == [
        "x: tabml_http_requests_total has no label path"
    ]
    assert check_names(renamed_grouping, exported_series, set(), "x") == [
        "x: no exported series has a label klass"
    ]
