"""Does this change shape the model? The `train` workflow's decision, with its reasons.

Usage: python3 what_changed.py BASE HEAD   (in a checkout with the history of both)

Compares HEAD with the merge base of BASE and HEAD (`git diff BASE...HEAD`, the change as
its pull request or merge group shows it). A change shapes the model when it touches a
path in MODEL_PATHS (the pipeline, its params, data pointers, code and schemas, and the
training workflow itself), or when uv.lock changes the version of a library in
MODEL_LIBRARIES. Anything else (docs, tests, serving, other workflows) leaves the model
as the base branch's, so there is nothing to train.

Writes train=true|false to $GITHUB_OUTPUT and the reasons to $GITHUB_STEP_SUMMARY (each
when set), and the same lines to standard output. Exits 2, naming the revision, when a
revision is not in the history. Only the standard library (Python 3.11+ for tomllib):
it runs before the project environment exists.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from github_glob import glob_regex

# Globs as GitHub writes path filters: `**` crosses folders, `*` and `?` do not.
MODEL_PATHS = (
    "**.dvc",
    "params.yaml",
    "dvc.yaml",
    "dvc.lock",
    "src/**",
    "schemas/**",
    "data/**",
    ".github/workflows/train.yml",
    ".github/scripts/**",
)
# The libraries that compute the pipeline's outputs: those its stages import (data,
# validation, fitting, persistence, the ONNX conversion and its check, the model card's
# metrics), and scipy, which scikit-learn's estimators fit with. A new version of any of
# them can change the model or its metrics without a line of this repository changing.
MODEL_LIBRARIES = frozenset(
    {
        "numpy",
        "scipy",
        "pandas",
        "pyarrow",
        "pandera",
        "scikit-learn",
        "joblib",
        "onnx",
        "skl2onnx",
        "onnxruntime",
    }
)
LOCK_FILE = "uv.lock"


class RevisionError(Exception):
    """A revision that is not a commit in this checkout's history."""


@dataclass(frozen=True)
class Decision:
    train: bool
    reasons: tuple[str, ...]  # what shapes the model: paths, and "uv.lock: lib a -> b"
    changed: tuple[str, ...]  # every path the change touches

    def summary(self) -> str:
        """Markdown for the job summary: the verdict, then why."""
        if self.train:
            lines = ["### training: this change shapes the model", ""]
            lines += [f"- `{reason}`" for reason in self.reasons]
            return "\n".join(lines) + "\n"
        libraries = ", ".join(sorted(MODEL_LIBRARIES))
        paths = ", ".join(f"`{pattern}`" for pattern in MODEL_PATHS)
        lines = [
            "### nothing to train",
            "",
            f"nothing to train: this change touches no file that shapes the model ({paths}, "
            f"and the versions of {libraries} in `{LOCK_FILE}`), so the model stays the "
            "base branch's and `reproduce, gate and report` is skipped.",
            "",
            f"Changed ({len(self.changed)}): "
            + (", ".join(f"`{path}`" for path in self.changed) or "nothing"),
        ]
        return "\n".join(lines) + "\n"


def shapes_model(path: str) -> bool:
    return any(glob_regex(pattern).fullmatch(path) for pattern in MODEL_PATHS)


def locked_versions(lock_text: str | None) -> dict[str, tuple[str, ...]]:
    """Package name -> its versions in uv.lock (several where the resolution forks)."""
    if lock_text is None:
        return {}
    versions: dict[str, set[str]] = {}
    for package in tomllib.loads(lock_text).get("package", []):
        versions.setdefault(package["name"], set()).add(str(package.get("version", "")))
    return {name: tuple(sorted(found)) for name, found in versions.items()}


def library_changes(base_lock: str | None, head_lock: str | None) -> list[str]:
    """One line per model library whose locked versions differ, e.g. `a 1.0 -> 1.1`."""
    try:
        before, after = locked_versions(base_lock), locked_versions(head_lock)
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as error:
        # Not knowing what moved must not skip training.
        return [f"{LOCK_FILE}: cannot be read ({error!r}), so any library may have moved"]
    changes = []
    for name in sorted(MODEL_LIBRARIES & (before.keys() | after.keys())):
        old, new = before.get(name, ()), after.get(name, ())
        if old != new:
            changes.append(
                f"{LOCK_FILE}: {name} {', '.join(old) or 'absent'} -> {', '.join(new) or 'absent'}"
            )
    return changes


def decide(
    changed: Iterable[str], *, base_lock: str | None = None, head_lock: str | None = None
) -> Decision:
    """Train when a changed path shapes the model, or uv.lock moves a model library.

    `base_lock` and `head_lock` are uv.lock's text before and after the change (None
    where it did not exist); they count only when uv.lock is among the changed paths.
    """
    paths = tuple(sorted(set(changed)))
    reasons = [path for path in paths if shapes_model(path)]
    if LOCK_FILE in paths:
        reasons += library_changes(base_lock, head_lock)
    return Decision(train=bool(reasons), reasons=tuple(reasons), changed=paths)


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def commit(revision: str, name: str) -> str:
    found = git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    if found.returncode != 0:
        raise RevisionError(
            f"{name} {revision!r}: not a commit in this checkout's history "
            "(check out with fetch-depth: 0)"
        )
    return found.stdout.strip()


def changed_paths(base: str, head: str) -> list[str]:
    """Paths the change touches since the merge base; a move counts at both ends."""
    listed = git("diff", "--name-only", "--no-renames", "-z", f"{base}...{head}", "--")
    if listed.returncode != 0:
        raise RevisionError(f"git diff {base}...{head} failed: {listed.stderr.strip()}")
    return [path for path in listed.stdout.split("\0") if path]


def file_at(revision: str, path: str) -> str | None:
    shown = git("show", f"{revision}:{path}")
    return shown.stdout if shown.returncode == 0 else None


def append(variable: str, text: str) -> None:
    target = os.environ.get(variable)
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the revision the change is compared with")
    parser.add_argument("head", help="the revision of the change")
    args = parser.parse_args(argv)
    try:
        base, head = commit(args.base, "base"), commit(args.head, "head")
        merge_base = git("merge-base", base, head).stdout.strip() or base
        changed = changed_paths(base, head)
    except RevisionError as error:
        print(f"::error title=Cannot tell what changed::{error}")
        return 2
    decision = decide(
        changed, base_lock=file_at(merge_base, LOCK_FILE), head_lock=file_at(head, LOCK_FILE)
    )
    append("GITHUB_OUTPUT", f"train={'true' if decision.train else 'false'}\n")
    append("GITHUB_STEP_SUMMARY", decision.summary())
    print(decision.summary())
    if not decision.train:
        print("::notice title=nothing to train::this change touches no file that shapes the model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
