"""Check a repository variable that a job's `runs-on` reads as JSON, before GitHub does.

Usage: python3 runs_on.py NAME DEFAULT   (the variable's value in the environment as NAME)

train.yml's training job runs on `${{ fromJSON(vars.TRAIN_RUNS_ON || '"ubuntu-latest"') }}`.
GitHub evaluates that when it is about to start the job: a value that is not JSON fails
the job there with a JSON parser's message ("Unexpected character encountered while
parsing value: u. Path '', line 0, position 0.") that names neither the variable nor
what it should hold, and a JSON value of the wrong shape fails as an invalid runs-on.
This check runs earlier, in the job before it, and names the variable, its value and
the rule. The shapes runs-on takes (docs/training-runners.md):

  "LABEL"                                  one runner label (JSON: quoted)
  ["LABEL", ...]                           a runner with every one of these labels
  {"group": "GROUP", "labels": ...}        a runner group, optionally with labels
                                           (a label or a list of labels)

Unset or empty, the job runs on DEFAULT. Prints where the job will run; exits 2 with a
`::error` naming the variable, its value and the rule when the value is not one of these.
Only the standard library: it runs before the project environment exists.
"""

from __future__ import annotations

import json
import os
import sys

RULE = (
    'a JSON string ("ubuntu-latest"), a JSON array of labels (["self-hosted", "gpu"]) '
    'or an object with "group" and/or "labels" ({"group": "ml-runners"})'
)


def is_label(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def is_labels(value: object) -> bool:
    """One label, or a non-empty list of labels."""
    if isinstance(value, list):
        return len(value) > 0 and all(is_label(item) for item in value)
    return is_label(value)


def runner(value: str, default: str) -> object:
    """The runs-on value GitHub gets from the variable `value` (DEFAULT when empty).
    Raises ValueError saying what is wrong."""
    if value == "":
        return default
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        hint = " (a single label must be quoted)" if value.strip()[:1] not in '[{"' else ""
        raise ValueError(f"not JSON: {error.msg} at position {error.pos}{hint}") from None
    if isinstance(parsed, dict):
        if not parsed or set(parsed) - {"group", "labels"}:
            raise ValueError(f"an object takes the keys group and labels, got {sorted(parsed)}")
        if "group" in parsed and not is_label(parsed["group"]):
            raise ValueError("group must be a non-empty string")
        if "labels" in parsed and not is_labels(parsed["labels"]):
            raise ValueError("labels must be a label or a non-empty list of labels")
        return parsed
    if not is_labels(parsed):
        raise ValueError("not a label, a non-empty list of labels or a group object")
    return parsed


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: runs_on.py NAME DEFAULT", file=sys.stderr)
        return 2
    name, default = argv[1], argv[2]
    value = os.environ.get(name, "")
    try:
        chosen = runner(value, default)
    except ValueError as error:
        print(
            f"::error title={name}::repository variable {name} is {value!r}: {error}. "
            f"It must be {RULE}, or unset for {default}."
        )
        return 2
    source = f"vars.{name}" if value else f"the default ({name} unset)"
    print(f"runs-on: {json.dumps(chosen)} from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
