"""Check the workflows' action pins against .github/actions-lock.yml, and the list upstream.

A SHA pin is only as good as the check that the SHA is the release it claims to be:
GitHub fetches any commit of an action's repository network by SHA, including one that
only a pull request or a fork holds, and runs it. The list names, for every action the
workflows use, the version, the commit that version's tag points to, and when and how
that was checked.

Usage (from the repository root):
  python .github/scripts/verify_action_pins.py
      every `uses:` in .github/workflows/ is in the list with the same SHA and version
      comment (no network; tests/workflows/test_pins.py runs the same check)
  python .github/scripts/verify_action_pins.py --upstream [--mirror OWNER/NAME=DIR ...]
      then resolve each entry's tag in the action's repository (`git ls-remote` of
      https://github.com/OWNER/NAME, or of a local clone or mirror given with --mirror)
      and require the tag's commit to be the listed SHA
  python .github/scripts/verify_action_pins.py --record [--mirror OWNER/NAME=DIR ...]
      rewrite the list from the workflows' pins (after a version bump), each resolved
      upstream the same way first; nothing is written unless every pin is its tag's commit

Exit status: 0 everything agrees; 1 a pin, an entry or a tag disagrees; 2 the list or a
workflow is malformed, or a repository could not be read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
LOCK = ROOT / ".github" / "actions-lock.yml"
ACTION = re.compile(r"^[\w.-]+/[\w.-]+$")
SHA = re.compile(r"^[0-9a-f]{40}$")
VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
USES_LINE = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^\s+#\s*(?P<version>v\d+\.\d+\.\d+)\s*$")
HEADER = """\
# Every action that .github/workflows/ uses, pinned to the commit its release tag points
# to, with when and how that was checked. tests/workflows/test_pins.py fails when a
# workflow's `uses:` differs from this list. Re-check the list against the actions'
# repositories with `python .github/scripts/verify_action_pins.py --upstream`, and
# rewrite it after a version bump with `--record` (docs/gitops.md: "Pinned actions").
"""


class PinError(Exception):
    """The list or a workflow is malformed, or a repository could not be read."""


@dataclass(frozen=True)
class Pin:
    """One `uses:` line: OWNER/NAME@SHA # vX.Y.Z, and where it is."""

    action: str
    sha: str
    version: str
    where: str


@dataclass(frozen=True)
class Entry:
    """One action in the list, and how its SHA was found to be the version's commit."""

    action: str
    version: str
    sha: str
    verified_on: datetime.date
    verified_how: str


def workflow_pins(workflows: Path) -> list[Pin]:
    """Every third-party `uses:` in the workflows; local actions (./...) are not pins."""
    pins = []
    for path in sorted(workflows.glob("*.y*ml")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            uses = USES_LINE.match(line)
            if uses is None or uses["ref"].startswith("./"):
                continue
            where = f"{path.name}:{number}"
            pinned, comment = PINNED.match(uses["ref"]), VERSION_COMMENT.match(uses["rest"])
            if pinned is None or comment is None:
                raise PinError(
                    f"{where}: uses {line.strip()!r}: an action must be pinned as "
                    "OWNER/NAME@<40-hex SHA> # vX.Y.Z"
                )
            pins.append(Pin(pinned["action"], pinned["sha"], comment["version"], where))
    return pins


def _field(entry: dict[str, Any], key: str, pattern: re.Pattern[str], at: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not pattern.match(value):
        raise PinError(f"{at}.{key}: {value!r} must match {pattern.pattern}")
    return value


def _verified(entry: dict[str, Any], at: str) -> tuple[datetime.date, str]:
    verified = entry.get("verified")
    if not isinstance(verified, dict) or set(verified) != {"date", "how"}:
        raise PinError(f"{at}.verified: {verified!r} must be a mapping with date and how")
    try:
        on = datetime.date.fromisoformat(str(verified["date"]))
    except ValueError:
        raise PinError(
            f"{at}.verified.date: {verified['date']!r} must be a date, YYYY-MM-DD"
        ) from None
    how = verified["how"]
    if not isinstance(how, str) or not how.strip():
        raise PinError(f"{at}.verified.how: {how!r} must say how the SHA was checked")
    return on, how


def parse_lock(loaded: Any) -> list[Entry]:
    """The list's entries, with every field checked; one entry per action."""
    if not isinstance(loaded, dict) or set(loaded) != {"actions"}:
        raise PinError(f"the list must be a mapping with one key, actions; got {loaded!r}")
    if not isinstance(loaded["actions"], list):
        raise PinError(f"actions: {loaded['actions']!r} must be a list")
    entries: list[Entry] = []
    for index, raw in enumerate(loaded["actions"]):
        at = f"actions[{index}]"
        keys = {"action", "version", "sha", "verified"}
        if not isinstance(raw, dict) or set(raw) != keys:
            raise PinError(f"{at}: {raw!r} must be a mapping with exactly {sorted(keys)}")
        action = _field(raw, "action", ACTION, at)
        if any(entry.action == action for entry in entries):
            raise PinError(f"{at}.action: {action!r} is listed twice; one pin per action")
        on, how = _verified(raw, at)
        version, sha = _field(raw, "version", VERSION, at), _field(raw, "sha", SHA, at)
        entries.append(Entry(action, version, sha, on, how))
    return entries


def load_lock(path: Path) -> list[Entry]:
    try:
        return parse_lock(yaml.safe_load(path.read_text()))
    except PinError as error:
        raise PinError(f"{path.name}: {error}") from None


def disagreements(pins: Iterable[Pin], entries: Iterable[Entry]) -> list[str]:
    """Pins the list does not hold as written, and entries no workflow uses."""
    listed = {entry.action: entry for entry in entries}
    problems, used = [], set()
    for pin in pins:
        entry = listed.get(pin.action)
        used.add(pin.action)
        if entry is None:
            problems.append(f"{pin.where}: {pin.action} is not in the list")
        elif (pin.sha, pin.version) != (entry.sha, entry.version):
            problems.append(
                f"{pin.where}: {pin.action}@{pin.sha} # {pin.version}, but the list has "
                f"{entry.sha} # {entry.version}"
            )
    unused = sorted(listed.keys() - used)
    problems += [f"{action}: listed, but no workflow uses it" for action in unused]
    return problems


def repository(action: str, mirrors: dict[str, Path]) -> str:
    """Where to read the action's tags: a local clone or mirror, else GitHub."""
    return str(mirrors[action]) if action in mirrors else f"https://github.com/{action}.git"


def tag_commit(source: str, version: str) -> str | None:
    """The commit the tag `version` points to in `source` (annotated tags peeled)."""
    tag = f"refs/tags/{version}"
    result = subprocess.run(
        ["git", "ls-remote", source, tag, f"{tag}^{{}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    if result.returncode != 0:
        raise PinError(f"git ls-remote {source} failed: {result.stderr.strip()}")
    refs = {}
    for line in result.stdout.splitlines():
        commit, _, ref = line.partition("\t")
        refs[ref] = commit
    return refs.get(f"{tag}^{{}}", refs.get(tag))


def upstream_disagreement(pin: Pin | Entry, source: str) -> str | None:
    """Why `pin` is not its version's tag commit in `source`, or None when it is."""
    commit = tag_commit(source, pin.version)
    if commit is None:
        return f"{pin.action}: {source} has no tag {pin.version}"
    if commit != pin.sha:
        return f"{pin.action}: {pin.version} is {commit} in {source}, not the pinned {pin.sha}"
    return None


def how_checked(action: str, version: str, mirrors: dict[str, Path]) -> str:
    where = f"https://github.com/{action}"
    where = f"a mirror of {where}" if action in mirrors else where
    return f"refs/tags/{version}^{{}} is this SHA (git ls-remote of {where})"


def render_lock(entries: Sequence[Entry]) -> str:
    """The list as YAML, one block per action (strings JSON-quoted, which YAML reads)."""
    lines = [HEADER.rstrip("\n"), "actions:"]
    for entry in sorted(entries, key=lambda entry: entry.action):
        lines += [
            f"  - action: {entry.action}",
            f"    version: {entry.version}",
            f"    sha: {entry.sha}",
            "    verified:",
            f"      date: {entry.verified_on.isoformat()}",
            f"      how: {json.dumps(entry.verified_how)}",
        ]
    return "\n".join(lines) + "\n"


def record(
    pins: Sequence[Pin], mirrors: dict[str, Path], today: datetime.date
) -> tuple[list[Entry], list[str]]:
    """Entries for the workflows' pins, and why any pin is not its tag's commit upstream."""
    chosen: dict[str, Pin] = {}
    for pin in pins:
        first = chosen.setdefault(pin.action, pin)
        if (first.sha, first.version) != (pin.sha, pin.version):
            raise PinError(f"{pin.where}: {pin.action} is pinned differently in {first.where}")
    entries, problems = [], []
    for pin in chosen.values():
        problem = upstream_disagreement(pin, repository(pin.action, mirrors))
        if problem:
            problems.append(problem)
        else:
            how = how_checked(pin.action, pin.version, mirrors)
            entries.append(Entry(pin.action, pin.version, pin.sha, today, how))
    return entries, problems


def mirror_map(specs: Sequence[str]) -> dict[str, Path]:
    mirrors = {}
    for spec in specs:
        action, _, directory = spec.partition("=")
        if not ACTION.match(action) or not directory:
            raise PinError(f"--mirror {spec!r} must be OWNER/NAME=DIR")
        mirrors[action] = Path(directory)
    return mirrors


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--upstream", action="store_true", help="also check each tag upstream")
    mode.add_argument("--record", action="store_true", help="rewrite the list from the pins")
    parser.add_argument("--mirror", action="append", default=[], metavar="OWNER/NAME=DIR")
    parser.add_argument("--workflows", type=Path, default=WORKFLOWS)
    parser.add_argument("--lock", type=Path, default=LOCK)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    pins, mirrors = workflow_pins(args.workflows), mirror_map(args.mirror)
    if args.record:
        entries, problems = record(pins, mirrors, datetime.datetime.now(datetime.UTC).date())
        if not problems:
            args.lock.write_text(render_lock(entries))
            print(f"{args.lock.name}: recorded {len(entries)} actions, each its tag's commit")
    else:
        entries = load_lock(args.lock)
        problems = disagreements(pins, entries)
        if args.upstream:
            problems += upstream_problems(entries, mirrors)
        if not problems:
            print(f"{len(pins)} pins of {len(entries)} actions agree with {args.lock.name}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def upstream_problems(entries: Sequence[Entry], mirrors: dict[str, Path]) -> list[str]:
    problems = []
    for entry in entries:
        problem = upstream_disagreement(entry, repository(entry.action, mirrors))
        print(f"{entry.action} {entry.version} {entry.sha}: {'DIFFERS' if problem else 'ok'}")
        problems += [problem] if problem else []
    return problems


def main(argv: Sequence[str]) -> int:
    try:
        return run(parse_args(argv))
    except PinError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
