"""What a test does when something it needs is not on this machine: it skips, saying what
is missing and the command that installs it, except where the full suite is required,
where it fails. A green run there has run every test.

The full suite is required when TABML_FULL_SUITE is true (`.ci/run` sets it), or when CI
is: each CI system spells its variable differently (GitHub `true`, others `1`), so any
of 1, true, yes, on counts, in any case. Every skip-or-fail decision in the suite goes
through `unavailable`, and the end of a run groups its skips by what was missing
(`skip_summary`, from tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NoReturn

import pytest

FULL_SUITE = "TABML_FULL_SUITE"
SWITCHES = (FULL_SUITE, "CI")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
INSTALL_SYSTEM_TOOLS = "bash .ci/install-system-tools"
INSTALL_PYTHON_TOOLS = "make setup"
VENV_BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"
# A skip reason that `unavailable` wrote: what is missing, why, and what installs it.
SKIP_REASON = re.compile(
    r"^(?:Skipped: )?missing (?P<what>[^:]+): .*?(?: \(install: (?P<install>[^)]+)\))?$"
)
# Commands that uv installs into .venv from uv.lock's dev group; the rest are system tools.
PYTHON_TOOLS = frozenset({"act", "actionlint", "dvc", "hadolint", "pre-commit", "rclone", "zizmor"})


def full_suite_required(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this run must run every test: TABML_FULL_SUITE or CI is a true word."""
    return any(environ.get(name, "").strip().lower() in TRUE_WORDS for name in SWITCHES)


def skip_reason(what: str, detail: str, install: str | None) -> str:
    return f"missing {what}: {detail}" + (f" (install: {install})" if install else "")


def unavailable(what: str, detail: str, *, install: str | None = INSTALL_SYSTEM_TOOLS) -> NoReturn:
    """Skip this test, `what` being missing here; fail instead where the full suite is
    required, since there a skipped test would leave a green run short of what it says."""
    __tracebackhide__ = True  # a skip is reported at the test's line, not this one
    reason = skip_reason(what, detail, install)
    if full_suite_required():
        pytest.fail(
            f"the full suite is required here ({' or '.join(SWITCHES)} is set), "
            f"so this test may not skip: {reason}",
            pytrace=False,
        )
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """The path of the command `name` (the project's venv first); skip when missing,
    fail where the full suite is required."""
    __tracebackhide__ = True
    found = VENV_BIN / name if (VENV_BIN / name).is_file() else shutil.which(name)
    if found is None:
        install = INSTALL_PYTHON_TOOLS if name in PYTHON_TOOLS else INSTALL_SYSTEM_TOOLS
        unavailable(name, f"{name} is not installed", install=install)
    return str(found)


def skip_summary(reasons: Iterable[tuple[str, str]]) -> list[str]:
    """Lines for the end of a run, from (test id, skip reason) pairs: how many tests
    skipped for each missing thing, in which files, and the commands that install what
    they need. Skips for other reasons are counted apart."""
    groups: dict[str, list[str]] = defaultdict(list)
    installs: list[str] = []
    others: list[str] = []
    for test_id, reason in reasons:
        found = SKIP_REASON.match(reason.strip())
        if found is None:
            others.append(test_id)
            continue
        groups[found["what"]].append(test_id.split("::")[0])
        if found["install"] and found["install"] not in installs:
            installs.append(found["install"])
    lines = []
    for what in sorted(groups):
        files = sorted(set(groups[what]))
        count = len(groups[what])
        lines.append(f"missing {what}: {count} skipped ({', '.join(files)})")
    if others:
        lines.append(f"{len(others)} skipped for other reasons (see the short summary above)")
    if installs:
        lines.append(
            f"install what they need with: {' && '.join(installs)}; "
            f"{FULL_SUITE}=1 makes such skips fail"
        )
    return lines
