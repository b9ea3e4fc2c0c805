"""Where training runs: train.yml's runs-on reads vars.TRAIN_RUNS_ON as JSON, and the job
before it checks the variable (.github/scripts/runs_on.py) with a message that names it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from types import ModuleType

import pytest

from .harness import SCRIPTS, load_script, load_workflow

# fromJSON(FORK && 'HOSTED' || vars.NAME || 'FALLBACK'): a fork's pull request on the
# hosted runner, else the variable, or a literal GitHub reads as JSON too.
RUNS_ON = re.compile(
    r"^\$\{\{ fromJSON\(github\.event\.pull_request\.head\.repo\.fork && '(?P<fork>[^']*)' "
    r"\|\| vars\.(?P<name>[A-Z_]+) \|\| '(?P<fallback>[^']*)'\) \}\}$"
)


@pytest.fixture(scope="module")
def runs_on() -> ModuleType:
    return load_script("runs_on")


def check(value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPTS / "runs_on.py", "TRAIN_RUNS_ON", "ubuntu-latest"],
        env={"TRAIN_RUNS_ON": value},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_training_job_runs_where_the_variable_says() -> None:
    jobs = load_workflow("train.yml")["jobs"]
    matched = RUNS_ON.match(jobs["train"]["runs-on"])
    assert matched, jobs["train"]["runs-on"]
    assert matched["name"] == "TRAIN_RUNS_ON"
    # Unset, `vars.X || 'F'` is F, which fromJSON parses: a bare label would be an error.
    assert json.loads(matched["fallback"]) == "ubuntu-latest"
    # A fork's code never reaches a runner the variable names (a team's own machines).
    assert json.loads(matched["fork"]) == "ubuntu-latest"
    # The job before it checks the same variable against the same default.
    [step] = [s for s in jobs["changes"]["steps"] if "runs_on.py" in s.get("run", "")]
    assert step["env"] == {"TRAIN_RUNS_ON": "${{ vars.TRAIN_RUNS_ON }}"}
    assert step["run"].split()[-2:] == ["TRAIN_RUNS_ON", "ubuntu-latest"]
    assert jobs["train"]["needs"] == "changes"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "ubuntu-latest"),
        ('"ubuntu-latest-8-cores"', "ubuntu-latest-8-cores"),
        ('["self-hosted", "linux", "gpu"]', ["self-hosted", "linux", "gpu"]),
        ('{"group": "ml-runners"}', {"group": "ml-runners"}),
        ('{"group": "ml-runners", "labels": ["gpu"]}', {"group": "ml-runners", "labels": ["gpu"]}),
        ('{"labels": "arc-train"}', {"labels": "arc-train"}),
    ],
)
def test_values_runs_on_takes(runs_on: ModuleType, value: str, expected: object) -> None:
    assert runs_on.runner(value, "ubuntu-latest") == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            "ubuntu-latest",
            "not JSON: Expecting value at position 0 (a single label must be quoted)",
        ),
        ('["self-hosted", "gpu"', "not JSON"),
        ("[]", "not a label, a non-empty list of labels or a group object"),
        ('["gpu", 8]', "not a label, a non-empty list of labels or a group object"),
        ('""', "not a label"),
        ("8", "not a label"),
        ('{"name": "gpu"}', "an object takes the keys group and labels, got ['name']"),
        ('{"group": ""}', "group must be a non-empty string"),
        ('{"labels": []}', "labels must be a label or a non-empty list of labels"),
    ],
)
def test_values_it_refuses_say_why(runs_on: ModuleType, value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        runs_on.runner(value, "ubuntu-latest")


def test_a_bad_value_fails_the_step_naming_the_variable_value_and_rule() -> None:
    result = check("gpu-runner")
    assert result.returncode == 2
    assert result.stdout.startswith("::error title=TRAIN_RUNS_ON::")
    assert "repository variable TRAIN_RUNS_ON is 'gpu-runner': not JSON" in result.stdout
    assert (
        '(["self-hosted", "gpu"])' in result.stdout and "unset for ubuntu-latest" in result.stdout
    )


def test_a_good_value_says_where_the_job_runs() -> None:
    result = check('["self-hosted", "gpu"]')
    assert result.returncode == 0, result.stdout
    assert result.stdout == 'runs-on: ["self-hosted", "gpu"] from vars.TRAIN_RUNS_ON\n'
    unset = check("")
    assert unset.stdout == 'runs-on: "ubuntu-latest" from the default (TRAIN_RUNS_ON unset)\n'
