"""The pull-request report and quality gate: verdicts, golden markdown, and git inputs."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from tabml.config import GateParams, Params
from tabml.errors import InputError
from tabml.report.gate import compare_metric, judge
from tabml.report.render import Report, diff_params, render
from tabml.report.sources import ReportSources, build_report
from tabml.report.verdict import QualityGateError, run, verdict_json
from tests.tools import run_tool

GOLDEN = Path(__file__).parent / "report_golden"
GATE = GateParams.model_validate(
    {
        "metrics": {
            "roc_auc": {"direction": "higher", "tolerance": 0.005},
            "f1": {"direction": "higher", "tolerance": 0.01},
            "log_loss": {"direction": "lower", "tolerance": 0.02},
        }
    }
)
BASE = {"accuracy": 0.95, "f1": 0.94, "roc_auc": 0.99, "log_loss": 0.12, "test_rows": 114}
ROC = [
    {"fpr": 0.0, "tpr": 0.0},
    {"fpr": 0.05, "tpr": 0.9},
    {"fpr": 0.3, "tpr": 1.0},
    {"fpr": 1.0, "tpr": 1.0},
]


def check_golden(name: str, markdown: str) -> None:
    """Compare with tests/unit/report_golden/NAME.md; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / f"{name}.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(markdown, encoding="utf-8")
    assert markdown == path.read_text(encoding="utf-8")


def report_for(new: dict[str, Any], params_new: dict[str, Any] | None = None) -> Report:
    params_base = {"train": {"estimator": "logistic_regression", "logistic_regression": {"C": 1.0}}}
    return Report(
        base_ref="main",
        new_ref="feature/tune",
        verdict=judge(BASE, new, GATE),
        param_changes=diff_params(params_base, params_new or params_base),
        base_roc=ROC,
        new_roc=ROC,
        artifact_url="https://example.invalid/artifacts/1",
    )


def test_better_model() -> None:
    better = {**BASE, "f1": 0.96, "roc_auc": 0.995, "log_loss": 0.10, "accuracy": 0.97}
    report = report_for(
        better, {"train": {"estimator": "logistic_regression", "logistic_regression": {"C": 0.5}}}
    )
    assert report.verdict.passed
    check_golden("better", render(report))


def test_worse_model() -> None:
    worse = {**BASE, "f1": 0.90, "roc_auc": 0.986, "log_loss": 0.30}
    report = report_for(
        worse, {"train": {"estimator": "logistic_regression", "logistic_regression": {"C": 0.0001}}}
    )
    assert not report.verdict.passed
    assert [c.name for c in report.verdict.failures] == ["f1", "log_loss"]
    markdown = render(report)
    assert "❌ quality gate failed" in markdown
    assert "f1 is 0.9000 against 0.9400: worse by 0.0400, more than the tolerance 0.01" in markdown
    check_golden("worse", markdown)


def test_unchanged_model() -> None:
    report = report_for(dict(BASE))
    assert report.verdict.passed
    assert {c.status for c in report.verdict.comparisons if c.rule} == {"unchanged"}
    check_golden("unchanged", render(report))


def test_new_metric_the_base_lacks() -> None:
    report = report_for({**BASE, "brier_score": 0.03})
    [new] = [c for c in report.verdict.comparisons if c.name == "brier_score"]
    assert (new.status, new.failed) == ("new", False)
    check_golden("new_metric", render(report))


@pytest.mark.parametrize(
    ("direction", "base", "new", "status", "failed"),
    [
        ("higher", 0.90, 0.95, "better", False),
        ("higher", 0.90, 0.896, "within tolerance", False),
        ("higher", 0.90, 0.89, "worse", True),
        ("lower", 0.10, 0.05, "better", False),
        ("lower", 0.10, 0.104, "within tolerance", False),
        ("lower", 0.10, 0.2, "worse", True),
        ("lower", 0.10, 0.10, "unchanged", False),
    ],
)
def test_direction_and_tolerance(
    direction: str, base: float, new: float, status: str, failed: bool
) -> None:
    rule = GateParams.model_validate(
        {"metrics": {"m": {"direction": direction, "tolerance": 0.005}}}
    ).metrics["m"]
    comparison = compare_metric("m", base, new, rule)
    assert (comparison.status, comparison.failed) == (status, failed)


def test_gated_metric_missing_from_the_branch_fails() -> None:
    verdict = judge(BASE, {"accuracy": 0.99}, GATE)
    assert not verdict.passed
    assert "roc_auc is gated but missing from the new metrics" in verdict.explain()


def test_no_champion_yet_passes() -> None:
    verdict = judge({}, BASE, GATE)
    assert verdict.passed
    assert {c.status for c in verdict.comparisons} == {"new"}
    markdown = render(Report("main", "first", verdict, []))
    assert "has no metrics yet: there is no champion to beat" in markdown


def test_params_diff_lists_added_removed_and_changed_keys() -> None:
    changes = diff_params({"a": {"x": 1, "y": 2}, "gone": True}, {"a": {"x": 1, "y": 3}, "z": 4})
    assert [(c.key, c.base, c.new) for c in changes] == [
        ("a.y", 2, 3),
        ("gone", True, None),
        ("z", None, 4),
    ]


def git(root: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t.invalid",
    }
    run_tool(["git", *args], cwd=root, env=env)


@pytest.fixture
def repo(tmp_path: Path, repo_root: Path) -> Path:
    """A git repo whose main branch has the shipped params and a committed champion."""
    (tmp_path / "metrics").mkdir()
    (tmp_path / "plots").mkdir()
    (tmp_path / "params.yaml").write_text((repo_root / "params.yaml").read_text())
    (tmp_path / "metrics/metrics.json").write_text(json.dumps(BASE))
    (tmp_path / "plots/roc.json").write_text(json.dumps(ROC))
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "champion")
    return tmp_path


def build(repo: Path, params: Params, base: str = "main") -> Report:
    return build_report(sources(repo, params, base))


def sources(repo: Path, params: Params, base: str = "main") -> ReportSources:
    return ReportSources(
        root=repo,
        base=base,
        new_ref="work",
        params=params,
        params_path="params.yaml",
        metrics_path="metrics/metrics.json",
        roc_path="plots/roc.json",
        artifact_url=None,
    )


def test_build_report_reads_the_base_through_git(repo: Path, default_params: Params) -> None:
    (repo / "metrics/metrics.json").write_text(json.dumps({**BASE, "f1": 0.5}))
    report = build(repo, default_params)
    assert [c.name for c in report.verdict.failures] == ["f1"]
    assert report.param_changes == []
    assert report.base_roc == ROC


def test_the_base_branch_gate_applies(repo: Path, default_params: Params) -> None:
    # The branch loosens its own f1 tolerance: the champion's rule still judges it.
    loosened = default_params.model_copy(
        update={
            "gate": GateParams.model_validate(
                {"metrics": {"f1": {"direction": "higher", "tolerance": 1.0}}}
            )
        }
    )
    (repo / "metrics/metrics.json").write_text(json.dumps({**BASE, "f1": 0.5}))
    report = build(repo, loosened)
    assert not report.verdict.passed
    assert report.gate_changes
    assert "changes the gate's own rules" in render(report)


def test_verdict_json_lists_failures_and_every_metric() -> None:
    verdict = judge(BASE, {**BASE, "f1": 0.5, "brier": 0.1}, GATE)
    summary = verdict_json(verdict)
    assert summary["passed"] is False
    assert summary["failures"] == verdict.explain()
    assert summary["metrics"]["f1"] == {"base": 0.94, "new": 0.5, "status": "worse"}
    assert summary["metrics"]["brier"] == {"base": None, "new": 0.1, "status": "new"}
    assert json.loads(json.dumps(summary)) == summary


def test_run_writes_the_report_and_the_summary_then_fails_the_gate(
    repo: Path, default_params: Params
) -> None:
    # The summary's folder need not exist, nor be the report's.
    out, summary = repo / "out/report.md", repo / "gate/new/summary.json"
    verdict = run(sources(repo, default_params), out=out)
    assert verdict.passed
    assert "quality gate passed" in out.read_text()
    assert not summary.exists()

    (repo / "metrics/metrics.json").write_text(json.dumps({**BASE, "f1": 0.5}))
    with pytest.raises(QualityGateError, match=r"^quality gate failed \(report in .*\): f1 is"):
        run(sources(repo, default_params), out=out, summary_out=summary)
    assert "quality gate failed" in out.read_text()
    assert json.loads(summary.read_text())["failures"][0].startswith("f1 is 0.5000")


def test_unknown_base_revision_is_named(repo: Path, default_params: Params) -> None:
    with pytest.raises(InputError, match="--base 'nope': no such git revision"):
        build(repo, default_params, base="nope")


def test_missing_work_tree_metrics_say_what_to_run(repo: Path, default_params: Params) -> None:
    (repo / "metrics/metrics.json").unlink()
    with pytest.raises(InputError, match="run `dvc repro` first"):
        build(repo, default_params)


@pytest.mark.parametrize(
    ("direction", "base", "at_tolerance", "beyond"),
    [
        # 0.75 - 0.25 and 0.25 + 0.25 are exact in binary floating point, so "worse by
        # exactly the tolerance" is exactly that, and the next float past it is worse.
        ("higher", 0.75, 0.5, math.nextafter(0.5, 0.0)),
        ("lower", 0.25, 0.5, math.nextafter(0.5, 1.0)),
    ],
)
def test_worse_by_exactly_the_tolerance_passes_and_any_more_fails(
    direction: str, base: float, at_tolerance: float, beyond: float
) -> None:
    # docs/gitops.md: the challenger fails when it is worse "by more than the tolerance".
    gate = GateParams.model_validate(
        {"metrics": {"m": {"direction": direction, "tolerance": 0.25}}}
    )
    assert abs(at_tolerance - base) == 0.25
    passing = judge({"m": base}, {"m": at_tolerance}, gate)
    assert passing.passed
    assert [(c.status, c.failed) for c in passing.comparisons] == [("within tolerance", False)]
    failing = judge({"m": base}, {"m": beyond}, gate)
    assert not failing.passed
    assert [(c.status, c.failed) for c in failing.comparisons] == [("worse", True)]
    assert "more than the tolerance 0.25" in failing.explain()[0]
