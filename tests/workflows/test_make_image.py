"""`make image`, the recipe itself: the build arguments and tag it hands the container
tool, recorded by a stand-in tool instead of a real build, and its refusal without a model."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.tools import run_tool

from .harness import REPO_ROOT, SCRIPTS, load_script, require_tool
from .test_scripts import GIT_ENV, metadata

# A container tool that records its arguments (one JSON list per call) and builds nothing.
RECORDING_TOOL = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["RECORD"], "a", encoding="utf-8") as record:
    record.write(json.dumps(sys.argv[1:]) + "\\n")
"""
ORIGIN = "https://example.invalid/acme/tabml-models.git"
TAG = "model@v1.2.0"
IMAGE = "localhost/tabml-serve:test"


def dockerfile_args() -> set[str]:
    """The build arguments the Dockerfile declares."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    return set(re.findall(r"^ARG\s+(\w+)", text, flags=re.MULTILINE))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository with the Makefile, the Dockerfile, the script that derives the
    lineage, and a models/ folder, committed and tagged, with an origin."""
    require_tool("make")
    require_tool("git")
    project = tmp_path / "project"
    (project / ".github/scripts").mkdir(parents=True)
    (project / "models").mkdir()
    shutil.copy(REPO_ROOT / "Makefile", project)
    shutil.copy(REPO_ROOT / "Dockerfile", project)
    for script in ("release_info.py", "github_glob.py"):
        shutil.copy(SCRIPTS / script, project / ".github/scripts")
    (project / "models/model.onnx").write_bytes(b"onnx")
    (project / "models/metadata.json").write_text(json.dumps(metadata("a" * 32)))
    env = {**os.environ, **GIT_ENV}
    for command in (
        ["init", "-q", "-b", "main"],
        ["remote", "add", "origin", ORIGIN],
        ["add", "-A"],
        ["commit", "-qm", "model"],
        ["tag", TAG],
    ):
        run_tool(["git", *command], cwd=project, env=env)
    return project


def make_image(project: Path, tool_name: str, *extra: str) -> tuple[int, str, list[list[str]]]:
    """Run `make image` with a recording tool called `tool_name`: exit status, stderr,
    and the argument lists the tool was called with."""
    tools = project.parent / "tools"
    tools.mkdir(exist_ok=True)
    tool = tools / tool_name
    tool.write_text(RECORDING_TOOL)
    tool.chmod(0o755)
    record = project.parent / f"{tool_name}.record"
    record.unlink(missing_ok=True)
    result = run_tool(
        ["make", "image", f"CONTAINER_TOOL={tool}", f"IMAGE={IMAGE}", *extra],
        cwd=project,
        env={**os.environ, "RECORD": str(record)},
        check=False,
    )
    calls = (
        [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    )
    return result.returncode, result.stderr, calls


def build_args(argv: list[str]) -> dict[str, str]:
    """NAME=value of every --build-arg, whether passed as one word or two."""
    found: dict[str, str] = {}
    for index, word in enumerate(argv):
        if word == "--build-arg":
            value = argv[index + 1]
        elif word.startswith("--build-arg="):
            value = word.removeprefix("--build-arg=")
        else:
            continue
        name, _, setting = value.partition("=")
        found[name] = setting
    return found


def test_make_image_passes_the_lineage_revision_version_and_tag(project: Path) -> None:
    started = datetime.now(UTC).replace(microsecond=0)
    status, stderr, calls = make_image(project, "docker")
    assert status == 0, stderr
    [argv] = calls
    assert argv[0] == "build"
    assert argv[argv.index("--tag") + 1] == IMAGE
    assert argv[-1] == "."
    assert "--format=docker" not in argv  # a podman flag; docker has no such option
    args = build_args(argv)

    # Every argument is one the Dockerfile declares, so none is silently ignored.
    assert set(args) <= dockerfile_args()
    release_info = load_script("release_info")
    lineage = release_info.lineage(metadata("a" * 32))
    expected_lineage = {arg: lineage[fact] for arg, fact in release_info.BUILD_ARGS.items()}
    assert expected_lineage["MODEL_VERSION"] == "a" * 32
    assert {name: args.get(name) for name in expected_lineage} == expected_lineage
    head = run_tool(["git", "rev-parse", "HEAD"], cwd=project).stdout.strip()
    assert args["REVISION"] == head
    assert args["SOURCE"] == ORIGIN
    assert args["VERSION"] == TAG
    created = datetime.strptime(args["CREATED"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert started - timedelta(seconds=1) <= created <= datetime.now(UTC)


def test_make_image_with_podman_asks_for_a_docker_format_image(project: Path) -> None:
    # podman's default OCI format drops HEALTHCHECK; the Docker format keeps it.
    status, stderr, calls = make_image(
        project, "podman", "BASE_IMAGE=localhost/base:1", "IMAGE_BUILD_FLAGS=--pull=never"
    )
    assert status == 0, stderr
    [argv] = calls
    assert "--format=docker" in argv
    assert "--pull=never" in argv
    assert build_args(argv)["BASE_IMAGE"] == "localhost/base:1"


@pytest.mark.parametrize("missing", ["model.onnx", "metadata.json"])
def test_make_image_refuses_without_a_model(project: Path, missing: str) -> None:
    (project / "models" / missing).unlink()
    status, stderr, calls = make_image(project, "docker")
    assert status != 0
    assert "models/ lacks model.onnx or metadata.json: run make repro or make pull" in stderr
    assert calls == []
