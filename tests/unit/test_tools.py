"""The tests' one way of running an external tool: a failure names the command, its exit
status and the tool's own reason."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.tools import TAIL_LINES, ToolError, check_exit, run_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
PODMAN_REASON = "Error: the specified runroot is longer than 50 characters"
FAILING = ["sh", "-c", f"echo 'setting up' >&2; echo '{PODMAN_REASON}' >&2; exit 125"]


def test_a_failure_names_the_command_its_status_and_its_stderr() -> None:
    with pytest.raises(ToolError) as raised:
        run_tool(FAILING)
    message = str(raised.value)
    assert message.startswith("`sh -c ")
    assert "exited with status 125" in message
    assert f"  | {PODMAN_REASON}" in message
    assert "setting up" in message


def test_only_the_end_of_a_long_stderr_is_quoted() -> None:
    script = "for i in $(seq 1 500); do echo line-$i >&2; done; exit 1"
    with pytest.raises(ToolError) as raised:
        run_tool(["sh", "-c", script])
    message = str(raised.value)
    assert "line-500" in message
    assert f"line-{500 - TAIL_LINES + 1}\n" in message
    assert f"line-{500 - TAIL_LINES}\n" not in message


def test_a_timeout_shows_what_the_tool_wrote_so_far() -> None:
    with pytest.raises(ToolError, match=r"did not finish within 0.5 s(.|\n)*waiting"):
        run_tool(["sh", "-c", "echo waiting >&2; sleep 5"], timeout=0.5)


def test_unchecked_runs_return_the_result() -> None:
    result = run_tool(FAILING, check=False)
    assert result.returncode == 125
    assert PODMAN_REASON in result.stderr


def test_a_finished_process_is_checked_alike() -> None:
    check_exit(["tar", "-cf", "-", "."], 0, b"")
    with pytest.raises(ToolError) as raised:
        check_exit(["tar", "-cf", "-", "."], 2, b"tar: .: Cannot open\n")
    assert str(raised.value).startswith("`tar -cf - .` exited with status 2\nstderr")
    assert "  | tar: .: Cannot open" in str(raised.value)


def test_the_reason_reaches_the_test_report(tmp_path: Path) -> None:
    """A test that runs a failing tool shows the tool's stderr in pytest's report."""
    (tmp_path / "test_failing_tool.py").write_text(
        f"from tests.tools import run_tool\n\ndef test_runs_a_tool():\n    run_tool({FAILING!r})\n"
    )
    report = run_tool(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_failing_tool.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    assert report.returncode == 1, report.stdout + report.stderr
    assert "1 failed" in report.stdout
    assert "exited with status 125" in report.stdout
    assert PODMAN_REASON in report.stdout
