"""Experiments, metrics and plots through DVC's own commands."""

from __future__ import annotations

import json

import pytest

from .project import Project

pytestmark = pytest.mark.slow


def test_exp_run_show_and_metrics_diff(trained: Project) -> None:
    trained.dvc(
        "exp", "run", "-n", "strong-regularisation", "-S", "train.logistic_regression.C=0.01"
    )
    trained.dvc(
        "exp",
        "run",
        "-n",
        "forest",
        "-S",
        "train.estimator=random_forest",
        "-S",
        "train.random_forest.n_estimators=50",
    )
    shown = json.loads(trained.dvc("exp", "show", "--json").stdout)
    experiments = {
        exp["name"]: exp["revs"][0]["data"]
        for commit in shown
        for exp in (commit.get("experiments") or [])
    }
    assert set(experiments) == {"strong-regularisation", "forest"}
    forest_params = experiments["forest"]["params"]["params.yaml"]["data"]["train"]
    assert forest_params["estimator"] == "random_forest"
    strong = experiments["strong-regularisation"]["metrics"]["metrics/metrics.json"]["data"]
    assert 0 < strong["roc_auc"] <= 1

    # The workspace holds the last experiment; diff its metrics against the commit.
    diff = json.loads(trained.dvc("metrics", "diff", "HEAD", "--json").stdout)
    assert "log_loss" in diff["metrics/metrics.json"]


def test_plots_show_and_diff_render(trained: Project) -> None:
    trained.set_params(train={"estimator": "gradient_boosting"})
    trained.repro()
    trained.dvc("plots", "diff", "HEAD", "--out", "dvc_plots", "--json")
    trained.dvc("plots", "show", "--out", "dvc_plots")
    page = (trained.path / "dvc_plots/index.html").read_text()
    # The confusion matrix is drawn by the project's template from a row per pair of
    # classes: each pair's count summed, adding up to the test rows (a row without a
    # count, as plot data of older commits hold a row per test row, counts once).
    shown = json.loads(trained.dvc("plots", "show", "--json").stdout)["data"]
    confusion = shown["Confusion matrix"][0]["content"]
    counted, summed = confusion["spec"]["transform"][:2]
    assert counted == {"calculate": "isValid(datum.count) ? datum.count : 1", "as": "rows"}
    assert summed["aggregate"] == [{"op": "sum", "field": "rows", "as": "xy_count"}]
    rows = confusion["data"]["values"]
    metrics = json.loads((trained.path / "metrics/metrics.json").read_text())
    assert len(rows) == 4 and sum(row["count"] for row in rows) == metrics["test_rows"]
    for title in (
        "ROC curve",
        "Precision-recall curve",
        "Calibration",
        "Confusion matrix",
        "Feature importance",
    ):
        assert title in page
