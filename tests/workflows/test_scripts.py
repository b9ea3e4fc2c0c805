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
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "release_info.py"), "metadata.json", "notes.md"],
        cwd=repo,
        env={**os.environ, "GITHUB_OUTPUT": str(output)},
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
        ["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=tmp_path, env=env, check=True
    )
    return tmp_path


def test_first_release_is_v1(repo: Path) -> None:
    facts = release_info(repo, "a" * 32)
    assert facts == {
        "model-name": "m",
        "model-md5": "a" * 32,
        "data-md5": "d" * 32,
        "params-sha256": "84464aa398ef5a9ca058112718c8ae04823cb9148cb7f6622fc17d91607cb78c",
        "metrics": "f1=0.97561,test_rows=114",
        "version": "v1.0.0",
        "tag": "model@v1.0.0",
        "new": "true",
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
    assert len(builds) == 2
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


def tiny_lock(*, raw_md5: str = "a" * 32, model_md5: str = "b" * 32, c: float = 1.0) -> str:
    """A two-stage dvc.lock as DVC writes it."""
    return yaml.safe_dump(
        {
            "schema": "2.0",
            "stages": {
                "ingest": {
                    "cmd": "tabml ingest",
                    "deps": [{"path": "data/external", "hash": "md5", "md5": raw_md5 + ".dir"}],
                    "outs": [{"path": "data/raw/dataset.csv", "hash": "md5", "md5": raw_md5}],
                },
                "train": {
                    "cmd": "tabml train",
                    "deps": [{"path": "data/raw/dataset.csv", "hash": "md5", "md5": raw_md5}],
                    "params": {"params.yaml": {"train": {"C": c}}},
                    "outs": [{"path": "models/model.joblib", "hash": "md5", "md5": model_md5}],
                },
            },
        },
        sort_keys=False,
    )


def test_reproduced_lock_as_committed_passes() -> None:
    check = load("dvc_lock_reproduced")
    status, lines = check.verdict(tiny_lock(), tiny_lock())
    assert status == 0
    assert lines == ["dvc.lock is as committed: this commit's lock is what its pipeline makes."]


def test_reproduced_lock_names_the_stages_that_changed_and_what_to_do() -> None:
    check = load("dvc_lock_reproduced")
    # New data behind the pointer: ingest's input and output change, and train's after it.
    status, lines = check.verdict(tiny_lock(), tiny_lock(raw_md5="c" * 32, model_md5="d" * 32))
    assert status == 1
    assert lines[:2] == [
        "  ingest: data/external, data/raw/dataset.csv",
        "  train: data/raw/dataset.csv, models/model.joblib",
    ]
    assert lines[2].startswith("::error title=dvc.lock is not what this commit reproduces::")
    assert "2 stage(s): ingest, train." in lines[2]
    assert lines[2].endswith(
        "Run `dvc repro` (or `make repro`), then commit dvc.lock (and `dvc push`)."
    )
    # A param, and a stage the committed lock lacks or the pipeline dropped.
    assert check.changed_stages(yaml.safe_load(tiny_lock()), yaml.safe_load(tiny_lock(c=0.5))) == {
        "train": ["params.yaml:train"]
    }
    two = yaml.safe_load(tiny_lock())
    one = {"stages": {"ingest": two["stages"]["ingest"]}}
    assert check.changed_stages(one, two) == {"train": ["not in the committed dvc.lock"]}
    assert check.changed_stages(two, one) == {"train": ["no longer in the pipeline"]}
    # A committed lock left broken (a merge conflict, say) is named, not a traceback.
    status, lines = check.verdict("stages: [", tiny_lock())
    assert status == 1 and "not valid YAML::the committed dvc.lock" in lines[0]
    # No committed lock at all: every stage is new.
    status, lines = check.verdict(None, tiny_lock())
    assert status == 1 and "ingest, train" in lines[-1]


def test_reproduced_lock_that_differs_only_in_formatting_passes() -> None:
    check = load("dvc_lock_reproduced")
    reformatted = yaml.safe_dump(yaml.safe_load(tiny_lock()), sort_keys=True)
    assert reformatted != tiny_lock()
    status, lines = check.verdict(tiny_lock(), reformatted)
    assert status == 0 and "the same stage records" in lines[0]


def test_reproduced_lock_check_reads_the_committed_lock_from_git(repo: Path) -> None:
    env = {**os.environ, **GIT_ENV}
    script = [sys.executable, str(SCRIPTS / "dvc_lock_reproduced.py")]
    (repo / "dvc.lock").write_text(tiny_lock())
    subprocess.run(["git", "add", "dvc.lock"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "lock"], cwd=repo, env=env, check=True)
    passed = subprocess.run(script, cwd=repo, capture_output=True, text=True, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    (repo / "dvc.lock").write_text(tiny_lock(model_md5="e" * 32))
    failed = subprocess.run(script, cwd=repo, capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert "  train: models/model.joblib" in failed.stdout
    assert "1 stage(s): train." in failed.stdout
    (repo / "dvc.lock").unlink()
    missing = subprocess.run(script, cwd=repo, capture_output=True, text=True, check=False)
    assert missing.returncode == 1
    assert "cannot read dvc.lock" in missing.stdout


def test_smoke_row_follows_the_schema() -> None:
    smoke = load("smoke_test")
    row = smoke.example_row(metadata("a" * 32)["features"])
    assert row == {"size": 5.0, "count": 2, "colour": "red"}
