"""drift.yml, read as YAML: what each job may do, and that nothing is installed before the
job knows it has a sample (act shows the behaviour; this pins the shape)."""

from __future__ import annotations

from typing import Any

from .harness import load_workflow

WORKFLOW = load_workflow("drift.yml")
JOBS: dict[str, Any] = WORKFLOW["jobs"]
HAS_SAMPLE = "steps.sample.outputs.url != ''"


def test_the_drift_job_reads_code_and_writes_issues_only() -> None:
    # id-token: write only lets a job ask GitHub for an OIDC token (the AWS role step).
    assert JOBS["drift"]["permissions"] == {
        "contents": "read",
        "issues": "write",
        "id-token": "write",
    }


def test_only_the_retrain_job_writes_and_only_after_drift_when_asked() -> None:
    retrain = JOBS["retrain"]
    assert retrain["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
        "id-token": "write",
    }
    assert retrain["needs"] == "drift"
    assert "needs.drift.outputs.drifted == 'true'" in retrain["if"]
    assert "inputs.retrain" in retrain["if"] and "vars.DRIFT_RETRAIN == 'true'" in retrain["if"]
    assert set(JOBS) == {"drift", "retrain"}
    text = str(WORKFLOW)
    assert "actions: write" not in text and "'actions'" not in text
    assert "workflow run" not in text, "no dispatch of train: the pull request starts it"


def test_the_sample_is_checked_before_anything_is_installed() -> None:
    steps = JOBS["drift"]["steps"]
    assert steps[0]["id"] == "sample"
    for step in steps[1:]:
        condition = step.get("if", "")
        assert HAS_SAMPLE in condition or "steps.drift.outputs" in condition, step


def test_a_github_app_token_is_used_when_configured() -> None:
    steps = JOBS["retrain"]["steps"]
    [app] = [step for step in steps if step.get("id") == "app"]
    assert app["uses"].startswith("actions/create-github-app-token@")
    assert app["if"] == "vars.RETRAIN_APP_CLIENT_ID != ''"
    assert app["with"]["permission-contents"] == "write"
    assert app["with"]["permission-pull-requests"] == "write"
    for name in (
        "Commit and push the retrain branch",
        "Open or update the retraining pull request",
    ):
        [step] = [step for step in steps if step.get("name") == name]
        tokens = [value for value in step["env"].values() if "token" in str(value).lower()]
        assert tokens == ["${{ steps.app.outputs.token || secrets.GITHUB_TOKEN }}"], name


def test_the_pull_request_merges_into_the_branch_the_run_judged() -> None:
    env = JOBS["retrain"]["env"]
    assert env["BASE"] == "${{ github.ref_name }}"
    [checkout] = [s for s in JOBS["retrain"]["steps"] if "checkout" in s.get("uses", "")]
    assert "ref" not in checkout["with"], "the commit the drift job judged"
    assert checkout["with"]["persist-credentials"] is False
