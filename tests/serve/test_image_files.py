"""The files the serving image is built from: linted Dockerfile, pins in step with uv.lock."""

from __future__ import annotations

from tests.availability import require_tool
from tests.integration.project import uv_executable
from tests.serve.conftest import REPO_ROOT
from tests.tools import run_tool


def test_hadolint_reports_nothing() -> None:
    result = run_tool([require_tool("hadolint"), "Dockerfile"], cwd=REPO_ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_serving_requirements_match_the_lock_file() -> None:
    result = run_tool(
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
    )
    committed = (REPO_ROOT / "requirements" / "serve.txt").read_text()
    pins = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert pins == [line for line in committed.splitlines() if not line.startswith("#")], (
        "requirements/serve.txt is stale: run `make serve-requirements`"
    )


def test_serving_requirements_leave_out_the_training_stack() -> None:
    committed = (REPO_ROOT / "requirements" / "serve.txt").read_text().lower()
    for package in ("scikit-learn", "dvc", "pandas", "skl2onnx", "onnx=="):
        assert f"\n{package}" not in committed


def test_dockerignore_keeps_the_context_to_what_the_image_needs() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    # Everything is excluded, then the exceptions let files back in: an exception only
    # works after the `*` (the last matching line wins), so each must come later.
    star = lines.index("*")
    for copied in (
        "requirements/serve.txt",
        "src/tabml/serve/",
        "models/model.onnx",
        "models/metadata.json",
    ):
        assert f"!{copied}" in lines[star + 1 :], f"!{copied} must follow '*'"
