"""Workflow, shell and Dockerfile linters report nothing, and the security baseline holds.

Each linter is also run on a deliberately bad workflow, so a linter that silently
checks nothing would fail here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.availability import require_tool
from tests.tools import run_tool

from .harness import REPO_ROOT, WORKFLOWS, load_workflow

GITHUB = REPO_ROOT / ".github"
SCRIPTS = GITHUB / "scripts"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s*)?uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+\b")
BAD_WORKFLOW = """\
name: bad
on: pull_request
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""


def lint(*command: str) -> subprocess.CompletedProcess[str]:
    # The linters' findings are the tests' subject: callers assert on the output.
    return run_tool(command, cwd=REPO_ROOT, timeout=120, check=False)


def actionlint(*paths: str) -> subprocess.CompletedProcess[str]:
    shellcheck = require_tool("shellcheck")
    return lint(require_tool("actionlint"), f"-shellcheck={shellcheck}", *paths)


def zizmor(*paths: str) -> subprocess.CompletedProcess[str]:
    return lint(require_tool("zizmor"), "--offline", "--no-progress", *paths)


# Workflows that run on code changes: superseded runs are cancelled. (A scheduled job,
# like drift.yml, may rather queue than cancel a run that is updating an issue.)
CHANGE_DRIVEN = {"ci.yml", "train.yml"}


def test_workflows_exist() -> None:
    assert {path.name for path in WORKFLOW_FILES} >= CHANGE_DRIVEN


def test_actionlint_reports_nothing() -> None:
    result = actionlint(*map(str, WORKFLOW_FILES))
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_zizmor_reports_nothing() -> None:
    result = zizmor(str(GITHUB))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_ci_runs_zizmor_online_with_the_run_token() -> None:
    """On GitHub, ci also runs the audits that need the API (impostor commits, moved tags)."""
    steps = load_workflow("ci.yml")["jobs"]["lint"]["steps"]
    online = [step for step in steps if "zizmor" in step.get("run", "")]
    assert len(online) == 1, online
    assert "--offline" not in online[0]["run"] and "--no-online-audits" not in online[0]["run"]
    assert online[0]["env"] == {"GH_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}
    assert "if" not in online[0], "fork pull requests are audited too (read-only token)"


def test_linters_catch_an_unsafe_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(BAD_WORKFLOW)
    found = actionlint(str(bad))
    assert found.returncode != 0
    assert "github.event.pull_request.title" in found.stdout
    found = zizmor(str(bad))
    assert found.returncode != 0
    for audit in ("template-injection", "unpinned-uses", "artipacked", "excessive-permissions"):
        assert audit in found.stdout, found.stdout


def test_hadolint_reports_nothing() -> None:
    result = lint(require_tool("hadolint"), str(REPO_ROOT / "Dockerfile"))
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = lint(require_tool("hadolint"), str(bad))
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3008" in result.stdout


def test_shell_scripts_pass_shellcheck() -> None:
    scripts = [
        *SCRIPTS.glob("*.sh"),
        REPO_ROOT / ".ci" / "run",
        REPO_ROOT / ".ci" / "install-system-tools",
    ]
    result = lint(require_tool("shellcheck"), *map(str, scripts))
    assert result.returncode == 0, result.stdout + result.stderr


def test_pre_commit_config_is_valid() -> None:
    result = lint(require_tool("pre-commit"), "validate-config", ".pre-commit-config.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    for line in path.read_text().splitlines():
        # A local action (./.github/actions/...) is the workflow's own commit.
        if re.match(r"^\s*(-\s*)?uses:", line) and not re.match(r"^\s*(-\s*)?uses: \./", line):
            assert PINNED.match(line), f"{path.name}: not pinned to a SHA with '# vX.Y.Z': {line}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_security_baseline(path: Path) -> None:
    workflow = load_workflow(path.name)
    assert workflow["permissions"] == {}, "no default token permissions at the top"
    assert workflow["concurrency"]["group"]
    if path.name in CHANGE_DRIVEN:
        assert workflow["concurrency"]["cancel-in-progress"] is True
        assert "${{" in workflow["concurrency"]["group"], "one group per PR or ref"
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: timeout-minutes"
        assert isinstance(job.get("permissions"), dict), f"{name}: job permissions"
        assert "write-all" not in str(job["permissions"])
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"{name}: expression inside run: {step}"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{name}: checkout"


def test_write_permissions_are_where_they_are_needed() -> None:
    train = load_workflow("train.yml")["jobs"]
    # id-token: write only lets the job ask GitHub for an OIDC token (the AWS role step).
    assert train["train"]["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "id-token": "write",
    }
    assert train["changes"]["permissions"] == {"contents": "read"}
    release = load_workflow("release.yml")["jobs"]
    # The job that pushes the image attests and signs it: an OIDC token (the attestation's
    # and the keyless signature's identity, and the AWS role) and the attestations API.
    assert release["release"]["permissions"] == {
        "contents": "write",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    assert release["current"]["permissions"] == {"contents": "read"}
    attesting = {
        (path.name, name)
        for path in WORKFLOW_FILES
        for name, job in load_workflow(path.name)["jobs"].items()
        if job["permissions"].get("attestations") == "write"
    }
    assert attesting == {("release.yml", "release")}
    # The promote workflow reads attestations (it verifies them) and writes only once the
    # checks passed, in the stage's environment.
    promote = load_workflow("promote.yml")["jobs"]
    assert promote["check"]["permissions"] == {
        "contents": "read",
        "attestations": "read",
        "packages": "read",
    }
    assert promote["promote"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    image = load_workflow("image.yml")["jobs"]["image"]["permissions"]
    assert image == {"contents": "read", "id-token": "write"}
    for job in load_workflow("ci.yml")["jobs"].values():
        assert job["permissions"] == {"contents": "read"}


def test_a_release_is_never_cancelled_half_way() -> None:
    """A cancelled release can stop between the image push and the tag; runs of one
    ref queue instead (a newer waiting run replaces an older waiting one)."""
    concurrency = load_workflow("release.yml")["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert concurrency["group"] == "release-${{ github.ref }}"


def test_no_workflow_commits_to_the_branch() -> None:
    """Workflows push tags only; drift.yml's retrain job alone commits in shell, to a branch
    of its own (retrain/...) that it opens a pull request from. (promote.yml's commits are
    promote.py's, on promote/<stage>: tests/workflows/test_promote.py.)"""
    for path in WORKFLOW_FILES:
        # Shell continuation lines joined, so a command split over lines is one line.
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        commands = re.findall(r"\bgit\s[^\n]*", text)
        commits = [c for c in commands if re.search(r"\scommit\s", c)]
        pushes = [c for c in commands if re.search(r"\spush\s", c)]
        if path.name != "drift.yml":
            assert not commits, f"{path.name}: commits {commits}"
            for push in pushes:
                assert "refs/tags/" in push, f"{path.name}: only tags are pushed: {push}"
            continue
        assert len(commits) == 1 and len(pushes) == 1, (commits, pushes)
        assert pushes[0].rstrip().endswith('"HEAD:refs/heads/$BRANCH"'), pushes[0]
        retrain = load_workflow(path.name)["jobs"]["retrain"]
        assert retrain["env"]["BRANCH"].startswith("retrain/")
        assert "git push" not in str(load_workflow(path.name)["jobs"]["drift"])


def test_dependabot_covers_actions_python_and_docker() -> None:
    config = yaml.safe_load((GITHUB / "dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert ecosystems == {"github-actions", "uv", "docker"}
