"""Which events start which workflow, read from the YAML (act ignores path filters)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .harness import WORKFLOWS, load_workflow


def triggers(name: str) -> dict[str, Any]:
    workflow = load_workflow(name)
    # PyYAML reads the bare key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict), f"{name}: `on` should be a mapping, got {on!r}"
    return on


def glob_regex(pattern: str) -> re.Pattern[str]:
    """GitHub's filter glob: `**` crosses folders, `*` and `?` do not."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def starts(on: dict[str, Any], event: str, changed: list[str]) -> bool:
    """Would a `event` changing `changed` start the workflow (paths/paths-ignore only)?"""
    if event not in on:
        return False
    config = on[event] or {}
    ignored = config.get("paths-ignore")
    if ignored is not None:
        return any(not any(glob_regex(p).fullmatch(f) for p in ignored) for f in changed)
    paths = config.get("paths")
    if paths is None:
        return True
    return any(glob_regex(p).fullmatch(f) for p in paths for f in changed)


def test_glob_matches_like_github() -> None:
    assert glob_regex("**.dvc").fullmatch("data/external/a.csv.dvc")
    assert glob_regex("**.dvc").fullmatch("a.dvc")
    assert glob_regex("src/**").fullmatch("src/tabml/stages/train.py")
    assert not glob_regex("src/*").fullmatch("src/tabml/cli.py")
    assert not glob_regex("params.yaml").fullmatch("docs/params.yaml")


@pytest.mark.parametrize(
    "changed",
    [
        ["params.yaml"],
        ["dvc.yaml"],
        ["dvc.lock"],
        ["data/external/customers.csv.dvc"],
        ["src/tabml/stages/train.py"],
        ["schemas/breast_cancer.yaml"],
        ["README.md", "params.yaml"],
    ],
)
def test_training_starts_on_pipeline_changes(changed: list[str]) -> None:
    assert starts(triggers("train.yml"), "pull_request", changed)


@pytest.mark.parametrize(
    "changed",
    [["README.md"], ["docs/guide.md", "README.md"], ["tests/unit/test_cli.py"], ["Makefile"]],
)
def test_training_does_not_start_on_other_changes(changed: list[str]) -> None:
    assert not starts(triggers("train.yml"), "pull_request", changed)


def test_training_can_be_started_by_hand() -> None:
    on = triggers("train.yml")
    assert set(on) == {"pull_request", "workflow_dispatch"}
    assert on["workflow_dispatch"]["inputs"]["base"]["default"] == "main"
    assert on["workflow_dispatch"]["inputs"]["publish-images"]["default"] is False


def test_ci_runs_on_every_push_and_pull_request() -> None:
    on = triggers("ci.yml")
    assert starts(on, "push", ["README.md"])
    assert starts(on, "pull_request", ["README.md"])


def test_release_runs_on_main_only() -> None:
    on = triggers("release.yml")
    assert set(on) == {"push", "workflow_dispatch"}
    assert on["push"]["branches"] == ["main"]


@pytest.mark.parametrize(
    ("changed", "released"),
    [
        (["README.md"], False),
        (["docs/guide.md", "CONTRIBUTING.md", "LICENSE"], False),
        ([".github/ISSUE_TEMPLATE/bug_report.yml"], False),
        (["README.md", "dvc.lock"], True),
        (["src/tabml/serve/app.py"], True),
        (["uv.lock"], True),
    ],
)
def test_docs_only_changes_do_not_release(changed: list[str], released: bool) -> None:
    assert starts(triggers("release.yml"), "push", changed) is released


@pytest.mark.parametrize(
    ("changed", "built"),
    [
        (["uv.lock"], True),
        (["Dockerfile"], True),
        (["src/tabml/serve/app.py"], True),
        ([".github/actions/smoke-test/action.yml"], True),
        (["README.md"], False),
        (["src/tabml/stages/train.py"], False),
    ],
)
def test_image_is_built_on_pull_requests_that_change_it(changed: list[str], built: bool) -> None:
    on = triggers("image.yml")
    assert set(on) == {"pull_request"}
    assert starts(on, "pull_request", changed) is built


def test_no_workflow_runs_fork_code_with_secrets() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        on = triggers(path.name)
        assert "pull_request_target" not in on, path.name
        assert "workflow_run" not in on, path.name
