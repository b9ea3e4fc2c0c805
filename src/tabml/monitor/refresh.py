"""Refresh the training data before a retrain, so that reproducing the pipeline trains
on what production looks like now.

Two sources of new data are known. An imported one (`dvc import`, `dvc import-url`) is
a .dvc file whose `deps` say where the data came from, and `dvc update` brings it to
that source's current version. Data that arrives some other way is the project's own
business: a shell command given to the refresh (the DRIFT_REFRESH_COMMAND repository
variable in the drift workflow, REFRESH_COMMAND for `make refresh-data`) must leave the
new data in place and its .dvc file updated (`dvc add PATH` as its last step). It is
not a params.yaml setting: fetching data is not part of the pipeline, and config.py,
which a setting would change, is a dependency of every stage.
With neither there is nothing to refresh, and a retrain would train on the same data.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tabml.errors import InputError, PipelineError

COMMAND_TIMEOUT = 3600


class RefreshError(PipelineError):
    """Updating an imported source or the project's refresh command failed."""


@dataclass(frozen=True)
class RefreshPlan:
    """What a refresh does: the imported .dvc files to update, then the command to run."""

    imports: tuple[str, ...]
    command: str | None

    @property
    def empty(self) -> bool:
        return not self.imports and self.command is None

    def describe(self) -> str:
        if self.empty:
            return (
                "nothing to refresh: no .dvc file comes from `dvc import` or "
                "`dvc import-url`, and no refresh command was given"
            )
        done = []
        if self.imports:
            done.append(
                f"updated {len(self.imports)} imported source(s) ({', '.join(self.imports)})"
            )
        if self.command is not None:
            done.append(f"ran the refresh command ({self.command!r})")
        return "; ".join(done)


def is_import(pointer: dict[str, Any]) -> bool:
    """A .dvc file that `dvc import` or `dvc import-url` wrote: its deps name the source
    (`dvc add` writes outs only)."""
    return bool(pointer.get("deps"))


def plan(root: Path, pointers: Iterable[str], command: str | None) -> RefreshPlan:
    """The refresh for the .dvc files `pointers` (relative to `root`)."""
    imports = []
    for name in sorted(pointers):
        try:
            pointer = yaml.safe_load((root / name).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise InputError(f"{name}: not a readable .dvc file: {error}") from None
        if isinstance(pointer, dict) and is_import(pointer):
            imports.append(name)
    return RefreshPlan(tuple(imports), command)


def dvc_files(root: Path) -> list[str]:
    """The .dvc files of the git work tree at `root`, committed or new (not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.dvc"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        raise InputError(f"{root}: not a git work tree: {listed.stderr.strip()}")
    return [name for name in listed.stdout.split("\0") if name and (root / name).is_file()]


def _execute(args: list[str], root: Path, what: str) -> None:
    # The output goes straight to the terminal (or the workflow log): a download can be
    # long, and its progress and errors are the user's to read.
    try:
        status = subprocess.run(args, cwd=root, timeout=COMMAND_TIMEOUT, check=False).returncode
    except subprocess.TimeoutExpired:
        raise RefreshError(f"{what}: still running after {COMMAND_TIMEOUT} s") from None
    if status != 0:
        raise RefreshError(f"{what}: exited {status} (its output is above)")


def run(root: Path, command: str | None) -> RefreshPlan:
    """Update every imported source, then run `command`; return what was done."""
    todo = plan(root, dvc_files(root), command)
    if todo.imports:
        _execute(
            [sys.executable, "-m", "dvc", "update", *todo.imports],
            root,
            f"dvc update {' '.join(todo.imports)}",
        )
    if todo.command is not None:
        _execute(["sh", "-c", todo.command], root, f"refresh command {todo.command!r}")
    return todo
