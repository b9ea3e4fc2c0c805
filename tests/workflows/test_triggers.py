"""Which events start which workflow, read from the YAML (act ignores path filters)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

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
        ["data/external/customers.csv.dvc"],
        ["src/tabml/stages/train.py"],
        ["README.md"],
        ["docs/guide.md", "README.md"],
        ["tests/unit/test_cli.py"],
    ],
)
def test_training_starts_on_every_pull_request(changed: list[str]) -> None:
    """No path filter: a filtered-out workflow never reports its required check, so a
    docs-only pull request would wait on it forever. The job decides what to train."""
    assert starts(triggers("train.yml"), "pull_request", changed)


def test_training_runs_in_a_merge_queue() -> None:
    on = triggers("train.yml")
    assert on["merge_group"] == {"types": ["checks_requested"]}
    assert starts(on, "merge_group", ["README.md"])


def test_training_can_be_started_by_hand() -> None:
    on = triggers("train.yml")
    assert set(on) == {"pull_request", "merge_group", "workflow_dispatch"}
    assert set(on["workflow_dispatch"]["inputs"]) == {"base"}
    assert on["workflow_dispatch"]["inputs"]["base"]["default"] == "main"


# Events whose runs have `inputs` (a manual run, a call from another workflow).
INPUT_EVENTS = {"workflow_dispatch", "workflow_call"}


def events_where(condition: str, events: set[str]) -> set[str]:
    """The events a step's `if:` lets it run on, when it names them; else all of them."""
    named = set(re.findall(r"github\.event_name\s*==\s*'([\w-]+)'", condition))
    return named or events


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda path: path.name)
def test_inputs_are_read_only_where_a_run_has_them(path: Path) -> None:
    """`inputs.x` is empty outside a manual or called run: a step that runs only on
    other events and reads it reads nothing (a setting that silently does nothing)."""
    workflow = load_workflow(path.name)
    events = set(triggers(path.name))
    declared = set((triggers(path.name).get("workflow_dispatch") or {}).get("inputs") or {})
    for job_name, job in workflow["jobs"].items():
        job_events = events_where(str(job.get("if", "")), events)
        for step in job.get("steps", []):
            text = yaml.safe_dump(step)
            read = set(re.findall(r"\binputs\.([\w-]+)", text))
            if not read:
                continue
            where = events_where(str(step.get("if", "")), job_events)
            assert where & INPUT_EVENTS, (
                f"{path.name} {job_name}: step {step.get('name', step.get('uses'))!r} reads "
                f"inputs {sorted(read)} but runs only on {sorted(where)}"
            )
            assert read <= declared, f"{path.name}: undeclared inputs {sorted(read - declared)}"


def test_ci_runs_on_every_push_and_pull_request() -> None:
    on = triggers("ci.yml")
    assert starts(on, "push", ["README.md"])
    assert starts(on, "pull_request", ["README.md"])


def test_release_runs_on_main_only() -> None:
    on = triggers("release.yml")
    assert set(on) == {"push", "workflow_dispatch"}
    assert on["push"] == {"branches": ["main"]}


def test_no_workflow_runs_fork_code_with_secrets() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        on = triggers(path.name)
        assert "pull_request_target" not in on, path.name
        assert "workflow_run" not in on, path.name
