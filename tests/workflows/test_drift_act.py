"""drift.yml under act: a sample in a real S3 server on 127.0.0.1, a stand-in for GitHub's
issues and pulls API. Drift found by the daily run (in the sample the DRIFT_SAMPLE_URL
variable names) files one issue, and a dispatch (its sample-url input over the variable)
updates it; a sample without drift files nothing. With retraining on and an imported data
source, the retrain job pushes a branch to the origin (a bare repository) and opens one
pull request; with nothing to refresh it opens none."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tabml.config import load_params
from tests.github_api import github_issues_api
from tests.integration.project import copy_project
from tests.integration.servers import ACCESS_KEY, SECRET_KEY, rclone_s3

from .harness import REPOSITORY, ActRun, publish_origin, run_act
from .test_act import S3_SECRETS, reproduced_once, with_env

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


def branches(bare: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "--git-dir", str(bare), "for-each-ref", "--format=%(refname:short)", "refs/heads"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


def git_in(bare: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(bare), *args], capture_output=True, text=True, check=True
    ).stdout


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

        def drift_run(sample: str, name: str, retrain: bool = False, variable: str = "") -> ActRun:
            """A dispatch with `sample` as its input (a scheduled run without one),
            `variable` as the DRIFT_SAMPLE_URL repository variable."""
            (tmp_path / name).mkdir()
            variables = {"DRIFT_S3_ENDPOINT": s3.endpoint}
            if variable:
                variables["DRIFT_SAMPLE_URL"] = f"s3://monitoring/{variable}"
            if sample:
                event_name, event = (
                    "workflow_dispatch",
                    dispatch(f"s3://monitoring/{sample}", retrain),
                )
            else:
                # A scheduled run has no inputs, and its event names no repository.
                event_name, event = "schedule", {"schedule": "17 6 * * *"}
            return run_act(
                project,
                "drift.yml",
                event_name,
                event,
                tmp_path / name,
                secrets=SECRETS,
                env={"GITHUB_API_URL": api},
                variables=variables,
            )

        # The daily run reads the sample the repository variable names.
        first = drift_run("", "first", variable="shifted.jsonl")
        succeeded(first)
        assert first.step_succeeded("Fetch the sample")
        assert first.step_succeeded("File or update the drift issue")
        assert "created issue #1" in first.output
        [issue] = issues.issues
        assert issue["labels"] == ["drift"]
        drifted = f"1 of {len(schema.features)} features drifted: {feature}"
        assert drifted in issue["body"]
        assert "s3://monitoring/shifted.jsonl" in issue["body"]
        assert not first.step_ran("Refresh the data (tabml refresh-data)"), "only when asked"
        assert branches(tmp_path / "origin.git") == ["main"]
        [artifact] = first.calls("upload-artifact")
        assert artifact["inputs"]["name"] == "drift-report"
        page = next((first.record / "artifacts" / "drift-report").rglob("drift.html"))
        assert "Drift detected" in page.read_text()

        # A dispatch's sample-url input wins over the variable, here a sample without
        # drift: the issue is updated only if the input's shifted sample was checked.
        second = drift_run("shifted.jsonl", "second", retrain=True, variable="steady.jsonl")
        succeeded(second)
        assert "updated issue #1" in second.output
        assert "s3://monitoring/shifted.jsonl" in issues.issues[0]["body"]
        assert len(issues.issues) == 1
        # Retraining is on, but the bundled data has no source to refresh from.
        assert second.step_succeeded("Refresh the data (tabml refresh-data)")
        assert "nothing to refresh" in second.output
        assert "Nothing to retrain" in second.output
        assert not second.step_ran("Commit and push the retrain branch")
        assert branches(tmp_path / "origin.git") == ["main"]
        assert issues.pulls == []

        calls_before = list(issues.calls)
        steady = drift_run("steady.jsonl", "steady", retrain=True)
        succeeded(steady)
        assert steady.step_succeeded("Drift check")
        assert not steady.step_ran("File or update the drift issue")
        assert issues.calls == calls_before
        assert not steady.step_ran("Refresh the data (tabml refresh-data)")
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
    # Nothing was installed before the job knew it had nothing to check.
    assert not run.step_ran("Install the environment")
    assert not run.calls("setup-python") and not run.calls("setup-uv")


APP_CLIENT_ID = "Iv23retrain"
APP_TOKEN = f"ghs_installation_{APP_CLIENT_ID}"  # what the stand-in action issues
IMPORTED = "data/external/dataset.csv"


def test_drift_with_retraining_pushes_a_branch_and_opens_one_pull_request(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project = copy_project(reproduced_once(tmp_path_factory), tmp_path / "project")
    test = pd.read_parquet(project.path / "data/split/test.parquet")
    schema = project.schema()
    feature, target = schema.numeric_features[1], schema.target.name
    shifted = test.copy()
    shifted[feature] += shifted[feature].std()
    root = tmp_path / "s3"
    (root / "monitoring").mkdir(parents=True)
    (root / "monitoring/shifted.jsonl").write_text(logged(shifted, target))
    (root / "dvc").mkdir()
    # The training data is imported from elsewhere (here a file on this machine), so a
    # refresh is `dvc update`; the upstream copy then loses rows, as a new export might.
    upstream = tmp_path / "upstream/dataset.csv"
    upstream.parent.mkdir()
    rows = (project.path / "data/raw/dataset.csv").read_text().splitlines(keepends=True)
    upstream.write_text("".join(rows))
    project.dvc("import-url", str(upstream), IMPORTED)
    project.set_params(data={"source": "file", "path": IMPORTED, "sklearn_dataset": None})
    bare = tmp_path / "origin.git"

    with rclone_s3(root) as s3:
        project.dvc("remote", "add", "--default", "shared", "s3://dvc/models")
        project.dvc("remote", "modify", "shared", "endpointurl", s3.endpoint)
        project.repro()
        project.git("add", "-A")
        project.git("commit", "-q", "-m", "Train on the imported data, stored in shared S3")
        with_env(project, **S3_SECRETS).dvc("push", "--run-cache")
        publish_origin(project, bare)
        upstream.write_text("".join(rows[:-40]))

        with github_issues_api(REPOSITORY, TOKEN, (APP_TOKEN,), bare) as (api, state):

            def drift_run(name: str, variables: dict[str, str]) -> ActRun:
                return run_act(
                    project,
                    "drift.yml",
                    "workflow_dispatch",
                    dispatch("s3://monitoring/shifted.jsonl", retrain=True),
                    tmp_path / name,
                    secrets={**SECRETS, "RETRAIN_APP_PRIVATE_KEY": "-----BEGIN test key"},
                    env={"GITHUB_API_URL": api},
                    variables={"DRIFT_S3_ENDPOINT": s3.endpoint, **variables},
                )

            first = drift_run("with-app", {"RETRAIN_APP_CLIENT_ID": APP_CLIENT_ID})
            succeeded(first)
            [app] = first.calls("create-github-app-token")
            assert app["permissions"] == {"contents": "write", "pull-requests": "write"}
            assert "without a GitHub App" not in first.output
            for step in (
                "Refresh the data (tabml refresh-data)",
                "Reproduce the pipeline (dvc repro --pull)",
                "Push data, models and run-cache",
                "Commit and push the retrain branch",
                "Open or update the retraining pull request",
            ):
                assert first.step_succeeded(step), step
            assert "Running stage 'train'" in first.output, "the model was trained again"

            # The branch: one commit on main with the new data version and its model.
            assert branches(bare) == ["main", "retrain/drift"]
            assert git_in(bare, "rev-parse", "retrain/drift^") == git_in(bare, "rev-parse", "main")
            changed = git_in(bare, "diff", "--name-only", "main", "retrain/drift").split()
            assert f"{IMPORTED}.dvc" in changed and "dvc.lock" in changed
            assert "metrics/metrics.json" in changed
            lock = git_in(bare, "show", "retrain/drift:dvc.lock")
            assert lock != git_in(bare, "show", "main:dvc.lock")

            [issue] = state.issues
            [pull] = state.pulls
            assert pull["head"] == {"ref": "retrain/drift"} and pull["base"] == {"ref": "main"}
            assert pull["opened_with"] == APP_TOKEN, "an App's pull request starts train"
            assert f"Closes #{issue['number']}." in pull["body"]
            assert f"- `{IMPORTED}.dvc`" in pull["body"]
            assert "s3://monitoring/shifted.jsonl" in pull["body"]

            # Without an App the job warns, and updates the open pull request.
            tip = git_in(bare, "rev-parse", "retrain/drift")
            second = drift_run("without-app", {})
            succeeded(second)
            assert not second.calls("create-github-app-token")
            assert "Retraining pull request without a GitHub App" in second.output
            assert "updated pull request #" in second.output
            assert len(state.pulls) == 1
            assert git_in(bare, "rev-parse", "retrain/drift") != tip, "the branch was replaced"
            assert branches(bare) == ["main", "retrain/drift"]
