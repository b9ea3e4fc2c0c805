"""`tabml init` on a real terminal (a pseudo-terminal): a flag left out is asked for and
the answer is used; and a work tree with a modified tracked file is refused unchanged."""

from __future__ import annotations

import os
import select
import subprocess
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabml.adopt import FIELDS

from .project import BIN, REPO_ROOT, Project, snapshot, wine_frame

# What each flag's prompt says, as `gather` writes it, in the order they are asked.
PROMPTS = {flag: f"{prompt}: " for _, flag, prompt in FIELDS}
TERMINAL_TIMEOUT = 120
FULL_RUN_TIMEOUT = 1800
# Names no longer than the template's: init refuses a rename that would push a line past
# the line length, which is not what these tests are about.
PROJECT, PACKAGE = "Grape", "vino"


def command_name() -> str:
    """The command that runs init: the script pyproject names for the CLI's main."""
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    [name] = [name for name, target in scripts.items() if target.endswith(".cli:main")]
    return str(name)


@pytest.fixture
def wine_csv(tmp_path: Path) -> Path:
    # Not wine_cultivars.csv: a project made from the template by init keeps that one.
    path = tmp_path / "data" / "wine_on_a_terminal.csv"
    path.parent.mkdir()
    wine_frame().to_csv(path, index=False)
    return path


def init_on_a_terminal(
    project: Project, flags: list[str], answers: dict[str, str], timeout: float
) -> tuple[int, str, list[str]]:
    """Run init with `flags` on a pseudo-terminal, answering each prompt from `answers`
    (flag -> text). Returns the exit status, the terminal's transcript and the flags
    whose prompts appeared, in order. A prompt without an answer fails the test."""
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [str(BIN / command_name()), "init", *flags],
        cwd=project.path,
        env={**project.env, "TERM": "dumb"},
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    transcript, asked, answered_up_to = "", [], 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                pytest.fail(f"init did not finish within {timeout} s:\n{transcript}")
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the process has ended
                break
            if not chunk:
                break
            transcript += chunk.decode(errors="replace")
            pending = transcript[answered_up_to:]
            for flag, prompt in PROMPTS.items():
                if pending.endswith(prompt):
                    assert flag in answers, f"asked for {flag} unexpectedly:\n{transcript}"
                    asked.append(flag)
                    os.write(controller, (answers[flag] + "\n").encode())
                    answered_up_to = len(transcript)
                    break
        status = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    return status, transcript.replace("\r\n", "\n"), asked


def test_every_missing_flag_is_asked_for_in_order_and_the_answers_are_used(
    template_copy: Project, wine_csv: Path
) -> None:
    before = snapshot(template_copy.path)
    answers = {
        "--project-name": PROJECT,
        "--package-name": PACKAGE,
        "--data": str(wine_csv),
        # A column the data lacks: the refusal shows the answers reached the checks.
        "--target": "colour",
        "--remote": str(wine_csv.parent / "remote"),
    }
    status, transcript, asked = init_on_a_terminal(
        template_copy, [], answers, timeout=TERMINAL_TIMEOUT
    )
    assert asked == list(PROMPTS), transcript
    assert status == 2, transcript
    assert f"{command_name()} init: error: --target 'colour': must be a column of" in transcript
    assert "'alcohol'" in transcript, "the columns of the answered data file"
    assert "Traceback" not in transcript
    assert snapshot(template_copy.path) == before


def test_only_the_missing_flags_are_asked_for_and_an_empty_answer_is_refused(
    template_copy: Project, wine_csv: Path
) -> None:
    before = snapshot(template_copy.path)
    flags = [f"--project-name={PROJECT}", f"--package-name={PACKAGE}", "--target=cultivar"]
    answers = {"--data": str(wine_csv), "--remote": "   "}
    status, transcript, asked = init_on_a_terminal(
        template_copy, flags, answers, timeout=TERMINAL_TIMEOUT
    )
    assert asked == ["--data", "--remote"], transcript
    assert status == 2, transcript
    assert "--remote '': must not be empty" in transcript
    assert snapshot(template_copy.path) == before


def test_a_modified_tracked_file_is_refused_and_nothing_changes(
    template_copy: Project, wine_csv: Path
) -> None:
    params = template_copy.path / "params.yaml"
    params.write_text(params.read_text() + "# an edit not yet committed\n")
    before = snapshot(template_copy.path)
    flags = [
        f"--project-name={PROJECT}",
        f"--package-name={PACKAGE}",
        f"--data={wine_csv}",
        "--target=cultivar",
        f"--remote={wine_csv.parent / 'remote'}",
    ]
    result = template_copy.run(str(BIN / command_name()), "init", *flags, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == (
        f"{command_name()} init: error: git working tree: 1 uncommitted change(s) "
        "(params.yaml); must be clean, so that init's changes are one reviewable commit "
        "(commit or stash them first)\n"
    )
    assert snapshot(template_copy.path) == before
    assert not (template_copy.path / "data/external/wine_on_a_terminal.csv").exists()


@pytest.mark.slow
def test_init_answered_on_a_terminal_makes_the_project(
    template_copy: Project, wine_csv: Path
) -> None:
    head = template_copy.git("rev-parse", "HEAD").strip()
    answers = {
        "--project-name": PROJECT,
        "--package-name": PACKAGE,
        "--data": str(wine_csv),
        "--target": "cultivar",
        "--remote": str(wine_csv.parent / "remote"),
    }
    status, transcript, asked = init_on_a_terminal(
        template_copy, [], answers, timeout=FULL_RUN_TIMEOUT
    )
    assert asked == list(PROMPTS), transcript
    assert status == 0, transcript
    # One new commit holds all of it, and the tree is clean.
    assert template_copy.git("rev-parse", "HEAD~1").strip() == head
    assert template_copy.git("status", "--porcelain") == ""
    assert (template_copy.path / "src" / PACKAGE).is_dir()
    params = yaml.safe_load((template_copy.path / "params.yaml").read_text())
    assert params["data"]["path"] == "data/external/wine_on_a_terminal.csv"
    schema = yaml.safe_load((template_copy.path / params["validate"]["schema"]).read_text())
    assert schema["target"]["name"] == "cultivar"
    copied = pd.read_csv(template_copy.path / "data/external/wine_on_a_terminal.csv")
    assert len(copied) == 178
    # The configuration itself: `dvc remote list` wraps long paths to the terminal width.
    config = template_copy.dvc("config", "--list", "--project").stdout.splitlines()
    assert f"remote.storage.url={wine_csv.parent / 'remote'}" in config
