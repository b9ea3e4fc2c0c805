"""Fail when dvc.lock does not match the code and params of this commit.

Runs `dvc status --json` in a checkout without the data (as CI has it): outputs and
data that are simply not here ("deleted", "not in cache") are expected and ignored.
What counts is a dependency or param that differs from what dvc.lock records
("modified", "new"), a changed command, or a git-tracked output (metrics, plot data)
edited by hand: each means the pipeline's code or settings changed and nobody ran it.

Usage: python dvc_lock_check.py   (from the repository root, with dvc on PATH)
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

MISSING = {"deleted", "not in cache"}


def missing_outputs(status: dict[str, Any]) -> set[str]:
    """Outputs that are simply not in this checkout (data that `dvc add` tracks, too)."""
    missing = set()
    for changes in status.values():
        for change in changes:
            if isinstance(change, dict):
                for entries in change.values():
                    if isinstance(entries, dict):
                        missing |= {
                            path
                            for path, state in entries.items()
                            if isinstance(state, str) and state in MISSING
                        }
    return missing


def stale_reasons(status: dict[str, Any]) -> list[str]:
    """One line per stage whose code, params or tracked outputs differ from dvc.lock.

    A folder dependency that holds a missing output (ingest's data/external/ with a
    `dvc add`ed file in it) reads as "modified" without its data; that is missing data
    too. A changed `.dvc` pointer in it cannot be told apart without the data, which
    this check does not have.
    """
    missing = missing_outputs(status)
    reasons = []
    for stage, changes in status.items():
        found = []
        for change in changes:
            if not isinstance(change, dict):  # "changed checksum", "always changed"
                found.append(str(change))
                continue
            for kind, entries in change.items():
                if not isinstance(entries, dict):
                    found.append(kind)
                    continue
                for path, state in entries.items():
                    if isinstance(state, dict):  # params: {"train": "modified"}
                        found += [f"{path} section {key} {value}" for key, value in state.items()]
                    elif state not in MISSING and not (
                        state == "modified" and any(m.startswith(f"{path}/") for m in missing)
                    ):
                        found.append(f"{path} {state}")
        if found:
            reasons.append(f"{stage}: {', '.join(found)}")
    return reasons


def main() -> int:
    result = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stdout + result.stderr)
        print("::error title=dvc.lock check failed::dvc status failed (output above).")
        return 1
    reasons = stale_reasons(json.loads(result.stdout or "{}"))
    if reasons:
        for reason in reasons:
            print(f"  {reason}")
        print(
            "::error title=dvc.lock is out of date::"
            f"{len(reasons)} stage(s) changed since dvc.lock was written "
            f"({'; '.join(reasons)}). Run 'make repro' and commit dvc.lock "
            "with the small outputs it updates."
        )
        return 1
    print("dvc.lock matches the code and params: no stage changed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
