"""drift.yml under act: a sample in a real S3 server on 127.0.0.1, a stand-in for GitHub's
issues API. Drift files one issue and a second run updates it (and can start training);
a sample without drift files nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tabml.config import load_params
from tests.github_api import github_issues_api
from tests.integration.project import copy_project
from tests.integration.servers import ACCESS_KEY, SECRET_KEY, rclone_s3

from .harness import REPOSITORY, ActRun, publish_origin, run_act
from .test_act import S3_SECRETS, gh_standin, reproduced_once, with_env

pytestmark = pytest.mark.slow

TOKEN = "ghs_drift_test"
SECRETS = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "GITHUB_TOKEN": TOKEN,
}


def logged(frame: pd.DataFrame, target: str) -> str:
    """Rows as the serving log writes them (src/tabml/serve/prediction_log.py)."""
    lines = [
        json.dumps(
            {
                "timestamp": "2026-11-23T06:00:00.000+00:00",
                "model_version": "m",
                "features": row.drop(target).to_dict(),
                "prediction": {"label": row[target], "probabilities": {}},
            }
        )
        for _, row in frame.iterrows()
    ]
    return "\n".join(lines) + "\n"


def dispatch(sample_url: str, retrain: bool) -> dict[str, object]:
    owner, name = REPOSITORY.split("/")
    return {
        # GitHub's workflow_dispatch payload carries every input as a string.
        "inputs": {"sample-url": sample_url, "retrain": str(retrain).lower()},
        "repository": {
            "full_name": REPOSITORY,
            "name": name,
            "owner": {"login": owner},
            "default_branch": "main",
        },
    }


def succeeded(run: ActRun) -> None:
    assert run.returncode == 0, run.explain()


def test_drift_files_one_issue_updates_it_and_stays_quiet_without_drift(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project = copy_project(reproduced_once(tmp_path_factory), tmp_path / "project")
    test = pd.read_parquet(project.path / "data/split/test.parquet")
    schema = project.schema()
    # One feature shifted by a standard deviation: the second numeric one, which in
    # the bundled data is mean_texture.
    feature, target = schema.numeric_features[1], schema.target.name
    shifted = test.copy()
    shifted[feature] += shifted[feature].std()
    root = tmp_path / "s3"
    (root / "monitoring").mkdir(parents=True)  # buckets exist before rclone lists them
    (root / "monitoring/steady.jsonl").write_text(logged(test, target))
    (root / "monitoring/shifted.jsonl").write_text(logged(shifted, target))

    (root / "dvc").mkdir()
    with rclone_s3(root) as s3, github_issues_api(REPOSITORY, TOKEN) as (api, issues):
        if load_params(project.path / "params.yaml").data.source == "file":
            # A project's own data lives only in DVC storage, not in git: the runner
            # pulls the model and its training data from a shared remote.
            project.dvc("remote", "add", "--default", "shared", "s3://dvc/models")
            project.dvc("remote", "modify", "shared", "endpointurl", s3.endpoint)
            project.git("commit", "-q", "-am", "Use shared S3 storage")
            with_env(project, **S3_SECRETS).dvc("push")
        publish_origin(project, tmp_path / "origin.git")  # github.repository is REPOSITORY

        def drift_run(sample: str, name: str, retrain: bool = False) -> ActRun:
            (tmp_path / name).mkdir()
            return run_act(
                project,
                "drift.yml",
                "workflow_dispatch",
                dispatch(f"s3://monitoring/{sample}", retrain),
                tmp_path / name,
                secrets=SECRETS,
                env={"GITHUB_API_URL": api},
                variables={"DRIFT_S3_ENDPOINT": s3.endpoint},
                path=[gh_standin(tmp_path / name)],
            )

        first = drift_run("shifted.jsonl", "first")
        succeeded(first)
        assert first.step_succeeded("File or update the drift issue")
        assert "created issue #1" in first.output
        [issue] = issues.issues
        assert issue["labels"] == ["drift"]
        drifted = f"1 of {len(schema.features)} features drifted: {feature}"
        assert drifted in issue["body"]
        assert "s3://monitoring/shifted.jsonl" in issue["body"]
        assert not first.calls("gh"), "training starts only when asked"
        [artifact] = first.calls("upload-artifact")
        assert artifact["inputs"]["name"] == "drift-report"
        page = next((first.record / "artifacts" / "drift-report").rglob("drift.html"))
        assert "Drift detected" in page.read_text()

        second = drift_run("shifted.jsonl", "second", retrain=True)
        succeeded(second)
        assert "updated issue #1" in second.output
        assert len(issues.issues) == 1
        [dispatched] = second.calls("gh")
        assert dispatched["args"] == ["workflow", "run", "train.yml", "--ref", "main"]
        assert dispatched["token_set"]

        calls_before = list(issues.calls)
        steady = drift_run("steady.jsonl", "steady", retrain=True)
        succeeded(steady)
        assert steady.step_succeeded("Drift check")
        assert not steady.step_ran("File or update the drift issue")
        assert issues.calls == calls_before
        assert not steady.calls("gh")
        summary = json.loads(next((tmp_path / "steady").rglob("reports/drift.json")).read_text())
        assert summary["drift_detected"] is False


def test_without_a_sample_url_the_job_says_so_and_passes(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project = copy_project(reproduced_once(tmp_path_factory), tmp_path / "project")
    run = run_act(
        project,
        "drift.yml",
        "workflow_dispatch",
        dispatch("", False),
        tmp_path / "act",
        secrets={"GITHUB_TOKEN": TOKEN},
    )
    succeeded(run)
    assert "Drift check skipped" in run.output
    assert not run.step_ran("Drift check")
