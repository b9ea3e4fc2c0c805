"""Drift becomes one GitHub issue, updated on later runs; no drift files nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tabml.cli import main

from ..github_api import github_issues_api

REPO, TOKEN = "acme/churn", "test-token"


def summary(drifted: list[str]) -> dict[str, Any]:
    return {
        "drift_detected": bool(drifted),
        "reasons": [f"{len(drifted)} of 3 features drifted: {', '.join(drifted)}"]
        if drifted
        else [],
        "drifted_features": drifted,
        "sample_rows": 100,
        "reference_rows": 455,
        "features": [
            {"feature": name, "test": "ks", "p_value": 1e-9, "psi": 0.8, "drifted": name in drifted}
            for name in ("a", "b", "c")
        ],
        "predictions": {"reference_shares": [0.6, 0.4], "sample_shares": [0.5, 0.5], "psi": 0.04},
    }


def run(tmp_path: Path, drifted: list[str], api: str, *extra: str) -> int:
    path = tmp_path / "drift.json"
    path.write_text(json.dumps(summary(drifted)))
    return main(
        [
            "drift-issue",
            "--summary",
            str(path),
            "--repo",
            REPO,
            "--api-url",
            api,
            "--run-url",
            "https://ci.example/run/1",
            *extra,
        ]
    )


def test_files_once_then_updates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with github_issues_api(REPO, TOKEN) as (api, state):
        assert run(tmp_path, ["a"], api) == 0
        assert "created issue #1" in capsys.readouterr().out
        assert run(tmp_path, ["a", "b"], api) == 0
        assert "updated issue #1" in capsys.readouterr().out
        assert len(state.issues) == 1
        issue = state.issues[0]
        assert issue["labels"] == ["drift"]
        assert "2 of 3 features drifted: a, b" in issue["body"]
        assert "| b | ks |" in issue["body"]
        assert "https://ci.example/run/1" in issue["body"]
        assert [method for method, _ in state.calls] == ["GET", "POST", "GET", "PATCH"]


def test_no_drift_files_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with github_issues_api(REPO, TOKEN) as (api, state):
        assert run(tmp_path, [], api) == 0
        assert state.calls == []


def test_a_closed_issue_is_not_reopened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with github_issues_api(REPO, TOKEN) as (api, state):
        assert run(tmp_path, ["a"], api) == 0
        state.issues[0]["state"] = "closed"
        assert run(tmp_path, ["c"], api) == 0
        assert [issue["number"] for issue in state.issues] == [1, 2]


def test_api_errors_and_bad_input_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    with github_issues_api(REPO, TOKEN) as (api, _):
        assert run(tmp_path, ["a"], api) == 1
    assert "HTTP 401" in capsys.readouterr().err
    monkeypatch.delenv("GITHUB_TOKEN")
    assert run(tmp_path, ["a"], "http://127.0.0.1:9") == 2
    assert "GITHUB_TOKEN is not set" in capsys.readouterr().err
    assert main(["drift-issue", "--summary", str(tmp_path / "absent.json"), "--repo", REPO]) == 2
    assert "run `tabml drift` first" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    assert run(tmp_path, ["a"], "http://127.0.0.1:9", "--repo", "no-slash") == 2
    assert "--repo 'no-slash': must be OWNER/NAME" in capsys.readouterr().err
