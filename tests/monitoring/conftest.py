"""Monitoring fixtures: the rules and dashboard under deploy/monitoring, read once, and
the serving tests' exported model (trained and exported by the pipeline's functions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.serve.conftest import breast_cancer_model, serve_params

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
RULES = MONITORING / "rules.yml"
RULE_TESTS = MONITORING / "tests" / "rules_test.yml"
DASHBOARD = MONITORING / "dashboard.json"
# The scrape job the rules name (ServingNotReady's `up{job="tabml"}`).
JOB = "tabml"
# What Grafana puts in place of the dashboard's variables, for Prometheus without Grafana.
DASHBOARD_VARIABLES = {"$__rate_interval": "1m", "$job": JOB}

__all__ = ["breast_cancer_model", "serve_params"]


@pytest.fixture(scope="session")
def rules() -> list[dict[str, Any]]:
    """Every rule of every group in rules.yml."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def dashboard_targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query of every panel."""
    return [
        (panel["title"], target) for panel in dashboard["panels"] for target in panel["targets"]
    ]


def as_prometheus_sees_it(expr: str) -> str:
    """A dashboard expression with Grafana's variables filled in."""
    for variable, value in DASHBOARD_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr
