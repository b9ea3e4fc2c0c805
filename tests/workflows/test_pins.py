"""What the workflows run is pinned, and pinned to what it claims to be.

Every `uses:` is the commit that .github/actions-lock.yml records for that action and
version (the list records when and how the SHA was found to be the version's tag), and
every workflow installs the uv that the Makefile pins. The upstream check runs here
against a local repository laid out like an action's, pull-request refs included.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from .harness import REPO_ROOT, WORKFLOWS, load_script, load_workflow

LOCK = REPO_ROOT / ".github" / "actions-lock.yml"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


@pytest.fixture(scope="module")
def pins() -> ModuleType:
    return load_script("verify_action_pins")


def entry_yaml(action: str, version: str, sha: str) -> str:
    return (
        f"  - action: {action}\n    version: {version}\n    sha: {sha}\n"
        '    verified:\n      date: 2026-11-30\n      how: "checked"\n'
    )


def write_workflow(folder: Path, *uses: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    steps = "".join(f"      - uses: {line}\n" for line in uses)
    (folder / "w.yml").write_text(f"jobs:\n  j:\n    steps:\n{steps}")
    return folder


def test_every_workflow_pin_is_in_the_list(pins: ModuleType) -> None:
    found = pins.workflow_pins(WORKFLOWS)
    assert found, "no `uses:` found in the workflows"
    assert pins.disagreements(found, pins.load_lock(LOCK)) == []


def test_the_list_says_when_and_how_each_sha_was_checked(pins: ModuleType) -> None:
    for entry in pins.load_lock(LOCK):
        assert entry.verified_on <= datetime.datetime.now(datetime.UTC).date(), entry
        assert f"refs/tags/{entry.version}^{{}}" in entry.verified_how, entry
        assert f"https://github.com/{entry.action}" in entry.verified_how, entry


def test_the_list_is_as_the_script_writes_it(pins: ModuleType) -> None:
    """A hand edit that --record would undo (order, format) is caught before it lands."""
    assert pins.render_lock(pins.load_lock(LOCK)) == LOCK.read_text()


def test_pins_that_differ_from_the_list_are_named(pins: ModuleType, tmp_path: Path) -> None:
    a, b = "a" * 40, "b" * 40
    workflows = write_workflow(
        tmp_path / "workflows",
        f"actions/checkout@{a} # v4.2.2",
        f"actions/checkout@{b} # v4.2.2",
        f"actions/setup-python@{a} # v5.5.0",
        f"docker/login-action@{a} # v3.4.0",
        "./.github/actions/local",
    )
    listed = pins.parse_lock(
        {
            "actions": [
                {"action": action, "version": version, "sha": a, "verified": verified}
                for action, version in [
                    ("actions/checkout", "v4.2.2"),
                    ("actions/setup-python", "v5.6.0"),
                    ("actions/upload-artifact", "v4.6.2"),
                ]
                for verified in [{"date": "2026-11-30", "how": "checked"}]
            ]
        }
    )
    assert sorted(pins.disagreements(pins.workflow_pins(workflows), listed)) == [
        "actions/upload-artifact: listed, but no workflow uses it",
        f"w.yml:5: actions/checkout@{b} # v4.2.2, but the list has {a} # v4.2.2",
        f"w.yml:6: actions/setup-python@{a} # v5.5.0, but the list has {a} # v5.6.0",
        "w.yml:7: docker/login-action is not in the list",
    ]


@pytest.mark.parametrize(
    "uses",
    [
        "actions/checkout@v4",
        "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683",
        "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4",
    ],
)
def test_a_uses_without_sha_and_version_is_an_error(
    pins: ModuleType, tmp_path: Path, uses: str
) -> None:
    workflows = write_workflow(tmp_path / "workflows", uses)
    with pytest.raises(pins.PinError, match=r"w\.yml:4: uses .*OWNER/NAME@<40-hex SHA> # vX"):
        pins.workflow_pins(workflows)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (entry_yaml("actions/checkout", "v4.2.2", "abc"), r"actions\[0\]\.sha: 'abc' must match"),
        (entry_yaml("actions/checkout", "4.2.2", "a" * 40), r"actions\[0\]\.version: '4\.2\.2'"),
        (entry_yaml("checkout", "v4.2.2", "a" * 40), r"actions\[0\]\.action: 'checkout'"),
        (
            entry_yaml("actions/checkout", "v4.2.2", "a" * 40).replace("2026-11-30", "last week"),
            r"actions\[0\]\.verified\.date: 'last week' must be a date",
        ),
        (
            entry_yaml("actions/checkout", "v4.2.2", "a" * 40).replace('"checked"', '""'),
            r"actions\[0\]\.verified\.how: '' must say how",
        ),
        (
            entry_yaml("actions/checkout", "v4.2.2", "a" * 40) * 2,
            r"actions\[1\]\.action: 'actions/checkout' is listed twice",
        ),
    ],
)
def test_a_malformed_list_names_the_field_and_value(
    pins: ModuleType, tmp_path: Path, entry: str, message: str
) -> None:
    lock = tmp_path / "actions-lock.yml"
    lock.write_text("actions:\n" + entry)
    with pytest.raises(pins.PinError, match=r"^actions-lock\.yml: " + message):
        pins.load_lock(lock)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    ).stdout.strip()


@pytest.fixture
def action_repo(tmp_path: Path) -> dict[str, str]:
    """An action's repository: v1.0.0 annotated, v1.1.0 lightweight, and a commit that
    only a pull-request ref holds (what a pin copied from a pull request points at)."""
    repo = tmp_path / "setup-thing"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    git(repo, "commit", "-q", "--allow-empty", "-m", "release 1.0.0")
    released = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "-a", "v1.0.0", "-m", "v1.0.0")
    git(repo, "commit", "-q", "--allow-empty", "-m", "release 1.1.0")
    git(repo, "tag", "v1.1.0")
    pull = git(repo, "commit-tree", f"{released}^{{tree}}", "-p", released, "-m", "test")
    git(repo, "update-ref", "refs/pull/7/head", pull)
    return {
        "path": str(repo),
        "v1.0.0": released,
        "v1.1.0": git(repo, "rev-parse", "v1.1.0"),
        "pull": pull,
        "tag-object": git(repo, "rev-parse", "v1.0.0"),
    }


def test_the_tag_commit_is_read_peeled(pins: ModuleType, action_repo: dict[str, str]) -> None:
    source = action_repo["path"]
    assert action_repo["tag-object"] != action_repo["v1.0.0"]
    assert pins.tag_commit(source, "v1.0.0") == action_repo["v1.0.0"]
    assert pins.tag_commit(source, "v1.1.0") == action_repo["v1.1.0"]
    assert pins.tag_commit(source, "v9.9.9") is None


def test_a_pin_on_a_pull_request_commit_is_not_its_release(
    pins: ModuleType, action_repo: dict[str, str]
) -> None:
    source, pull = action_repo["path"], action_repo["pull"]
    pin = pins.Pin("acme/setup-thing", pull, "v1.0.0", "w.yml:4")
    assert pins.upstream_disagreement(pin, source) == (
        f"acme/setup-thing: v1.0.0 is {action_repo['v1.0.0']} in {source}, not the pinned {pull}"
    )
    missing = pins.Pin("acme/setup-thing", pull, "v2.0.0", "w.yml:4")
    assert pins.upstream_disagreement(missing, source) == (
        f"acme/setup-thing: {source} has no tag v2.0.0"
    )


def test_an_unreadable_repository_is_an_error(pins: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(pins.PinError, match=r"git ls-remote .*nowhere failed"):
        pins.tag_commit(str(tmp_path / "nowhere"), "v1.0.0")


def test_record_writes_only_release_commits(
    pins: ModuleType,
    action_repo: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lock = tmp_path / "actions-lock.yml"
    mirror = ["--mirror", f"acme/setup-thing={action_repo['path']}", "--lock", str(lock)]
    workflows = write_workflow(
        tmp_path / "good", f"acme/setup-thing@{action_repo['v1.0.0']} # v1.0.0"
    )
    assert pins.main(["--record", "--workflows", str(workflows), *mirror]) == 0
    [entry] = pins.load_lock(lock)
    assert (entry.action, entry.version, entry.sha) == (
        "acme/setup-thing",
        "v1.0.0",
        action_repo["v1.0.0"],
    )
    assert entry.verified_how == (
        "refs/tags/v1.0.0^{} is this SHA "
        "(git ls-remote of a mirror of https://github.com/acme/setup-thing)"
    )
    assert pins.main(["--upstream", "--workflows", str(workflows), *mirror]) == 0
    written = lock.read_text()

    wrong = write_workflow(tmp_path / "wrong", f"acme/setup-thing@{action_repo['pull']} # v1.0.0")
    assert pins.main(["--record", "--workflows", str(wrong), *mirror]) == 1
    assert lock.read_text() == written, "a wrong pin must not be recorded"
    assert f"not the pinned {action_repo['pull']}" in capsys.readouterr().err


def test_the_script_checks_this_repository_offline(pins: ModuleType) -> None:
    assert pins.main([]) == 0


def test_a_bad_mirror_argument_exits_2(
    pins: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pins.main(["--upstream", "--mirror", "checkout"]) == 2
    assert "--mirror 'checkout' must be OWNER/NAME=DIR" in capsys.readouterr().err


def makefile_uv_version() -> str:
    found = re.search(r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert found, "Makefile: no `UV_VERSION := X.Y.Z` line"
    return found.group(1)


def test_every_workflow_installs_the_makefile_uv() -> None:
    version, seen = makefile_uv_version(), 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in load_workflow(path.name)["jobs"].items():
            for step in job["steps"]:
                if step.get("uses", "").startswith("astral-sh/setup-uv@"):
                    seen += 1
                    given = step.get("with", {}).get("version")
                    assert given == version, f"{path.name} {name}: setup-uv version {given!r}"
    assert seen, "no workflow installs uv with astral-sh/setup-uv"
