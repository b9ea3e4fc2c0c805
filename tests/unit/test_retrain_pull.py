"""After drift, one retraining pull request: opened once, then updated, never duplicated."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tabml.cli import main
from tabml.monitor.retrain import MARKER, pull_body

from ..github_api import github_issues_api

REPO, TOKEN, APP_TOKEN = "acme/churn", "test-token", "app-token"
BRANCH = "retrain/drift"


def retrain_pr(api: str, *extra: str) -> int:
    return main(
        [
            "retrain-pr",
            "--repo",
            REPO,
            "--api-url",
            api,
            "--branch",
            BRANCH,
            "--base",
            "main",
            "--sample-name",
            "s3://logs/today.jsonl",
            "--run-url",
            "https://ci.example/run/7",
            *extra,
        ]
    )


def test_the_body_says_why_what_changed_and_what_happens_next() -> None:
    body = pull_body(
        "s3://logs/today.jsonl",
        ["data/external/x.csv.dvc", "dvc.lock"],
        issue=4,
        run_url="https://ci.example/run/7",
        base="main",
    )
    assert body.startswith(MARKER)
    assert "Drift was found in `s3://logs/today.jsonl` (#4) by [this run]" in body
    assert "- `data/external/x.csv.dvc`\n- `dvc.lock`\n" in body
    assert "with the one on `main`" in body
    assert body.rstrip().endswith("Closes #4.")
    assert "Closes" not in pull_body("s", ["dvc.lock"], issue=None, run_url=None, base="main")


def test_opens_once_then_updates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", APP_TOKEN)
    with github_issues_api(REPO, TOKEN, other_tokens=(APP_TOKEN,)) as (api, state):
        assert retrain_pr(api, "--changed", "dvc.lock", "--issue", "3") == 0
        assert "opened pull request #1 from retrain/drift into main" in capsys.readouterr().out
        assert retrain_pr(api, "--changed", "dvc.lock", "metrics/metrics.json") == 0
        assert "updated pull request #1" in capsys.readouterr().out
        [pull] = state.pulls
        assert pull["head"] == {"ref": BRANCH} and pull["base"] == {"ref": "main"}
        assert pull["opened_with"] == APP_TOKEN
        assert "- `metrics/metrics.json`" in pull["body"], "the update replaced the body"
        assert [method for method, _ in state.calls] == ["GET", "POST", "GET", "PATCH"]


def test_a_closed_pull_request_is_not_reused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with github_issues_api(REPO, TOKEN) as (api, state):
        assert retrain_pr(api, "--changed", "dvc.lock") == 0
        state.pulls[0]["state"] = "closed"
        assert retrain_pr(api, "--changed", "dvc.lock") == 0
        assert "opened pull request #2" in capsys.readouterr().out
        assert [pull["state"] for pull in state.pulls] == ["closed", "open"]


def test_the_head_branch_must_have_been_pushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with github_issues_api(REPO, TOKEN, git_dir=bare) as (api, state):
        assert retrain_pr(api, "--changed", "dvc.lock") == 1
        assert "HTTP 422" in capsys.readouterr().err
        assert state.pulls == []


def test_bad_input_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    unreachable = "http://127.0.0.1:9"
    assert retrain_pr(unreachable, "--changed", "dvc.lock") == 2
    assert "GITHUB_TOKEN is not set; the pull request cannot be opened" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    assert retrain_pr(unreachable) == 2
    assert "a retrain that changed nothing trains nothing" in capsys.readouterr().err
    assert retrain_pr(unreachable, "--changed", "dvc.lock", "--repo", "nope") == 2
    assert "--repo 'nope': must be OWNER/NAME" in capsys.readouterr().err
