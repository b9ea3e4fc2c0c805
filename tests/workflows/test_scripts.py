"""The helper scripts the workflows run, on small inputs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from .harness import REPO_ROOT

SCRIPTS = REPO_ROOT / ".github" / "scripts"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first, as an import would: dataclasses look their module up by name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def metadata(model_md5: str) -> dict[str, object]:
    return {
        "model": {
            "name": "m",
            "version": model_md5,
            "estimator": "logistic_regression",
            "hyperparameters": {"C": 0.5},
        },
        "data": {"version": "d" * 32, "rows": 10},
        "metrics": {"f1": 0.97561, "test_rows": 114},
        "params": {"train": {"estimator": "logistic_regression"}},
        "git": {"revision": "c" * 40, "dirty": False},
        "features": [
            {"name": "size", "dtype": "float", "min": 0.0, "max": 10.0},
            {"name": "count", "dtype": "int", "min": 0, "max": 5},
            {"name": "colour", "dtype": "category", "allowed": ["red", "blue"]},
        ],
        "target": {"name": "label", "classes": ["no", "yes"]},
    }


def release_info(repo: Path, model_md5: str) -> dict[str, str]:
    (repo / "metadata.json").write_text(json.dumps(metadata(model_md5)))
    output = repo / "output.txt"
    output.write_text("")
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "release_info.py"), "metadata.json", "notes.md"],
        cwd=repo,
        env={**os.environ, "GITHUB_OUTPUT": str(output), "GITHUB_SHA": sha},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


def tag(repo: Path, name: str, model_md5: str) -> None:
    subprocess.run(
        ["git", "tag", "-a", name, "-m", f"Registering {name}", "-m", f"model-md5: {model_md5}"],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        check=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "x"],
        cwd=tmp_path,
        env={**env, "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z"},
        check=True,
    )
    return tmp_path


def test_first_release_is_v1(repo: Path) -> None:
    facts = release_info(repo, "a" * 32)
    assert facts == {
        "model-name": "m",
        "model-md5": "a" * 32,
        "data-md5": "d" * 32,
        "model-revision": "c" * 40,
        "params-sha256": "84464aa398ef5a9ca058112718c8ae04823cb9148cb7f6622fc17d91607cb78c",
        "metrics": "f1=0.97561,test_rows=114",
        "version": "v1.0.0",
        "tag": "model@v1.0.0",
        "new": "true",
        "image-tag": "v1.0.0",
        "created": "2026-01-02T03:04:05Z",
    }
    notes = (repo / "notes.md").read_text()
    assert "| f1 | 0.97561 |" in notes and "| test_rows | 114 |" in notes
    assert "a" * 32 in notes and "d" * 32 in notes


def test_release_notes_carry_the_model_card(repo: Path) -> None:
    (repo / "model_card.md").write_text("# Model card: m\n\n## Fairness\n\nparity 0.1\n")
    release_info(repo, "a" * 32)
    notes = (repo / "notes.md").read_text()
    assert "<summary>Model card</summary>" in notes
    assert "## Model card: m" in notes and "### Fairness" in notes
    assert "parity 0.1" in notes


def test_unchanged_model_keeps_its_version(repo: Path) -> None:
    tag(repo, "model@v1.0.0", "a" * 32)
    tag(repo, "model@v1.2.0", "b" * 32)
    facts = release_info(repo, "b" * 32)
    assert (facts["version"], facts["new"]) == ("v1.2.0", "false")
    # The tags name this commit: a re-run of the release that registered the version.
    assert facts["image-tag"] == "v1.2.0"


def test_a_code_only_merge_gets_an_image_tag_of_its_own(repo: Path) -> None:
    tag(repo, "model@v1.0.0", "a" * 32)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "code"],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        check=True,
    )
    facts = release_info(repo, "a" * 32)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    assert (facts["version"], facts["new"]) == ("v1.0.0", "false")
    assert facts["image-tag"] == f"v1.0.0-{sha[:7]}"


def test_a_model_brought_back_keeps_its_first_version(repo: Path) -> None:
    """Found across all model tags, not only the latest one."""
    tag(repo, "model@v1.0.0", "a" * 32)
    tag(repo, "model@v1.1.0", "b" * 32)
    facts = release_info(repo, "a" * 32)
    assert (facts["tag"], facts["new"]) == ("model@v1.0.0", "false")


def test_new_model_gets_the_next_minor_version(repo: Path) -> None:
    tag(repo, "model@v1.9.0", "a" * 32)
    tag(repo, "model@v1.10.0", "b" * 32)  # numeric order, not text order
    tag(repo, "model@latest", "c" * 32)  # not a version: ignored
    facts = release_info(repo, "c" * 32)
    assert (facts["tag"], facts["new"]) == ("model@v1.11.0", "true")


def test_image_build_args_are_the_release_facts(repo: Path) -> None:
    """`make image` (release_info.py --build-args) and release.yml label an image alike."""
    (repo / "metadata.json").write_text(json.dumps(metadata("a" * 32)))
    printed = subprocess.run(
        [sys.executable, str(SCRIPTS / "release_info.py"), "--build-args", "metadata.json"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    facts = release_info(repo, "a" * 32)
    build_args = dict(line.split("=", 1) for line in printed.splitlines())
    assert build_args == {arg: facts[fact] for arg, fact in load("release_info").BUILD_ARGS.items()}
    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/release.yml").read_text())
    builds = [
        step["with"]["build-args"]
        for step in workflow["jobs"]["release"]["steps"]
        if str(step.get("uses", "")).startswith("docker/build-push-action@")
    ]
    assert len(builds) == 1, "one build: the smoke-tested image is the pushed image"
    for block in builds:
        given = dict(line.strip().split("=", 1) for line in block.splitlines() if line.strip())
        for arg, fact in load("release_info").BUILD_ARGS.items():
            assert given[arg] == "${{ steps.facts.outputs." + fact + " }}"


def test_release_info_names_a_bad_metadata_file(repo: Path) -> None:
    (repo / "metadata.json").write_text("{}")
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "release_info.py"), "metadata.json", "notes.md"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "metadata.json: cannot read the model and data versions" in result.stdout


def test_lock_check_ignores_missing_data_and_reports_changes() -> None:
    check = load("dvc_lock_check")
    fresh_checkout = {
        "ingest": [{"changed outs": {"data/raw/dataset.csv": "not in cache"}}],
        "split": [{"changed deps": {"data/validated/dataset.parquet": "deleted"}}],
    }
    assert check.stale_reasons(fresh_checkout) == []
    # A `dvc add`ed file in a folder that ingest depends on: absent, so the folder differs.
    without_added_data = {
        "ingest": [{"changed deps": {"data/external": "modified"}}],
        "data/external/mine.csv.dvc": [
            {"changed outs": {"data/external/mine.csv": "not in cache"}}
        ],
    }
    assert check.stale_reasons(without_added_data) == []
    assert check.stale_reasons({"ingest": [{"changed deps": {"data/external": "modified"}}]}) == [
        "ingest: data/external modified"
    ]
    stale = {
        "ingest": [{"changed deps": {"src/tabml/stages/ingest.py": "modified"}}],
        "train": [{"changed deps": {"params.yaml": {"train": "modified"}}}],
        "evaluate": [{"changed outs": {"metrics/metrics.json": "modified"}}],
        "export": ["changed command"],
    }
    assert check.stale_reasons(stale) == [
        "ingest: src/tabml/stages/ingest.py modified",
        "train: params.yaml section train modified",
        "evaluate: metrics/metrics.json modified",
        "export: changed command",
    ]


def test_smoke_row_follows_the_schema() -> None:
    smoke = load("smoke_test")
    row = smoke.example_row(metadata("a" * 32)["features"])
    assert row == {"size": 5.0, "count": 2, "colour": "red"}


SHA, TIP = "1" * 40, "2" * 40


def model_tag(name: str, md5: str | None, commit: str = SHA) -> object:
    info = load("release_info")
    match = info.SEMVER.match(name)
    return info.ModelTag(name, tuple(int(p) for p in match.groups()), md5, commit)


def test_model_tags_are_read_from_git_for_each_ref() -> None:
    info = load("release_info")
    listing = (
        f"model@v1.0.0\x1f{'9' * 40}\x1f{SHA}\x1fRegistering\n\nmodel-md5: {'a' * 32}\n\x1e\n"
        f"model@v1.1.0\x1f{TIP}\x1f\x1flightweight, no md5\n\x1e\n"
        f"model@latest\x1f{TIP}\x1f\x1fmodel-md5: {'c' * 32}\n\x1e\n"
    )
    assert info.parse_model_tags(listing) == [
        info.ModelTag("model@v1.0.0", (1, 0, 0), "a" * 32, SHA),
        info.ModelTag("model@v1.1.0", (1, 1, 0), None, TIP),
    ]


def test_version_for_a_model() -> None:
    info = load("release_info")
    assert info.version_for("a" * 32, []) == ((1, 0, 0), None)
    first = model_tag("model@v1.0.0", "a" * 32)
    again = model_tag("model@v1.3.0", "a" * 32)
    tags = [model_tag("model@v1.10.0", "b" * 32), again, first, model_tag("model@v1.9.0", None)]
    assert info.version_for("a" * 32, tags) == ((1, 0, 0), first)
    assert info.version_for("c" * 32, tags) == ((1, 11, 0), None)
    assert info.version_for("c" * 32, [model_tag("model@v2.4.7", "b" * 32)]) == ((2, 5, 0), None)


def test_image_tag_names_one_image_forever() -> None:
    info = load("release_info")
    registered = model_tag("model@v1.2.0", "a" * 32, commit=SHA)
    assert info.image_tag((1, 3, 0), None, SHA) == "v1.3.0"
    assert info.image_tag((1, 2, 0), registered, SHA) == "v1.2.0"
    assert info.image_tag((1, 2, 0), registered, TIP) == "v1.2.0-2222222"


@pytest.mark.parametrize(
    ("ref", "sha", "ancestor", "changed", "current"),
    [
        ("refs/heads/main", TIP, True, [], True),
        ("refs/heads/feature", TIP, True, [], False),
        ("refs/heads/main", SHA, True, ["README.md", "docs/a/b.md", "LICENSE"], True),
        ("refs/heads/main", SHA, True, ["README.md", "params.yaml"], False),
        ("refs/heads/main", SHA, True, ["src/tabml/README.md", "dvc.lock"], False),
        ("refs/heads/main", SHA, False, [], False),
    ],
)
def test_only_the_tip_of_the_default_branch_is_released(
    ref: str, sha: str, ancestor: bool, changed: list[str], current: bool
) -> None:
    verdict = load("release_info").is_current(
        sha=sha, ref=ref, default_branch="main", tip=TIP, ancestor=ancestor, changed_since=changed
    )
    assert verdict.current is current, verdict.reason
    assert verdict.reason


def test_docs_only_globs_match_the_release_trigger() -> None:
    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/release.yml").read_text())
    on = workflow.get("on", workflow.get(True))
    assert tuple(on["push"]["paths-ignore"]) == load("release_info").DOCS_ONLY


def plan_for(**given: object) -> object:
    facts: dict[str, object] = {
        "new": False,
        "image_tag": "v1.0.0",
        "version": "v1.0.0",
        "image_digest": "",
        "latest_digest": "",
        "release_exists": False,
    }
    return load("release_info").plan(**{**facts, **given})


def test_plan_a_first_release_does_everything() -> None:
    todo = plan_for(new=True)
    assert vars(todo) == {
        "build": True,
        "tag": True,
        "release": True,
        "record_image": False,
        "move_latest": True,
    }


def test_plan_a_second_run_does_nothing() -> None:
    todo = plan_for(image_digest="sha256:1", latest_digest="sha256:1", release_exists=True)
    assert not any(vars(todo).values())
    assert todo.summary() == "nothing to do: already released"


def test_plan_completes_what_an_interrupted_run_left() -> None:
    # Image pushed, tag pushed, then stopped: the release and latest remain.
    todo = plan_for(image_digest="sha256:1", latest_digest="sha256:0")
    assert vars(todo) == {
        "build": False,
        "tag": False,
        "release": True,
        "record_image": False,
        "move_latest": True,
    }
    # Image pushed, then stopped before the tag: tag, release and latest remain.
    todo = plan_for(new=True, image_digest="sha256:1")
    assert (todo.build, todo.tag, todo.release, todo.move_latest) == (False, True, True, True)
    # A release without its image: build it and record it in the release.
    todo = plan_for(release_exists=True)
    assert (todo.build, todo.release, todo.record_image) == (True, False, True)
    # A code-only merge: its own image; the version's release keeps its own image.
    todo = plan_for(image_tag="v1.0.0-abcdef1", release_exists=True, latest_digest="sha256:1")
    assert (todo.build, todo.release, todo.record_image, todo.move_latest) == (
        True,
        False,
        False,
        True,
    )


def test_created_label_is_the_commit_time_in_utc() -> None:
    assert load("release_info").created_label(1767323045) == "2026-01-02T03:04:05Z"


def test_reproduced_model_must_be_the_one_dvc_lock_names() -> None:
    info = load("release_info")
    lock = {
        "stages": {
            "train": {"outs": [{"path": "models/model.joblib", "md5": "1" * 32}]},
            "export": {
                "deps": [{"path": "models/model.joblib", "md5": "1" * 32}],
                "outs": [
                    {"path": "models/model.onnx", "md5": "2" * 32},
                    {"path": "models/metadata.json", "md5": "3" * 32},
                ],
            },
        }
    }
    committed = info.lock_outputs(lock)
    assert committed == {
        "models/model.joblib": "1" * 32,
        "models/model.onnx": "2" * 32,
        "models/metadata.json": "3" * 32,
    }
    assert info.reproduced_model(committed, dict(committed)) == (True, [])
    other_metadata = {**committed, "models/metadata.json": "4" * 32}
    assert info.reproduced_model(committed, other_metadata) == (True, ["models/metadata.json"])
    other_model = {**committed, "models/model.onnx": "5" * 32}
    assert info.reproduced_model(committed, other_model)[0] is False
    assert info.reproduced_model({}, {})[0] is False


def test_release_info_reproduced_names_the_model_that_differs(tmp_path: Path) -> None:
    committed, current = tmp_path / "committed.lock", tmp_path / "dvc.lock"
    out = "stages:\n  export:\n    outs:\n    - path: models/model.onnx\n      md5: {}\n"
    committed.write_text(out.format("2" * 32))
    current.write_text(out.format("5" * 32))
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "release_info.py"),
            "reproduced",
            str(committed),
            str(current),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"models/model.onnx is {'5' * 32} after dvc repro, not the {'2' * 32}" in result.stdout
