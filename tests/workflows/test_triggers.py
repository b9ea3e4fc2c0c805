"""Which events start which workflow, read from the YAML (act ignores path filters)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import WORKFLOWS, load_script, load_workflow

glob_regex = load_script("github_glob").glob_regex


def triggers(name: str) -> dict[str, Any]:
    workflow = load_workflow(name)
    # PyYAML reads the bare key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict), f"{name}: `on` should be a mapping, got {on!r}"
    return on


def ref_passes(config: dict[str, Any], ref: str) -> bool:
    """GitHub's branches/tags filters for `ref` (a pushed ref, or a pull request's base).

    With only one kind of filter defined, refs of the other kind start nothing: a push
    filtered to branches ignores tags, and the other way round.
    """
    kind = "tags" if ref.startswith("refs/tags/") else "branches"
    other = "branches" if kind == "tags" else "tags"
    name = ref.removeprefix("refs/tags/").removeprefix("refs/heads/")
    included, ignored = config.get(kind), config.get(f"{kind}-ignore")
    if included is not None:
        return any(glob_regex(p).fullmatch(name) for p in included)
    if ignored is not None:
        return not any(glob_regex(p).fullmatch(name) for p in ignored)
    return other not in config and f"{other}-ignore" not in config


def starts(
    on: dict[str, Any], event: str, changed: list[str], ref: str = "refs/heads/main"
) -> bool:
    """Would `event` on `ref` changing `changed` start the workflow (ref and path filters)?"""
    if event not in on:
        return False
    config = on[event] or {}
    if not ref_passes(config, ref):
        return False
    ignored = config.get("paths-ignore")
    if ignored is not None:
        return any(not any(glob_regex(p).fullmatch(f) for p in ignored) for f in changed)
    paths = config.get("paths")
    # GitHub evaluates no path filter for a tag push.
    if paths is None or ref.startswith("refs/tags/"):
        return True
    return any(glob_regex(p).fullmatch(f) for p in paths for f in changed)


def test_glob_matches_like_github() -> None:
    assert glob_regex("**.dvc").fullmatch("data/external/a.csv.dvc")
    assert glob_regex("**.dvc").fullmatch("a.dvc")
    assert glob_regex("src/**").fullmatch("src/tabml/stages/train.py")
    assert not glob_regex("src/*").fullmatch("src/tabml/cli.py")
    assert not glob_regex("params.yaml").fullmatch("docs/params.yaml")


def test_ref_filters_match_like_github() -> None:
    branches_only, tags_only = {"branches": ["main", "release/**"]}, {"tags": ["v*"]}
    assert ref_passes(branches_only, "refs/heads/release/1.x")
    assert not ref_passes(branches_only, "refs/heads/lower-c")
    assert not ref_passes(branches_only, "refs/tags/v1.0.0")
    assert ref_passes(tags_only, "refs/tags/v1.0.0")
    assert not ref_passes(tags_only, "refs/heads/main")
    assert not ref_passes({"branches-ignore": ["main"]}, "refs/heads/main")
    assert ref_passes({}, "refs/heads/lower-c") and ref_passes({}, "refs/tags/v1.0.0")


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


def test_ci_runs_once_for_each_change() -> None:
    """A pull request's pushes start pull_request runs only; main's pushes start push runs."""
    on = triggers("ci.yml")
    for base in ("refs/heads/main", "refs/heads/release/1.x"):
        assert starts(on, "pull_request", ["README.md"], ref=base)
    # pull_request's default activities (opened, synchronize, reopened) cover every push.
    assert "types" not in (on["pull_request"] or {})
    for branch in ("refs/heads/lower-c", "refs/heads/dependabot/uv/python-1a2b"):
        assert not starts(on, "push", ["README.md"], ref=branch)
    assert starts(on, "push", ["README.md"], ref="refs/heads/main")
    assert not starts(on, "push", [], ref="refs/tags/model@v1.2.0")
    assert "workflow_dispatch" in on


def test_every_workflow_with_a_required_check_runs_in_a_merge_queue() -> None:
    # The README asks for ci's and train's checks to be required (rulesets).
    for name in ("ci.yml", "train.yml"):
        on = triggers(name)
        assert on["merge_group"] == {"types": ["checks_requested"]}, name
        assert starts(on, "merge_group", ["README.md"]), name


def test_ci_and_release_agree_on_the_main_branch() -> None:
    assert triggers("ci.yml")["push"]["branches"] == triggers("release.yml")["push"]["branches"]


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
        (["src/tabml/validation.py"], True),
        (["src/tabml/contract.py"], True),
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
