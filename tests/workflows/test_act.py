"""The workflows, run by `act` in host mode from event fixtures, on temporary copies.

- ci.yml on a push: every job succeeds; a params change without a new dvc.lock fails
  the lock check with the message that says what to do.
- train.yml on pull requests, against a real S3 server on 127.0.0.1 that the test seeds
  with the base branch's pushed cache and run-cache: `dvc repro --pull` restores the
  unchanged stages and retrains the rest; the gate passes for a better model and fails
  for a worse one; the CML stand-in gets the report and the `comment update` arguments;
  a fork's pull request gets no secrets, pushes nothing and posts nothing. A pull
  request that changes the data pointer without the dvc.lock it reproduces fails with
  the stages named and what to do; with that lock committed it passes.
- train.yml on a docs-only pull request and merge group: green, "nothing to train", the
  train job skipped; when the decision job fails, the train job fails rather than be
  skipped; a manual run with a `base` that names no commit stops, naming the input.
- release.yml on a merge to main: restores the model (dvc repro --pull), builds the real
  image (podman behind a `docker` command), smoke-tests and scans it, pushes it (with
  SBOM and provenance asked of build-push) to a stand-in registry, attests and signs the
  pushed digest, tags the model version in git, publishes a release with the metrics
  and the digest, and points latest at it; a scan finding fails the run only when
  vars.VULN_FAIL_ON says so, and a value it does not know stops the run before anything
  is built; run again, it changes nothing; after a run
  interrupted before the GitHub release, the next run completes it without rebuilding;
  a merged model that the remote lacks (a fork's) is trained, pushed and shipped; a run
  from another branch or for a commit that is no longer the tip releases nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from filelock import FileLock

from tabml.config import load_params
from tests.availability import require_tool
from tests.integration.project import Project, copy_project, new_project, project_env
from tests.integration.servers import ACCESS_KEY, SECRET_KEY, S3Server, rclone_s3
from tests.lineage import mismatches
from tests.ports import ADDRESS_IN_USE, unused_port
from tests.serve import test_container as container_tests

from .harness import (
    REPOSITORY,
    ActRun,
    pr_event,
    publish_origin,
    push_event,
    run_act,
)

pytestmark = pytest.mark.slow
# Runs of the release workflow, each on a newly chosen smoke-test port (see its test).
RELEASE_PORT_ATTEMPTS = 3

S3_SECRETS = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
BETTER_C, WORSE_C = 0.5, 0.0001
# A model no other test pushes to the shared S3 remote.
FORK_C = 0.3
WATERMARK = "--watermark-title=tabml training report"
LOCK_CHECK = "Check that the committed dvc.lock is what this commit reproduces"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("s3") / "root"
    (root / "dvc").mkdir(parents=True)
    with rclone_s3(root) as server:
        yield server


def with_env(project: Project, **env: str) -> Project:
    return Project(project.path, {**project.env, **env})


def quick_model_card(project: Project) -> None:
    """Fewer bootstrap samples for the model card: the slowest stage, not what is tested."""
    if "model_card" in project.read_params():
        project.set_params(model_card={"bootstrap_samples": 50})


def reproduced_once(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The template reproduced and committed, built once for all xdist workers."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with FileLock(str(shared / "workflows-reproduced.lock")):
        root = shared / "workflows-reproduced"
        project = Project(root / "project", project_env(root / "home"))
        if not (root / "done").is_file():
            shutil.rmtree(root, ignore_errors=True)
            project = new_project(root / "project", root / "local-remote")
            quick_model_card(project)
            project.repro()
            project.git("add", "-A")
            project.git("commit", "-q", "-m", "Reproduce")
            (root / "done").touch()
        return project


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Project:
    """main: S3 as the default remote, reproduced, committed, pushed with its run-cache."""
    require_tool("act")
    root = tmp_path_factory.mktemp("champion")
    project = copy_project(reproduced_once(tmp_path_factory), root / "project")
    # A name of its own: the copy's default remote (whatever `tabml init` named it)
    # has its URL overridden in .dvc/config.local.
    project.dvc("remote", "add", "--default", "shared", "s3://dvc/tabml")
    project.dvc("remote", "modify", "shared", "endpointurl", s3.endpoint)
    project.git("commit", "-q", "-am", "Use shared S3 storage")
    with_env(project, **S3_SECRETS).dvc("push", "--run-cache")
    publish_origin(project, root / "origin.git")
    return project


def remote_objects(s3: S3Server) -> set[str]:
    root = s3.root / "dvc"
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def pull_request(champion: Project, dest: Path, branch: str, c: float) -> Project:
    """A branch off main that changes train.logistic_regression.C, reproduced locally and
    committed with its dvc.lock, as the training workflow wants; nothing pushed."""
    project = copy_project(champion, dest)
    project.git("checkout", "-q", "-b", branch)
    estimator = dict(project.read_params()["train"]["logistic_regression"])  # type: ignore[index]
    estimator["C"] = c
    project.set_params(train={"logistic_regression": estimator})
    project.repro()
    project.git("add", "-A")
    project.git("commit", "-q", "-m", f"Try C={c}")
    return project


def lock_md5(lock_file: Path, path: str) -> str:
    lock = yaml.safe_load(lock_file.read_text())
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                return str(out["md5"])
    raise KeyError(path)


def remote_has(s3: S3Server, md5: str) -> bool:
    return (s3.root / "dvc" / "tabml" / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def assert_ran(run: ActRun, *steps: str) -> None:
    for step in steps:
        assert run.step_succeeded(step), f"step {step!r} did not succeed\n{run.explain()}"


def the_comment(run: ActRun, *, publish: bool = False) -> dict[str, Any]:
    calls = run.calls("cml")
    assert len(calls) == 1, f"expected one cml call, got {calls}\n{run.explain()}"
    call = calls[0]
    assert call["args"][:2] == ["comment", "update"], call
    assert "--target=pr" in call["args"]
    assert WATERMARK in call["args"]
    if publish:
        assert "--publish" in call["args"], "CML_PUBLISH_IMAGES=true opts in"
    else:
        assert "--no-publish" in call["args"], "images must not go to a public host by default"
    assert call["token_set"]
    assert "report.md" in call["files"], call
    return call


def test_train_on_pull_requests(champion: Project, s3: S3Server, tmp_path: Path) -> None:
    # A same-repository pull request with a better model: the gate passes.
    better = pull_request(champion, tmp_path / "better", "tune-c", BETTER_C)
    before = remote_objects(s3)
    run = run_act(
        better,
        "train.yml",
        "pull_request",
        pr_event(7, REPOSITORY, "tune-c"),
        tmp_path / "act-better",
        secrets={**S3_SECRETS, "GITHUB_TOKEN": "ghs_test"},
    )
    assert run.returncode == 0, run.explain()
    assert_ran(
        run,
        "Check the DVC remote",
        "Reproduce the pipeline (dvc repro --pull)",
        LOCK_CHECK,
        "Report and quality gate",
        "Push data, models and run-cache (trusted runs)",
        "Post or update the report comment",
    )
    assert not run.step_ran("Reproduce the pipeline (no remote)")
    assert not run.step_ran("Quality gate verdict")
    # Unchanged stages came from the remote; only the ones the params change retrained.
    for stage in ("ingest", "validate", "split"):
        assert f"Pulling data for stage: '{stage}'" in run.output, run.explain()
        assert f"Running stage '{stage}'" not in run.output
    assert "Running stage 'train'" in run.output
    report = the_comment(run)["files"]["report.md"]
    assert "quality gate passed" in report
    # The champion is the base branch's commit, resolved once for the whole run.
    assert f"against champion `{champion.git('rev-parse', 'main').strip()}`" in report
    assert "```mermaid" in report
    assert "![" not in report, "no images in the comment: plots go to the artifact"
    [artifact] = run.calls("upload-artifact")
    assert artifact["url"] in report
    assert (run.record / "artifacts" / "training-report" / "dvc_plots" / "index.html").is_file()
    # dvc push sent the new model to S3 (same-repository pull requests only).
    artifact_dir = run.record / "artifacts" / "training-report"
    new_model = lock_md5(artifact_dir / "dvc.lock", "models/model.onnx")
    assert new_model != champion.lock_md5("models/model.onnx")
    assert remote_has(s3, new_model)
    assert remote_objects(s3) > before

    # The same repository, a worse model: the report is posted, then the job fails.
    # The repository variable opts in to CML's image upload for pull requests.
    worse = pull_request(champion, tmp_path / "worse", "bad-c", WORSE_C)
    run = run_act(
        worse,
        "train.yml",
        "pull_request",
        pr_event(8, REPOSITORY, "bad-c"),
        tmp_path / "act-worse",
        secrets={**S3_SECRETS, "GITHUB_TOKEN": "ghs_test"},
        variables={"CML_PUBLISH_IMAGES": "true"},
    )
    assert run.returncode != 0, run.explain()
    assert_ran(run, "Report and quality gate", "Post or update the report comment")
    assert run.step_failed("Quality gate verdict"), run.explain()
    assert "Quality gate failed" in run.output
    report = the_comment(run, publish=True)["files"]["report.md"]
    assert "quality gate failed" in report
    assert "f1" in report


def test_train_with_credentials_from_an_oidc_step(
    champion: Project, s3: S3Server, tmp_path: Path
) -> None:
    """No key secrets: the role step's keys, in GITHUB_ENV, reach the real S3 server."""
    role_keys = tmp_path / "role-keys.json"
    role_keys.write_text(json.dumps(S3_SECRETS))
    branch = pull_request(champion, tmp_path / "oidc", "oidc-c", 0.7)
    run = run_act(
        branch,
        "train.yml",
        "pull_request",
        pr_event(11, REPOSITORY, "oidc-c"),
        tmp_path / "act-oidc",
        secrets={"GITHUB_TOKEN": "ghs_test"},
        variables={"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/tabml-ci"},
        env={"STANDIN_AWS_ROLE_KEYS": str(role_keys)},
        job="train",
    )
    assert run.returncode == 0, run.explain()
    [role] = run.calls("configure-aws-credentials")
    assert role["inputs"]["role-to-assume"] == "arn:aws:iam::123456789012:role/tabml-ci"
    assert_ran(
        run,
        "Reproduce the pipeline (dvc repro --pull)",
        "Push data, models and run-cache (trusted runs)",
    )
    assert "Pulling data for stage: 'split'" in run.output, run.explain()
    new_model = lock_md5(
        run.record / "artifacts" / "training-report" / "dvc.lock", "models/model.onnx"
    )
    assert remote_has(s3, new_model), "the push with the role's keys reached S3"


def test_train_on_a_pull_request_from_a_fork(
    champion: Project, s3: S3Server, tmp_path: Path
) -> None:
    """Secrets handed to the runner are not used; nothing is pulled, pushed or posted."""
    fork = pull_request(champion, tmp_path / "fork", "fork-c", BETTER_C)
    before = remote_objects(s3)
    run = run_act(
        fork,
        "train.yml",
        "pull_request",
        pr_event(9, "outsider/tabml-models", "fork-c"),
        tmp_path / "act-fork",
        secrets={**S3_SECRETS, "GITHUB_TOKEN": "ghs_test"},
    )
    assert "a pull request from a fork" in run.output
    data = load_params(fork.path / "params.yaml").data
    if data.source == "file":
        # No remote for a fork, and a project's own data lives only in DVC storage: the
        # job stops at reproduce, naming the data, having pulled, pushed, posted nothing.
        assert run.returncode != 0
        assert f"missing data 'source': {data.path}" in run.output, run.explain()
    else:
        assert run.returncode == 0, run.explain()
        assert_ran(run, "Reproduce the pipeline (no remote)", LOCK_CHECK, "Report and quality gate")
        # Rebuilt cold on the runner, without the remote: the lock comes out as committed.
        assert "dvc.lock is as committed" in run.output
        assert "quality gate passed" in run.output, "the report is in the log and job summary"
    for step in (
        "Reproduce the pipeline (dvc repro --pull)",
        "Push data, models and run-cache (trusted runs)",
        "Post or update the report comment",
    ):
        assert not run.step_ran(step), f"{step!r} ran for a fork\n{run.explain()}"
    assert run.calls("cml") == [] and run.calls("setup-cml") == []
    assert remote_objects(s3) == before


def republish(project: Project, bare: Path) -> None:
    """Point the project's origin (as pushed to) at a new `bare` holding its main."""
    project.run("git", "init", "-q", "--bare", str(bare))
    project.git("config", "remote.origin.pushurl", str(bare))
    project.git("push", "-q", "origin", "main")
    project.git("fetch", "-q", str(bare), "+refs/heads/*:refs/remotes/origin/*")


def data_file_champion(champion: Project, dest: Path) -> tuple[Project, str]:
    """main trained on a data file that `dvc add` tracks (as `tabml init --data` sets
    up), reproduced, committed and pushed with its run-cache; and that file's path."""
    project = copy_project(champion, dest / "project")
    data = load_params(project.path / "params.yaml").data
    if data.source == "file":
        return project, str(data.path)
    path = "data/external/dataset.csv"
    shutil.copyfile(project.path / "data/raw/dataset.csv", project.path / path)
    project.set_params(data={"source": "file", "path": path})
    project.dvc("add", path)
    project.repro()
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "Train on a data file")
    with_env(project, **S3_SECRETS).dvc("push", "--run-cache")
    republish(project, dest / "origin.git")
    return project, path


def change_one_value(project: Project, path: str) -> None:
    """New data, barely: the first row takes another row's value of a numeric feature."""
    file = project.path / path
    frame = pd.read_csv(file) if file.suffix == ".csv" else pd.read_parquet(file)
    column = project.schema().numeric_features[0]
    other = next(i for i, value in enumerate(frame[column]) if value != frame[column].iloc[0])
    frame.loc[0, column] = frame[column].iloc[other]
    if file.suffix == ".csv":
        frame.to_csv(file, index=False)
    else:
        frame.to_parquet(file, index=False)


def test_train_fails_a_data_change_without_its_dvc_lock(
    champion: Project, s3: S3Server, tmp_path: Path
) -> None:
    """Release ships what the committed dvc.lock names, so a pull request that changes
    only the data pointer fails until it commits the dvc.lock that data reproduces."""
    main, path = data_file_champion(champion, tmp_path / "main")
    project = copy_project(main, tmp_path / "pr")
    project.git("checkout", "-q", "-b", "new-data")
    change_one_value(project, path)
    project.dvc("add", path)
    with_env(project, **S3_SECRETS).dvc("push", f"{path}.dvc")
    project.git("add", f"{path}.dvc")
    project.git("commit", "-q", "-m", "New data")
    assert project.git("diff", "--name-only", "origin/main", "HEAD").split() == [f"{path}.dvc"]

    run = run_act(
        project,
        "train.yml",
        "pull_request",
        pr_event(11, REPOSITORY, "new-data"),
        tmp_path / "act-stale",
        secrets={**S3_SECRETS, "GITHUB_TOKEN": "ghs_test"},
    )
    assert run.returncode != 0, run.explain()
    assert_ran(run, "Reproduce the pipeline (dvc repro --pull)")
    assert run.step_failed(LOCK_CHECK), run.explain()
    [error] = [
        line for line in run.output.splitlines() if "dvc.lock is not what this commit" in line
    ]
    assert "stage(s): ingest, validate, split, train" in error, error
    assert "Run `dvc repro` (or `make repro`), then commit dvc.lock (and `dvc push`)." in error
    assert "ingest: data/external, data/raw/dataset.csv" in run.output, run.explain()
    for step in (
        "Report and quality gate",
        "Push data, models and run-cache (trusted runs)",
        "Post or update the report comment",
    ):
        assert not run.step_ran(step), f"{step!r} ran after a stale dvc.lock\n{run.explain()}"

    # The same pull request with the dvc.lock its data reproduces, committed and pushed.
    project.repro()
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "Reproduce on the new data")
    with_env(project, **S3_SECRETS).dvc("push")
    run = run_act(
        project,
        "train.yml",
        "pull_request",
        pr_event(11, REPOSITORY, "new-data"),
        tmp_path / "act-current",
        secrets={**S3_SECRETS, "GITHUB_TOKEN": "ghs_test"},
    )
    assert run.returncode == 0, run.explain()
    assert_ran(run, "Reproduce the pipeline (dvc repro --pull)", LOCK_CHECK)
    assert_ran(run, "Report and quality gate", "Post or update the report comment")
    assert "dvc.lock is as committed" in run.output


def test_train_without_a_shared_remote_says_so_and_passes(tmp_path: Path) -> None:
    """A fresh copy of the template: the default remote is a local folder."""
    require_tool("act")
    project = new_project(tmp_path / "project", tmp_path / "remote")
    publish_origin(project, tmp_path / "origin.git")
    # A params change, so that the change shapes the model and `train` has work to do.
    project.git("checkout", "-q", "-b", "card")
    quick_model_card(project)
    # The lock this change reproduces, committed: the runner rebuilds every stage cold on
    # its own commit and must get the same dvc.lock.
    project.repro()
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "Fewer bootstrap samples")
    run = run_act(
        project,
        "train.yml",
        "pull_request",
        pr_event(3, REPOSITORY, "card"),
        tmp_path / "act",
        secrets={"GITHUB_TOKEN": "ghs_test"},
    )
    assert "is a local folder" in run.output
    data = load_params(project.path / "params.yaml").data
    if data.source == "file":
        # A project's own data lives in DVC storage, which a runner cannot reach while
        # the remote is a local folder: the job stops at reproduce, naming the data.
        assert run.returncode != 0
        assert f"missing data 'source': {data.path}" in run.output, run.explain()
        assert not run.step_ran("Report and quality gate")
        return
    assert run.returncode == 0, run.explain()
    assert_ran(run, "Reproduce the pipeline (no remote)", LOCK_CHECK, "Report and quality gate")
    assert "dvc.lock is as committed" in run.output
    assert not run.step_ran("Push data, models and run-cache (trusted runs)")
    report = the_comment(run)["files"]["report.md"]
    assert "quality gate passed" in report


# The train job's steps that do the work: none may run when there is nothing to train.
TRAINING_STEPS = (
    "Install the environment",
    "Check the DVC remote",
    "Reproduce the pipeline (dvc repro --pull)",
    "Reproduce the pipeline (no remote)",
    "Report and quality gate",
    "Post or update the report comment",
)


def docs_change(tmp_path: Path) -> Project:
    """A fresh copy with origin/main, on a branch `docs` whose one commit edits the README."""
    require_tool("act")
    project = new_project(tmp_path / "project", tmp_path / "remote")
    publish_origin(project, tmp_path / "origin.git")
    project.git("checkout", "-q", "-b", "docs")
    readme = project.path / "README.md"
    readme.write_text(readme.read_text() + "\nOne more sentence of documentation.\n")
    project.git("commit", "-q", "-am", "Clearer docs")
    return project


def assert_nothing_trained(run: ActRun) -> None:
    assert run.returncode == 0, run.explain()
    assert_ran(run, "Does this change shape the model")
    assert "nothing to train: this change touches no file that shapes the model" in run.output
    assert "`README.md`" in run.output, "the summary lists what changed"
    assert "[train/reproduce, gate and report]" not in run.output, "the job is skipped"
    for step in (*TRAINING_STEPS, "Stop unless the decision job succeeded"):
        assert not run.step_ran(step), f"{step!r} ran\n{run.explain()}"
    assert "Running stage" not in run.output
    assert run.calls("setup-uv") == [] and run.calls("cml") == []


def test_train_on_a_docs_only_pull_request_finishes_with_nothing_to_train(
    tmp_path: Path,
) -> None:
    """Every pull request starts `train` (so a required check always reports); a change
    that shapes no model ends green after the decision, without installing anything."""
    project = docs_change(tmp_path)
    run = run_act(
        project,
        "train.yml",
        "pull_request",
        pr_event(4, REPOSITORY, "docs"),
        tmp_path / "act",
        secrets={"GITHUB_TOKEN": "ghs_test"},
    )
    assert_nothing_trained(run)
    assert 'runs-on: "ubuntu-latest" from the default (TRAIN_RUNS_ON unset)' in run.output


def test_train_names_a_runner_setting_that_is_not_json(tmp_path: Path) -> None:
    """vars.TRAIN_RUNS_ON=gpu-runner (a label without its JSON quotes): the decision job
    fails naming the variable, its value and the rule, and nothing is trained."""
    project = docs_change(tmp_path)
    run = run_act(
        project,
        "train.yml",
        "pull_request",
        pr_event(6, REPOSITORY, "docs"),
        tmp_path / "act",
        secrets={"GITHUB_TOKEN": "ghs_test"},
        variables={"TRAIN_RUNS_ON": "gpu-runner"},
    )
    assert run.returncode != 0, run.explain()
    assert run.step_failed("Where training runs (vars.TRAIN_RUNS_ON)"), run.explain()
    assert "repository variable TRAIN_RUNS_ON is 'gpu-runner': not JSON" in run.output
    assert "(a single label must be quoted)" in run.output
    assert not run.step_ran("Does this change shape the model")
    for step in TRAINING_STEPS:
        assert not run.step_ran(step), f"{step!r} ran\n{run.explain()}"


def test_train_in_a_merge_queue_compares_the_group_with_its_base(tmp_path: Path) -> None:
    project = docs_change(tmp_path)
    owner, name = REPOSITORY.split("/")
    base_sha = project.git("rev-parse", "main").strip()
    head_sha = project.git("rev-parse", "HEAD").strip()
    event = {
        "action": "checks_requested",
        "repository": {"full_name": REPOSITORY, "name": name, "owner": {"login": owner}},
        "merge_group": {
            "base_sha": base_sha,
            "base_ref": "refs/heads/main",
            "head_sha": head_sha,
            "head_ref": f"refs/heads/gh-readonly-queue/main/pr-4-{base_sha}",
        },
    }
    run = run_act(project, "train.yml", "merge_group", event, tmp_path / "act")
    assert_nothing_trained(run)


def test_train_fails_when_it_cannot_tell_what_changed(tmp_path: Path) -> None:
    """The decision job fails (the base branch is not in the history): the required
    check fails too, instead of being skipped, which GitHub would count as Success."""
    project = docs_change(tmp_path)
    run = run_act(
        project,
        "train.yml",
        "pull_request",
        pr_event(5, REPOSITORY, "docs", base_ref="gone"),
        tmp_path / "act",
        secrets={"GITHUB_TOKEN": "ghs_test"},
    )
    assert run.returncode != 0, run.explain()
    assert "base 'origin/gone': not a commit in this checkout's history" in run.output
    assert run.step_failed("Stop unless the decision job succeeded"), run.explain()
    assert "ended 'failure', so it is unknown whether this change shapes the model" in (run.output)
    for step in TRAINING_STEPS:
        assert not run.step_ran(step), f"{step!r} ran\n{run.explain()}"


def test_train_by_hand_names_a_base_that_resolves_to_nothing(tmp_path: Path) -> None:
    project = docs_change(tmp_path)
    run = run_act(
        project,
        "train.yml",
        "workflow_dispatch",
        {"inputs": {"base": "no-such-release"}, "repository": {"full_name": REPOSITORY}},
        tmp_path / "act",
    )
    assert run.returncode != 0, run.explain()
    assert "started by workflow_dispatch: training regardless of what changed" in run.output
    assert run.step_failed("Who triggered this run"), run.explain()
    assert (
        "input base 'no-such-release': not a branch on origin, a tag, or a commit SHA" in run.output
    )
    for step in TRAINING_STEPS:
        assert not run.step_ran(step), f"{step!r} ran\n{run.explain()}"


def test_ci_on_push(tmp_path: Path) -> None:
    require_tool("act")
    require_tool("shellcheck")
    project = new_project(tmp_path / "project", tmp_path / "remote")
    publish_origin(project, tmp_path / "origin.git")
    run = run_act(project, "ci.yml", "push", push_event(), tmp_path / "act")
    assert run.returncode == 0, run.explain()
    assert_ran(run, "pre-commit on every file", "Fast tests", "Check dvc.lock")
    assert "dvc.lock matches the code and params" in run.output
    # act gives no GitHub token: the online audits say they did not run, and pass.
    assert_ran(run, "zizmor online audits")
    assert "zizmor's online audits did not run" in run.output


def test_ci_fails_a_stale_dvc_lock(tmp_path: Path) -> None:
    require_tool("act")
    project = new_project(tmp_path / "project", tmp_path / "remote")
    project.set_params(split={"test_size": 0.25})
    project.git("commit", "-q", "-am", "Change the split, forget dvc.lock")
    publish_origin(project, tmp_path / "origin.git")
    run = run_act(project, "ci.yml", "push", push_event(), tmp_path / "act", job="dvc-lock")
    assert run.returncode != 0
    assert run.step_failed("Check dvc.lock"), run.explain()
    assert "dvc.lock is out of date" in run.output
    assert "split: params.yaml section split modified" in run.output
    assert "Run 'make repro' and commit dvc.lock" in run.output


@pytest.fixture
def docker_on_path(tmp_path: Path) -> Path:
    """A `docker` command backed by podman, with the serving tests' cached base image;
    pushes and registry look-ups go to a stand-in registry under tmp_path."""
    container_tests.require_tools()
    podman = container_tests.Podman.at(container_tests.cache_dir() / "podman")
    container_tests.ensure_base_image(podman)
    bin_dir = tmp_path / "docker-bin"
    bin_dir.mkdir()
    registry = tmp_path / "registry"
    registry.mkdir()
    ca = container_tests.CA_BUNDLE
    volume = f"--volume={ca}:{ca}:ro" if ca.is_file() else ""
    (bin_dir / "docker").write_text(
        "#!/usr/bin/env bash\n"
        "# docker -> podman with the test's storage; builds use the local base image;\n"
        "# the registry (push, buildx imagetools) is the stand-in's.\n"
        "set -euo pipefail\n"
        f"export CONTAINERS_CONF={shlex.quote(podman.environ['CONTAINERS_CONF'])}\n"
        f"export STANDIN_REGISTRY={registry}\n"
        f"podman=({shlex.join(podman.command)})\n"
        'case "${1:-}" in\n'
        f'  push|buildx) exec python3 "{STANDIN_SCRIPT}" registry "$@" ;;\n'
        "  build)\n"
        "    shift\n"
        '    exec "${podman[@]}" build --pull=never --network=host --format=docker '
        f'{volume} --build-arg=BASE_IMAGE={container_tests.BASE_IMAGE} "$@" ;;\n'
        "esac\n"
        'exec "${podman[@]}" "$@"\n'
    )
    (bin_dir / "docker").chmod(0o755)
    return bin_dir


STANDIN_SCRIPT = Path(__file__).resolve().parent / "standins" / "standin.py"
IMAGE = f"ghcr.io/{REPOSITORY}"


def gh_standin(bin_dir: Path, github: Path, *, fail_create: bool = False) -> Path:
    """A `gh` command whose releases live in `github` (kept across runs)."""
    bin_dir.mkdir(parents=True)
    github.mkdir(parents=True, exist_ok=True)
    fail = "export STANDIN_GH_FAIL=create\n" if fail_create else ""
    (bin_dir / "gh").write_text(
        f'#!/bin/sh\nexport STANDIN_GITHUB="{github}"\n{fail}'
        f'exec python3 "{STANDIN_SCRIPT}" gh "$@"\n'
    )
    (bin_dir / "gh").chmod(0o755)
    return bin_dir


def registry_tags(docker_on_path: Path) -> dict[str, str]:
    state = docker_on_path.parent / "registry" / "tags.json"
    loaded: dict[str, str] = json.loads(state.read_text()) if state.is_file() else {}
    return loaded


def origin_tags(project: Project) -> list[str]:
    origin = project.git("config", "remote.origin.pushurl").strip()
    return project.git("--git-dir", origin, "tag", "--list", "model@v*").split()


def run_smoke_tested(
    project: Project,
    workflow: str,
    event_name: str,
    event: dict[str, Any],
    work: Path,
    *,
    env: dict[str, str] | None = None,
    **options: Any,
) -> ActRun:
    """A workflow whose smoke test runs the image on SMOKE_PORT.

    The workflow hands that port to `docker run` (a fixed port on GitHub's runners): the
    server cannot pick one and report it without changing the workflow under test. So the
    port is one that was free a moment before, and a run whose server lost it to another
    process runs again (the smoke step fails before anything is pushed, tagged or
    released)."""
    for attempt in range(RELEASE_PORT_ATTEMPTS):
        run = run_act(
            project,
            workflow,
            event_name,
            event,
            work / f"attempt-{attempt}",
            env={**(env or {}), "SMOKE_PORT": str(unused_port())},
            **options,
        )
        if run.returncode == 0 or ADDRESS_IN_USE not in run.output:
            break
    return run


def run_release(
    project: Project,
    work: Path,
    docker_on_path: Path,
    *,
    fail_create: bool = False,
    scan_finding: str = "none",
    variables: dict[str, str] | None = None,
    private: bool = False,
) -> ActRun:
    """release.yml on a push to main, with the registry and GitHub releases of this test;
    the scanner reports one finding of severity `scan_finding` (or none)."""
    gh = gh_standin(work / "gh-bin", docker_on_path.parent / "github", fail_create=fail_create)
    event = push_event()
    event["repository"]["private"] = private
    try:
        return run_smoke_tested(
            project,
            "release.yml",
            "push",
            event,
            work,
            env={"STANDIN_SCAN_FINDING": scan_finding},
            secrets={**S3_SECRETS, "GITHUB_TOKEN": "ghs_test"},
            path=[docker_on_path, gh],
            variables=variables,
        )
    finally:
        # The images live in the serving tests' shared podman storage: remove ours.
        built = [ref for ref in registry_tags(docker_on_path) if not ref.endswith(":latest")]
        sha = project.git("rev-parse", "HEAD").strip()
        for ref in {*built, f"{IMAGE}:v1.0.0", f"{IMAGE}:v1.1.0", f"{IMAGE}:v1.0.0-{sha[:7]}"}:
            project.run(str(docker_on_path / "docker"), "rmi", "--force", ref, check=False)


def assert_released_once(
    run: ActRun, project: Project, version: str, *, attested: bool = True
) -> None:
    """A build, smoke-tested and scanned, that image pushed under `version` with an SBOM
    and provenance, its digest attested (unless not `attested`), then tag, release (with
    the digest) and latest."""
    assert run.returncode == 0, run.explain()
    assert_ran(
        run,
        "Vulnerability policy (vars.VULN_FAIL_ON)",
        "Reproduce what the remote lacks (dvc repro --pull)",
        "Build the image",
        "Smoke test (ready, one prediction)",
        "Scan the built image for vulnerabilities",
        "Push the tested image",
        "The pushed digest",
        "Tag the model version (model@vX.Y.Z)",
        "Publish the GitHub release",
        "Point latest at this image",
    )
    assert "ready, and one prediction" in run.output
    loaded, pushed = run.calls("build-push")
    assert loaded["pushed"] is False and loaded["inputs"]["load"] == "true"
    assert loaded["tags"] == [f"{IMAGE}:{version}"]
    assert loaded["inputs"]["cache-from"] == ""
    # Attestations go with the push; the loaded image cannot hold them.
    assert (loaded["inputs"]["sbom"], loaded["inputs"]["provenance"]) == ("", "")
    assert pushed["pushed"] is True and pushed["inputs"]["load"] == ""
    assert (pushed["inputs"]["sbom"], pushed["inputs"]["provenance"]) == ("true", "mode=max")
    assert pushed["tags"] == loaded["tags"]
    assert pushed["inputs"]["build-args"] == loaded["inputs"]["build-args"]
    [push] = run.calls("push")
    assert push["ref"] == f"{IMAGE}:{version}"
    # The scanned image is the one pushed (the stand-in registry's digest is the image id).
    [scan] = run.calls("scan")
    assert scan["inputs"]["image"] == f"{IMAGE}:{version}"
    assert "sha256:" + scan["image_id"].removeprefix("sha256:") == push["digest"]
    if not attested:
        assert run.calls("attest") == []
        assert not run.step_ran("Attest the pushed image's build provenance")
    else:
        assert_ran(run, "Attest the pushed image's build provenance")
        [attest] = run.calls("attest")
        assert attest["inputs"] == {
            "subject-name": IMAGE,
            "subject-digest": push["digest"],
            "push-to-registry": "true",
            "create-storage-record": "false",
        }
    [retag] = run.calls("retag")
    assert retag == {"kind": "retag", "ref": f"{IMAGE}:latest", "digest": push["digest"]}
    [release] = [call for call in run.calls("gh") if call["args"][1] == "create"]
    assert release["args"][:3] == ["release", "create", f"model@{version}"]
    [image_line] = [line for line in release["notes"].splitlines() if line.startswith("Image: ")]
    assert image_line == f"Image: `{IMAGE}:{version}@{push['digest']}`"
    labels = loaded["image_labels"]
    sha = project.git("rev-parse", "HEAD").strip()
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.version"] == version
    commit_time = int(project.git("show", "-s", "--format=%ct", sha))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(commit_time))
    assert labels["org.opencontainers.image.created"] == created


def own_origin(project: Project, bare: Path) -> None:
    """A copy's own origin (copies share the champion's): main pushed, origin/main set."""
    project.run("git", "init", "-q", "--bare", str(bare))
    project.git("config", "remote.origin.pushurl", str(bare))
    project.git("push", "-q", "origin", "main")
    project.git("fetch", "-q", str(bare), "+refs/heads/*:refs/remotes/origin/*")


def fetch_tags(project: Project) -> None:
    """What a re-run's full-history checkout has: the tags earlier runs pushed."""
    origin = project.git("config", "remote.origin.pushurl").strip()
    project.git("fetch", "-q", origin, "+refs/tags/*:refs/tags/*")


def test_release_on_merge_to_main_and_again(
    champion: Project, tmp_path: Path, docker_on_path: Path
) -> None:
    """main released once: its image pushed, model@v1.0.0 tagged, a GitHub release; then
    the same release again (a re-run) finds everything done and changes nothing."""
    project = copy_project(champion, tmp_path / "project")
    own_origin(project, tmp_path / "origin.git")
    run = run_release(
        project,
        tmp_path / "act-first",
        docker_on_path,
        scan_finding="critical",
        variables={"COSIGN_SIGN": "true"},
    )
    assert_released_once(run, project, "v1.0.0")
    # With vars.VULN_FAIL_ON unset, a finding is reported and fails nothing.
    [scan] = run.calls("scan")
    assert scan["inputs"]["fail-build"] == "false" and scan["failed"] is False
    assert "CVE-0000-0001 (critical)" in run.output
    [push] = run.calls("push")
    assert [call["args"] for call in run.calls("cosign")] == [
        ["sign", "--yes", f"{IMAGE}@{push['digest']}"]
    ]
    metadata = json.loads((champion.path / "models" / "metadata.json").read_text())
    model_md5, data_md5 = metadata["model"]["version"], metadata["data"]["version"]
    assert model_md5 == champion.lock_md5("models/model.onnx")
    # Everything was in the remote: nothing ran again.
    assert "Running stage 'train'" not in run.output
    build = run.calls("build-push")[0]
    labels = build["image_labels"]
    assert labels["io.tabml.model.version"] == model_md5
    assert labels["io.tabml.data.version"] == data_md5
    # The pushed image's lineage labels agree with the model's metadata and card.
    card = (champion.path / "models" / "model_card.md").read_text()
    assert mismatches(metadata, labels, card) == []
    [login] = run.calls("login")
    assert login["registry"] == "ghcr.io" and login["password_set"]
    # The registry holds the version tag and latest, both naming the tested image.
    [push] = run.calls("push")
    assert registry_tags(docker_on_path) == {
        f"{IMAGE}:v1.0.0": push["digest"],
        f"{IMAGE}:latest": push["digest"],
    }
    # A GTO-compatible annotated tag in origin, and a release whose notes carry metrics.
    origin = Path(project.git("config", "remote.origin.pushurl").strip())
    tag_type = project.run("git", "--git-dir", str(origin), "cat-file", "-t", "model@v1.0.0")
    assert tag_type.stdout.strip() == "tag"
    message = project.run(
        "git", "--git-dir", str(origin), "tag", "-l", "--format=%(contents)", "model@v1.0.0"
    ).stdout
    assert f"model-md5: {model_md5}" in message
    [release] = [call for call in run.calls("gh") if call["args"][1] == "create"]
    assert f"| f1 | {metadata['metrics']['f1']:.6g} |" in release["notes"]
    assert model_md5 in release["notes"] and data_md5 in release["notes"]

    fetch_tags(project)
    before = registry_tags(docker_on_path)
    run = run_release(project, tmp_path / "act-again", docker_on_path)
    assert run.returncode == 0, run.explain()
    assert "nothing to do: already released" in run.output, run.explain()
    assert run.calls("build-push") == [] and run.calls("push") == []
    assert run.calls("scan") == [] and run.calls("attest") == [] and run.calls("cosign") == []
    assert run.calls("retag") == []
    assert [call["args"][:2] for call in run.calls("gh")] == [["release", "view"]]
    for step in (
        "Build the image",
        "Tag the model version (model@vX.Y.Z)",
        "Publish the GitHub release",
    ):
        assert not run.step_ran(step), step
    assert registry_tags(docker_on_path) == before
    assert origin_tags(project) == ["model@v1.0.0"]


def test_release_completes_an_interrupted_run(
    champion: Project, tmp_path: Path, docker_on_path: Path
) -> None:
    """The first run stops at the GitHub release (image pushed, model tag pushed); the
    re-run builds nothing, publishes the release and points latest at the image."""
    project = copy_project(champion, tmp_path / "project")
    own_origin(project, tmp_path / "origin.git")
    first = run_release(project, tmp_path / "act-first", docker_on_path, fail_create=True)
    assert first.returncode != 0
    assert first.step_failed("Publish the GitHub release"), first.explain()
    assert not first.step_ran("Point latest at this image")
    [push] = first.calls("push")
    assert registry_tags(docker_on_path) == {f"{IMAGE}:v1.0.0": push["digest"]}
    assert origin_tags(project) == ["model@v1.0.0"]

    fetch_tags(project)
    again = run_release(project, tmp_path / "act-again", docker_on_path)
    assert again.returncode == 0, again.explain()
    assert "to do: release, move latest" in again.output, again.explain()
    assert again.calls("build-push") == [] and again.calls("push") == []
    assert not again.step_ran("Tag the model version (model@vX.Y.Z)")
    [created] = [call for call in again.calls("gh") if call["args"][1] == "create"]
    assert created["args"][2] == "model@v1.0.0"
    assert f"{IMAGE}:v1.0.0@{push['digest']}" in created["notes"]
    assert registry_tags(docker_on_path)[f"{IMAGE}:latest"] == push["digest"]
    assert origin_tags(project) == ["model@v1.0.0"]


def test_release_reproduces_a_model_the_remote_lacks(
    champion: Project, s3: S3Server, tmp_path: Path, docker_on_path: Path
) -> None:
    """A fork's pull request trained a model and pushed nothing; after the merge, main's
    dvc.lock names a model the remote lacks: release trains it, pushes it and ships it.
    The repository is private, without vars.ATTEST_PROVENANCE: nothing is attested
    (attestations there need GitHub Enterprise Cloud), and nothing is signed."""
    fork = pull_request(champion, tmp_path / "fork", "fork-c", FORK_C)
    project = copy_project(champion, tmp_path / "project")
    # The merge brings the fork's commits; its DVC cache stays behind with the fork.
    project.git("pull", "-q", "--no-rebase", str(fork.path), "fork-c")
    own_origin(project, tmp_path / "origin.git")
    model_md5 = project.lock_md5("models/model.onnx")
    assert model_md5 != champion.lock_md5("models/model.onnx")
    assert not remote_has(s3, model_md5)

    run = run_release(project, tmp_path / "act", docker_on_path, private=True)
    assert "Running stage 'train'" in run.output, run.explain()
    assert_released_once(run, project, "v1.0.0", attested=False)
    assert remote_has(s3, model_md5), "the reproduced model was pushed to the remote"
    for build in run.calls("build-push"):
        assert build["image_labels"]["io.tabml.model.version"] == model_md5
    assert run.calls("cosign") == [], "signing is off unless vars.COSIGN_SIGN is 'true'"


def test_release_stops_at_a_finding_the_policy_fails_on(
    champion: Project, tmp_path: Path, docker_on_path: Path
) -> None:
    """vars.VULN_FAIL_ON=high and a high finding: the scan fails the run after the smoke
    test, and nothing is pushed, attested, tagged or released."""
    project = copy_project(champion, tmp_path / "project")
    own_origin(project, tmp_path / "origin.git")
    run = run_release(
        project,
        tmp_path / "act",
        docker_on_path,
        scan_finding="high",
        variables={"VULN_FAIL_ON": "high", "COSIGN_SIGN": "true"},
    )
    assert run.returncode != 0
    assert run.step_failed("Scan the built image for vulnerabilities"), run.explain()
    [scan] = run.calls("scan")
    assert scan["inputs"]["fail-build"] == "true"
    assert scan["inputs"]["severity-cutoff"] == "high"
    assert scan["inputs"]["image"] == f"{IMAGE}:v1.0.0" and scan["failed"] is True
    assert [build["pushed"] for build in run.calls("build-push")] == [False]
    assert run.calls("push") == [] and run.calls("attest") == [] and run.calls("cosign") == []
    assert not run.step_ran("Tag the model version (model@vX.Y.Z)")
    assert registry_tags(docker_on_path) == {}
    assert origin_tags(project) == []


def test_release_stops_at_a_vulnerability_policy_it_does_not_know(
    champion: Project, tmp_path: Path
) -> None:
    """vars.VULN_FAIL_ON=medium is not a policy: the run stops first thing, naming the
    variable, its value and the values it takes, before anything is built."""
    project = copy_project(champion, tmp_path / "project")
    own_origin(project, tmp_path / "origin.git")
    run = run_act(
        project,
        "release.yml",
        "push",
        push_event(),
        tmp_path / "act",
        secrets={**S3_SECRETS, "GITHUB_TOKEN": "ghs_test"},
        variables={"VULN_FAIL_ON": "medium"},
    )
    assert run.returncode != 0
    assert run.step_failed("Vulnerability policy (vars.VULN_FAIL_ON)"), run.explain()
    assert (
        "repository variable VULN_FAIL_ON is 'medium'; it must be one of critical, high, none"
        in run.output
    )
    assert not run.step_ran("Check the DVC remote")
    assert run.calls("build-push") == []


def test_release_ships_only_the_tip_of_the_default_branch(
    champion: Project, tmp_path: Path
) -> None:
    """A manual run from another branch, and an older run (a re-run keeps its commit)
    after a later merge, release nothing; a later docs-only commit does not count."""
    project = copy_project(champion, tmp_path / "project")
    own_origin(project, tmp_path / "origin.git")
    project.git("checkout", "-q", "-b", "experiment")
    run = run_act(
        project,
        "release.yml",
        "workflow_dispatch",
        push_event("refs/heads/experiment"),
        tmp_path / "act-branch",
        secrets={**S3_SECRETS, "GITHUB_TOKEN": "ghs_test"},
    )
    assert run.returncode == 0, run.explain()
    assert "refs/heads/experiment is not the default branch (main)" in run.output
    assert not run.step_ran("Check the DVC remote"), "the release job must not run"

    project.git("checkout", "-q", "main")
    older = project.git("rev-parse", "HEAD").strip()
    (project.path / "docs").mkdir(exist_ok=True)
    (project.path / "docs" / "notes.md").write_text("Docs only.\n")
    project.git("add", "docs")
    project.git("commit", "-q", "-m", "Docs only")
    project.git("push", "-q", "origin", "main")
    (project.path / "schemas" / "README.txt").write_text("Not docs: released.\n")
    project.git("add", "schemas")
    project.git("commit", "-q", "-m", "A change that releases")
    project.git("push", "-q", "origin", "main")
    origin = project.git("config", "remote.origin.pushurl").strip()
    project.git("fetch", "-q", origin, "+refs/heads/*:refs/remotes/origin/*")
    # The older run's checkout: its own commit, with the newer origin/main.
    project.git("checkout", "-q", "--detach", older)
    run = run_act(
        project,
        "release.yml",
        "push",
        push_event(),
        tmp_path / "act-older",
        secrets={**S3_SECRETS, "GITHUB_TOKEN": "ghs_test"},
    )
    assert run.returncode == 0, run.explain()
    assert f"main has moved on from {older[:7]}" in run.output, run.explain()
    assert "schemas/README.txt" in run.output and "docs/notes.md" not in run.output
    assert not run.step_ran("Check the DVC remote"), "the release job must not run"


def test_image_on_a_pull_request(tmp_path: Path, docker_on_path: Path) -> None:
    """image.yml: the model reproduced without a shared remote, the image built with the
    release's build step, smoke-tested by the same action, and nothing pushed."""
    project = new_project(tmp_path / "project", tmp_path / "remote")
    quick_model_card(project)
    project.git("commit", "-q", "-am", "Fewer bootstrap samples")
    publish_origin(project, tmp_path / "origin.git")
    project.git("checkout", "-q", "-b", "bump-uv-lock")
    try:
        run = run_smoke_tested(
            project,
            "image.yml",
            "pull_request",
            pr_event(11, REPOSITORY, "bump-uv-lock"),
            tmp_path / "act",
            path=[docker_on_path],
        )
    finally:
        project.run(
            str(docker_on_path / "docker"), "rmi", "--force", "tabml-image:pr-11", check=False
        )
    data = load_params(project.path / "params.yaml").data
    if data.source == "file":
        # A project's own data lives in DVC storage, out of reach while the remote is a
        # local folder: the job stops at reproduce, naming the data.
        assert run.returncode != 0
        assert f"missing data 'source': {data.path}" in run.output, run.explain()
        return
    assert run.returncode == 0, run.explain()
    assert_ran(
        run,
        "The model to serve (dvc repro export, no remote)",
        "Build the image",
        "Smoke test (ready, one prediction)",
    )
    assert "ready, and one prediction" in run.output
    [build] = run.calls("build-push")
    assert build["pushed"] is False and build["tags"] == ["tabml-image:pr-11"]
    assert run.calls("push") == [] and run.calls("login") == []
    assert registry_tags(docker_on_path) == {}
