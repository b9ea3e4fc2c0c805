"""The champion's commit: a branch, tag or commit SHA, resolved in the fetched history.

Usage: python3 resolve_base.py [--name NAME] -- VALUE   (prints the full commit SHA)

VALUE is tried, in this order, as
  1. a branch on origin (refs/remotes/origin/VALUE, as a fetch-depth: 0 checkout has it),
  2. a tag (refs/tags/VALUE, annotated or not),
  3. a commit SHA, full or abbreviated (at least 7 hex digits), of a commit in the history.
The first that names a commit wins, so a branch and a tag of the same name mean the branch.
Anything else exits 2 with an error naming NAME (what VALUE is: an input, the pull
request's base), the value and these rules. The SHA is what later steps compare with, so
a branch that moves during the run does not change the champion halfway.
Only the standard library: it runs before the project environment exists.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
RULES = "a branch on origin, a tag, or a commit SHA (7 to 40 hex digits) in the fetched history"


class UnresolvedError(Exception):
    """A value that names no commit under any of the rules."""


def commit_of(revision: str) -> str | None:
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() if found.returncode == 0 else None


def candidates(value: str) -> list[str]:
    """The full revisions VALUE may mean, in the order they are tried."""
    found = []
    if value and not value.startswith("-") and ".." not in value:
        found += [f"refs/remotes/origin/{value}", f"refs/tags/{value}"]
    if SHA.fullmatch(value):
        found.append(value.lower())
    return found


def resolve(value: str, name: str) -> str:
    for revision in candidates(value):
        sha = commit_of(revision)
        if sha:
            return sha
    raise UnresolvedError(f"{name} {value!r}: not {RULES}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("value", help="a branch on origin, a tag or a commit SHA")
    parser.add_argument("--name", default="base", help="what the value is, for errors")
    args = parser.parse_args(argv)
    try:
        sha = resolve(args.value, args.name)
    except UnresolvedError as error:
        print(f"::error title=Unknown champion revision::{error}", file=sys.stderr)
        return 2
    print(sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
