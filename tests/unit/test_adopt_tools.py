"""init's program runner: a failure, a missing program or one that hangs is a StepError
naming the command, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tabml.adopt import tools
from tabml.adopt.tools import StepError


def test_a_failing_command_is_named_with_its_output(tmp_path: Path) -> None:
    code = "import sys; print('out'); sys.exit('it broke')"
    with pytest.raises(StepError, match=r"exited 1:\n  it broke$"):
        tools.run([sys.executable, "-c", code], tmp_path)
    assert tools.run([sys.executable, "-c", code], tmp_path, check=False).returncode == 1


def test_a_missing_program_is_named(tmp_path: Path) -> None:
    with pytest.raises(StepError, match=r"^`no-such-tool --version`: no-such-tool is not"):
        tools.run(["no-such-tool", "--version"], tmp_path)


def test_a_command_that_outlasts_the_timeout_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "COMMAND_TIMEOUT", 0.2)
    with pytest.raises(StepError, match=r"ran longer than 0.2 s; stopped$"):
        tools.run([sys.executable, "-c", "import time; time.sleep(5)"], tmp_path)
