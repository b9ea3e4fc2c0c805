"""The helper scripts the workflows run, on small inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.tools import run_tool

from .harness import REPO_ROOT, SCRIPTS, load_script

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


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
    sha = run_tool(["git", "rev-parse", "HEAD"], cwd=repo).stdout.strip()
    result = run_tool(
        [sys.executable, SCRIPTS / "release_info.py", "metadata.json", "notes.md"],
        cwd=repo,
        env={**os.environ, "GITHUB_OUTPUT": str(output), "GITHUB_SHA": sha},
    )
    assert result.stdout
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


def tag(repo: Path, name: str, model_md5: str) -> None:
    run_tool(
        ["git", "tag", "-a", name, "-m", f"Registering {name}", "-m", f"model-md5: {model_md5}"],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    env = {**os.environ, **GIT_ENV}
    run_tool(["git", "init", "-q", tmp_path])
    run_tool(
        ["git", "commit", "-q", "--allow-empty", "-m", "x"],
        cwd=tmp_path,
        env={**env, "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z"},
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
    printed = run_tool(
        [sys.executable, SCRIPTS / "release_info.py", "--build-args", "metadata.json"], cwd=repo
    ).stdout
    facts = release_info(repo, "a" * 32)
    build_args = dict(line.split("=", 1) for line in printed.splitlines())
    assert build_args == {
        arg: facts[fact] for arg, fact in load_script("release_info").BUILD_ARGS.items()
    }
    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/release.yml").read_text())
    builds = [
        step["with"]
        for step in workflow["jobs"]["release"]["steps"]
        if str(step.get("uses", "")).startswith("docker/build-push-action@")
    ]
    # The build that is smoke-tested and scanned (loaded) and the build that is pushed
    # (from the same builder's cache) are given the same image inputs.
    loaded, pushed = builds
    assert (loaded["load"], loaded["push"], pushed["push"]) == (True, False, True)
    assert "load" not in pushed and not {"sbom", "provenance"} & loaded.keys()
    for key in ("context", "tags", "build-args"):
        assert loaded[key] == pushed[key], key
    for block in (build["build-args"] for build in builds):
        given = dict(line.strip().split("=", 1) for line in block.splitlines() if line.strip())
        for arg, fact in load_script("release_info").BUILD_ARGS.items():
            assert given[arg] == "${{ steps.facts.outputs." + fact + " }}"


def test_release_info_names_a_bad_metadata_file(repo: Path) -> None:
    (repo / "metadata.json").write_text("{}")
    result = run_tool(
        [sys.executable, SCRIPTS / "release_info.py", "metadata.json", "notes.md"],
        cwd=repo,
        check=False,
    )
    assert result.returncode == 2
    assert "metadata.json: cannot read the model and data versions" in result.stdout


def test_lock_check_ignores_missing_data_and_reports_changes() -> None:
    check = load_script("dvc_lock_check")
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
    check = load_script("dvc_lock_reproduced")
    status, lines = check.verdict(tiny_lock(), tiny_lock())
    assert status == 0
    assert lines == ["dvc.lock is as committed: this commit's lock is what its pipeline makes."]


def test_reproduced_lock_names_the_stages_that_changed_and_what_to_do() -> None:
    check = load_script("dvc_lock_reproduced")
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
    check = load_script("dvc_lock_reproduced")
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
    smoke = load_script("smoke_test")
    row = smoke.example_row(metadata("a" * 32)["features"])
    assert row == {"size": 5.0, "count": 2, "colour": "red"}
    one_sided = [
        {"name": "age", "dtype": "int", "min": 18.0},
        {"name": "debt", "dtype": "float", "max": -1.5},
        {"name": "free", "dtype": "float"},
    ]
    assert smoke.example_row(one_sided) == {"age": 18, "debt": -1.5, "free": 0.0}


def git_in(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def commit_files(repo: Path, message: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git_in(repo, "add", "-A")
    git_in(repo, "commit", "-q", "-m", message)
    return git_in(repo, "rev-parse", "HEAD")


def uv_lock(**versions: str) -> str:
    """A uv.lock with one registry package per name and version given."""
    packages = "".join(
        f'[[package]]\nname = "{name}"\nversion = "{version}"\n'
        'source = { registry = "https://pypi.org/simple" }\n\n'
        for name, version in versions.items()
    )
    return f'version = 1\nrequires-python = ">=3.11"\n\n{packages}'


# --- what_changed.py: does a change shape the model? ---------------------------------


@pytest.mark.parametrize(
    "changed",
    [
        ["README.md"],
        ["docs/guide.md", "README.md", "CONTRIBUTING.md"],
        ["tests/unit/test_cli.py", "Makefile"],
        [".github/workflows/release.yml"],
        ["docs/params.yaml", "notes/src/x.py"],
    ],
)
def test_changes_that_shape_no_model_train_nothing(changed: list[str]) -> None:
    decision = load_script("what_changed").decide(changed)
    assert not decision.train
    assert decision.reasons == ()
    summary = decision.summary()
    assert "nothing to train: this change touches no file that shapes the model (" in summary
    assert "`params.yaml`" in summary and "scikit-learn" in summary
    assert all(f"`{path}`" in summary for path in changed)


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        (["README.md", "data/external/customers.csv.dvc"], "data/external/customers.csv.dvc"),
        (["customers.csv.dvc"], "customers.csv.dvc"),
        (["params.yaml"], "params.yaml"),
        (["dvc.yaml"], "dvc.yaml"),
        (["dvc.lock"], "dvc.lock"),
        (["src/tabml/stages/train.py", "README.md"], "src/tabml/stages/train.py"),
        (["schemas/breast_cancer.yaml"], "schemas/breast_cancer.yaml"),
        ([".github/workflows/train.yml"], ".github/workflows/train.yml"),
    ],
)
def test_changes_that_shape_the_model_train(changed: list[str], reason: str) -> None:
    decision = load_script("what_changed").decide(changed)
    assert decision.train
    assert decision.reasons == (reason,)
    assert "### training: this change shapes the model" in decision.summary()
    assert f"`{reason}`" in decision.summary()


def test_a_model_library_bumped_in_uv_lock_trains() -> None:
    decide = load_script("what_changed").decide
    base = uv_lock(**{"scikit-learn": "1.6.1", "rich": "13.0.0"})
    head = uv_lock(**{"scikit-learn": "1.7.0", "rich": "13.0.0"})
    decision = decide(["uv.lock"], base_lock=base, head_lock=head)
    assert decision.train
    assert decision.reasons == ("uv.lock: scikit-learn 1.6.1 -> 1.7.0",)
    # A library added or removed counts too.
    decision = decide(["uv.lock"], base_lock=uv_lock(rich="13.0.0"), head_lock=head)
    assert decision.reasons == ("uv.lock: scikit-learn absent -> 1.7.0",)


def test_an_unrelated_package_bumped_in_uv_lock_trains_nothing() -> None:
    decide = load_script("what_changed").decide
    base = uv_lock(**{"scikit-learn": "1.6.1", "rich": "13.0.0", "pytest": "8.3.0"})
    head = uv_lock(**{"scikit-learn": "1.6.1", "rich": "14.1.0", "pytest": "8.4.0"})
    decision = decide(["uv.lock", "pyproject.toml"], base_lock=base, head_lock=head)
    assert not decision.train, decision.reasons


def test_every_model_library_is_in_the_lock() -> None:
    """A misspelt name in MODEL_LIBRARIES would never match: each is a locked package."""
    what_changed = load_script("what_changed")
    locked = what_changed.locked_versions((REPO_ROOT / "uv.lock").read_text())
    assert not what_changed.MODEL_LIBRARIES - set(locked)


def test_an_unreadable_uv_lock_trains() -> None:
    decision = load_script("what_changed").decide(
        ["uv.lock"], base_lock=uv_lock(numpy="2.0.0"), head_lock="[[package]\nbroken"
    )
    assert decision.train
    assert decision.reasons[0].startswith("uv.lock: cannot be read")


def what_changed(repo: Path, base: str, head: str) -> tuple[subprocess.CompletedProcess[str], str]:
    output, summary = repo.parent / "output.txt", repo.parent / "summary.md"
    output.write_text("")
    summary.write_text("")
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "what_changed.py"), base, head],
        cwd=repo,
        env={**os.environ, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert summary.read_text() in result.stdout, "the log says what the job summary says"
    return result, output.read_text()


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """main with params, code and a lock; origin/main as a full-history checkout has it."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    commit_files(
        repo,
        "base",
        {
            "params.yaml": "train: {C: 1.0}\n",
            "src/tabml/train.py": "C = 1\n",
            "README.md": "# x\n",
            "uv.lock": uv_lock(**{"scikit-learn": "1.6.1", "rich": "13.0.0"}),
        },
    )
    git_in(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    return repo


def test_what_changed_compares_with_the_merge_base(history: Path) -> None:
    git_in(history, "checkout", "-q", "-b", "docs")
    commit_files(history, "docs", {"README.md": "# better docs\n"})
    # main moves on with a params change after the branch point: not this change's.
    git_in(history, "checkout", "-q", "main")
    commit_files(history, "tune", {"params.yaml": "train: {C: 0.5}\n"})
    git_in(history, "update-ref", "refs/remotes/origin/main", "HEAD")
    result, output = what_changed(history, "origin/main", "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert output == "train=false\n"
    assert "nothing to train" in result.stdout
    assert "`README.md`" in result.stdout


def test_what_changed_sees_a_locked_library_move_and_a_file_moved_away(history: Path) -> None:
    git_in(history, "checkout", "-q", "-b", "bump")
    commit_files(history, "bump", {"uv.lock": uv_lock(**{"scikit-learn": "1.7.0", "rich": "13"})})
    result, output = what_changed(history, "origin/main", "HEAD")
    assert output == "train=true\n", result.stdout
    assert "uv.lock: scikit-learn 1.6.1 -> 1.7.0" in result.stdout
    git_in(history, "checkout", "-q", "-b", "move", "main")
    git_in(history, "mv", "src/tabml/train.py", "notes.py")
    git_in(history, "commit", "-q", "-m", "move")
    result, output = what_changed(history, "origin/main", "HEAD")
    assert output == "train=true\n", result.stdout
    assert "src/tabml/train.py" in result.stdout


def test_what_changed_names_a_revision_it_cannot_find(history: Path) -> None:
    result, output = what_changed(history, "origin/release", "HEAD")
    assert result.returncode == 2
    assert output == ""
    assert "base 'origin/release': not a commit in this checkout's history" in result.stdout


# --- resolve_base.py: the champion, from a branch, tag or SHA -------------------------


def resolve_base(repo: Path, value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "resolve_base.py"), "--name", "input base", "--", value],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )


def test_base_resolves_a_branch_on_origin_a_tag_or_a_sha(history: Path) -> None:
    first = git_in(history, "rev-parse", "HEAD")
    git_in(history, "tag", "-a", "model@v1.0.0", "-m", "first model")
    second = commit_files(history, "tune", {"params.yaml": "train: {C: 0.5}\n"})
    git_in(history, "update-ref", "refs/remotes/origin/main", "HEAD")
    git_in(history, "update-ref", "refs/remotes/origin/v2", first)
    git_in(history, "tag", "v2", second)  # a branch and a tag of one name: the branch
    expected = {
        "main": second,
        "model@v1.0.0": first,
        "v2": first,
        first: first,
        first[:7]: first,
        second.upper(): second,
    }
    for value, sha in expected.items():
        result = resolve_base(history, value)
        assert result.returncode == 0, (value, result.stderr)
        assert result.stdout == f"{sha}\n", value


@pytest.mark.parametrize(
    "value",
    ["release", "", "--all", "main..HEAD", "HEAD~1", "feature", "0123456789abcdef"],
)
def test_base_that_names_no_commit_is_refused_by_name(history: Path, value: str) -> None:
    git_in(history, "branch", "feature")  # a local branch, not on origin
    result = resolve_base(history, value)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"input base {value!r}: not a branch on origin, a tag, or a commit SHA" in (
        result.stderr
    )


SHA, TIP = "1" * 40, "2" * 40


def model_tag(name: str, md5: str | None, commit: str = SHA) -> object:
    info = load_script("release_info")
    match = info.SEMVER.match(name)
    return info.ModelTag(name, tuple(int(p) for p in match.groups()), md5, commit)


def test_model_tags_are_read_from_git_for_each_ref() -> None:
    info = load_script("release_info")
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
    info = load_script("release_info")
    assert info.version_for("a" * 32, []) == ((1, 0, 0), None)
    first = model_tag("model@v1.0.0", "a" * 32)
    again = model_tag("model@v1.3.0", "a" * 32)
    tags = [model_tag("model@v1.10.0", "b" * 32), again, first, model_tag("model@v1.9.0", None)]
    assert info.version_for("a" * 32, tags) == ((1, 0, 0), first)
    assert info.version_for("c" * 32, tags) == ((1, 11, 0), None)
    assert info.version_for("c" * 32, [model_tag("model@v2.4.7", "b" * 32)]) == ((2, 5, 0), None)


def test_image_tag_names_one_image_forever() -> None:
    info = load_script("release_info")
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
    verdict = load_script("release_info").is_current(
        sha=sha, ref=ref, default_branch="main", tip=TIP, ancestor=ancestor, changed_since=changed
    )
    assert verdict.current is current, verdict.reason
    assert verdict.reason


def test_docs_only_globs_match_the_release_trigger() -> None:
    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/release.yml").read_text())
    on = workflow.get("on", workflow.get(True))
    assert tuple(on["push"]["paths-ignore"]) == load_script("release_info").DOCS_ONLY


def plan_for(**given: object) -> object:
    facts: dict[str, object] = {
        "new": False,
        "image_tag": "v1.0.0",
        "version": "v1.0.0",
        "image_digest": "",
        "latest_digest": "",
        "release_exists": False,
    }
    return load_script("release_info").plan(**{**facts, **given})


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
    assert load_script("release_info").created_label(1767323045) == "2026-01-02T03:04:05Z"
