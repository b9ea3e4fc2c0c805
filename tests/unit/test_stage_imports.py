"""Stage modules import heavy libraries where they use them: every stage is a process
of its own under `dvc repro`, and what its module imports is paid on each run."""

from __future__ import annotations

import subprocess
import sys

import pytest


def modules_after_import(module: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after importing `module`."""
    code = (
        f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("tabml.cli", {"sklearn", "pandas", "pandera", "fairlearn", "onnx"}),
        ("tabml.stages.split", {"sklearn", "pandera"}),
        ("tabml.stages.train", {"sklearn", "joblib"}),
        ("tabml.stages.model_card", {"sklearn", "fairlearn", "joblib"}),
    ],
)
def test_stage_module_leaves_unused_libraries_unimported(module: str, absent: set[str]) -> None:
    assert modules_after_import(module) & absent == set()
