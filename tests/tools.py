"""Running the external tools that the tests drive (podman, debootstrap, tar, act, dvc,
git, rclone, ...), with one rule for their failures: the message names the command, its
exit status and the end of what the tool wrote to stderr (and stdout), so a test report
shows the tool's own reason rather than a bare "returned non-zero exit status".
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from os import PathLike
from typing import Any

# Lines of each stream quoted in a failure: the reason is nearly always at the end.
TAIL_LINES = 40
DEFAULT_TIMEOUT = 600

Command = Sequence[str | PathLike[str]]


class ToolError(AssertionError):
    """An external tool exited with a non-zero status, or ran past its timeout."""


def tail(output: str | bytes | None, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of a captured stream, as text."""
    if output is None:
        return ""
    text = output.decode(errors="replace") if isinstance(output, bytes) else output
    return "\n".join(text.rstrip().splitlines()[-lines:])


def failure_message(
    command: Command, status: int | str, stderr: str | bytes | None, stdout: str | bytes | None
) -> str:
    """`command` failed with `status`: what a test report should say about it."""
    parts = [f"`{shlex.join(str(arg) for arg in command)}` {status}"]
    for name, stream in (("stderr", stderr), ("stdout", stdout)):
        text = tail(stream)
        if text:
            quoted = "\n".join(f"  | {line}" for line in text.splitlines())
            parts.append(f"{name} (last {TAIL_LINES} lines):\n{quoted}")
    if len(parts) == 1:
        parts.append("(no output on stderr or stdout)")
    return "\n".join(parts)


def check_exit(
    command: Command, returncode: int, stderr: str | bytes | None, stdout: str | bytes | None = None
) -> None:
    """Raise ToolError when a finished tool (run or Popen) exited non-zero."""
    if returncode != 0:
        raise ToolError(
            failure_message(command, f"exited with status {returncode}", stderr, stdout)
        )


def run_tool(
    command: Command, *, check: bool = True, timeout: float = DEFAULT_TIMEOUT, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Run `command` with its output captured as text; with `check`, a non-zero exit is a
    ToolError naming the command, the status and the tail of stderr. A timeout is always
    a ToolError with what the tool had written so far. `options` go to subprocess.run
    (cwd, env, stdin, input)."""
    arguments = [str(arg) for arg in command]
    try:
        result = subprocess.run(
            arguments, capture_output=True, text=True, timeout=timeout, check=False, **options
        )
    except subprocess.TimeoutExpired as expired:
        raise ToolError(
            failure_message(
                arguments, f"did not finish within {timeout} s", expired.stderr, expired.output
            )
        ) from None
    if check:
        check_exit(arguments, result.returncode, result.stderr, result.stdout)
    return result
