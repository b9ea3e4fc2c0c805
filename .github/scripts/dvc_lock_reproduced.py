"""Fail when `dvc repro` changed dvc.lock: the committed lock is not what this commit's
data, params and code produce.

The training workflow runs this right after `dvc repro --pull` (or `dvc repro`). The
release workflow ships the model that the committed dvc.lock names, so a pull request
that changes what the pipeline reads (a new `.dvc` data pointer, say) without the
dvc.lock it reproduces would merge a lock naming the old model, and release would ship
that. Every pipeline output depends on its declared inputs only, so reproducing a
commit whose lock is current leaves dvc.lock exactly as committed.

Usage: python dvc_lock_reproduced.py   (from the repository root, after dvc repro)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

LOCK = "dvc.lock"
FIX = "Run `dvc repro` (or `make repro`), then commit dvc.lock (and `dvc push`)."


def stage_facts(stage: dict[str, Any]) -> dict[str, Any]:
    """What dvc.lock records for one stage, keyed by what a reader knows it by: the
    command, each dependency and output path, and each `file:section` of params."""
    facts: dict[str, Any] = {"cmd": stage.get("cmd")}
    for kind in ("deps", "outs"):
        for entry in stage.get(kind) or []:
            facts[entry["path"]] = {key: value for key, value in entry.items() if key != "path"}
    for file, sections in (stage.get("params") or {}).items():
        for section, value in (sections or {}).items():
            facts[f"{file}:{section}"] = value
    return facts


def changed_stages(committed: dict[str, Any], reproduced: dict[str, Any]) -> dict[str, list[str]]:
    """Each stage whose record differs between the two locks, with what differs in it,
    in the reproduced lock's (pipeline) order, then the stages only the committed has."""
    before = committed.get("stages") or {}
    after = reproduced.get("stages") or {}
    changes: dict[str, list[str]] = {}
    for name in [*after, *(name for name in before if name not in after)]:
        if name not in before:
            changes[name] = ["not in the committed dvc.lock"]
        elif name not in after:
            changes[name] = ["no longer in the pipeline"]
        else:
            old, new = stage_facts(before[name]), stage_facts(after[name])
            keys = [*new, *(key for key in old if key not in new)]
            differ = [key for key in keys if old.get(key) != new.get(key)]
            if differ:
                changes[name] = differ
    return changes


def committed_text(root: Path) -> str | None:
    """dvc.lock as HEAD has it, or None when HEAD has none."""
    shown = subprocess.run(
        ["git", "show", f"HEAD:{LOCK}"], cwd=root, capture_output=True, text=True, check=False
    )
    return shown.stdout if shown.returncode == 0 else None


def verdict(committed: str | None, reproduced: str) -> tuple[int, list[str]]:
    """The exit status and the lines to print, from the committed and reproduced locks."""
    if committed == reproduced:
        return 0, ["dvc.lock is as committed: this commit's lock is what its pipeline makes."]
    try:
        before = yaml.safe_load(committed or "") or {}
    except yaml.YAMLError as error:
        return 1, [f"::error title=dvc.lock is not valid YAML::the committed {LOCK}: {error}"]
    changes = changed_stages(before, yaml.safe_load(reproduced) or {})
    if not changes:
        return 0, [
            "::notice title=dvc.lock rewritten::dvc repro rewrote dvc.lock with the same "
            "stage records; the committed lock names the same data and models."
        ]
    lines = [f"  {name}: {', '.join(differ)}" for name, differ in changes.items()]
    names = ", ".join(changes)
    lines.append(
        "::error title=dvc.lock is not what this commit reproduces::"
        f"dvc repro changed the dvc.lock records of {len(changes)} stage(s): {names}. "
        "The committed dvc.lock names other data or models than this commit's pipeline "
        f"makes, and release would ship those. {FIX}"
    )
    return 1, lines


def main() -> int:
    root = Path.cwd()
    try:
        reproduced = (root / LOCK).read_text(encoding="utf-8")
    except OSError as error:
        print(f"::error title=dvc.lock check failed::cannot read {LOCK}: {error}")
        return 1
    status, lines = verdict(committed_text(root), reproduced)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
