"""One report comment per pull request, edited on every push, read from train.yml.

CML (v0.20.6, from its source) edits an existing comment instead of adding one when it
is called as `cml comment update` and finds a comment carrying the same watermark on the
same target. So every run must call `comment update` with `--target=pr` and a watermark
that is the same on every run: a run-specific value in it (a run id, a commit) would add a
comment per push. CML cannot run here; under act its stand-in records the arguments, and
tests/workflows/test_act.py checks them for two pull requests' runs.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from .harness import WORKFLOWS, load_workflow

COMMENT_STEP = "Post or update the report comment"
CML = re.compile(r"\s*cml\s")


def cml_calls(script: str) -> list[list[str]]:
    """The words of every `cml` command in a shell script (continuation lines joined)."""
    joined = script.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if CML.match(line)]


def comment_step() -> dict[str, Any]:
    steps = load_workflow("train.yml")["jobs"]["train"]["steps"]
    [step] = [s for s in steps if s.get("name") == COMMENT_STEP]
    return dict(step)


def test_the_report_comment_is_updated_under_a_fixed_watermark() -> None:
    [words] = cml_calls(comment_step()["run"])
    assert words[1:3] == ["comment", "update"], "`comment create` adds a comment per push"
    assert "--target=pr" in words
    [watermark] = [w for w in words if w.startswith("--watermark-title=")]
    title = watermark.removeprefix("--watermark-title=")
    assert title, "an empty watermark matches no earlier comment"
    # Fixed text: no shell or workflow expression that could differ between runs.
    assert not re.search(r"[$`]|\$\{\{", title), title


def test_the_comment_step_is_the_only_cml_call() -> None:
    # Another `cml comment` anywhere would post a second comment beside the sticky one.
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = load_workflow(path.name)
        for job_name, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                calls = cml_calls(step.get("run", ""))
                if step.get("name") == COMMENT_STEP and job_name == "train":
                    assert len(calls) == 1
                else:
                    assert calls == [], f"{path.name}: {job_name}: {step.get('name')}"
