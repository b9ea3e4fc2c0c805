"""The files the serving image is built from: a linted Dockerfile that Dependabot can
update, serving pins taken from uv.lock, and a build context of only what it copies."""

from __future__ import annotations

import re

from tests.availability import require_tool
from tests.integration.project import uv_executable
from tests.serve.conftest import REPO_ROOT
from tests.tools import run_tool

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def test_hadolint_reports_nothing() -> None:
    result = run_tool([require_tool("hadolint"), "Dockerfile"], cwd=REPO_ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_the_base_image_is_in_a_from_line_dependabot_reads() -> None:
    """Dependabot updates literal FROM lines, not ARG defaults; BASE_IMAGE names that
    stage unless a build overrides it."""
    froms = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", DOCKERFILE, re.MULTILINE)
    literal = [(image, stage) for image, stage in froms if "$" not in image]
    assert literal == [("python:3.12-slim", "python-base")]
    assert "ARG BASE_IMAGE=python-base\n" in DOCKERFILE
    assert all(image == "${BASE_IMAGE}" for image, _ in froms if "$" in image)


def test_the_image_exports_its_pins_with_the_makefiles_uv() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    [pinned] = re.findall(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert f"ARG UV_VERSION={pinned}\n" in DOCKERFILE
    assert "uv export --project /src --frozen --only-group serve --no-emit-project" in " ".join(
        DOCKERFILE.replace("\\\n", " ").split()
    )


def test_serving_requirements_leave_out_the_training_stack() -> None:
    """What the image's export of uv.lock installs (with hashes)."""
    exported = run_tool(
        [
            uv_executable(),
            "export",
            "--only-group",
            "serve",
            "--no-emit-project",
            "--format",
            "requirements.txt",
            "--quiet",
            "--frozen",
        ],
        cwd=REPO_ROOT,
    ).stdout.lower()
    assert "\nonnxruntime==" in exported and "--hash=sha256:" in exported
    for package in ("scikit-learn", "dvc", "pandas", "skl2onnx", "onnx=="):
        assert f"\n{package}" not in exported


def test_dockerignore_keeps_the_context_to_what_the_image_needs() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    # Everything is excluded, then the exceptions let files back in: an exception only
    # works after the `*` (the last matching line wins), so each must come later.
    star = lines.index("*")
    for copied in (
        "pyproject.toml",
        "uv.lock",
        "src/tabml/validation.py",
        "src/tabml/contract.py",
        "src/tabml/errors.py",
        "src/tabml/serve/",
        "src/tabml/score/",
        "models/model.onnx",
        "models/metadata.json",
    ):
        assert f"!{copied}" in lines[star + 1 :], f"!{copied} must follow '*'"
