"""The programs init runs (git, uv, ruff, dvc): found, run in the project, failures named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tabml.errors import InputError, PipelineError

COMMAND_TIMEOUT = 3600


class StepError(PipelineError):
    """A step after the checks failed; the work tree was restored."""


def environment() -> dict[str, str]:
    # The project's own environment (.venv), not whichever one launched this command.
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    return env


def run(args: Sequence[str], root: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`args` run in `root`; with `check`, a StepError quoting the output's end on failure.
    A program that is missing or outlasts COMMAND_TIMEOUT is a StepError either way."""
    command = " ".join(args)
    try:
        result = subprocess.run(
            list(args),
            cwd=root,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise StepError(f"`{command}`: {args[0]} is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise StepError(f"`{command}` ran longer than {COMMAND_TIMEOUT} s; stopped") from None
    if check and result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()[-15:]
        raise StepError(f"`{command}` exited {result.returncode}:\n  " + "\n  ".join(output))
    return result


def find_uv() -> str | None:
    """uv as $UV names it (make sets it), else from PATH; None when there is none."""
    return os.environ.get("UV") or shutil.which("uv")


def uv() -> str:
    found = find_uv()
    if not found:
        raise InputError(
            "uv: not found on PATH; run `make init ARGS=...`, which installs it into .tools/"
        )
    return found


def ruff() -> str:
    found = Path(sys.executable).with_name("ruff")
    if found.is_file():
        return str(found)
    on_path = shutil.which("ruff")
    if on_path is None:
        raise InputError("ruff: not found; `make setup` installs it (a dev dependency)")
    return on_path


def lock(root: Path, uv_command: str) -> None:
    # The cache usually holds every wheel already; go online only when it does not.
    if run([uv_command, "lock", "--offline"], root, check=False).returncode != 0:
        run([uv_command, "lock"], root)


def tracked_files(root: Path) -> list[str]:
    """The files git tracks in `root` that exist in the work tree."""
    listed = run(["git", "ls-files", "-z"], root).stdout.split("\0")
    return [path for path in listed if path and (root / path).is_file()]


def dvc_config(root: Path) -> dict[str, str]:
    """The project's DVC settings as `dvc config --list` shows them (key -> value)."""
    listed = run([sys.executable, "-m", "dvc", "config", "--list", "--project"], root).stdout
    return dict(line.split("=", 1) for line in listed.splitlines() if "=" in line)
