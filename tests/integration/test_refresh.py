"""`tabml refresh-data` in a copy of the template: an imported source is brought to its
source's current version, the project's own command runs, and failures are named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .project import BIN, Project

pytestmark = pytest.mark.slow

POINTER = "data/external/upstream.csv.dvc"


def refresh(project: Project, *args: str, check: bool = True) -> str:
    result = project.run(str(BIN / "tabml"), "refresh-data", *args, check=check)
    return result.stdout + result.stderr


def changed(project: Project) -> list[str]:
    return project.git("status", "--porcelain").splitlines()


def test_an_imported_source_is_updated(fresh: Project, tmp_path: Path) -> None:
    upstream = tmp_path / "upstream.csv"
    upstream.write_text("a,b\n1,2\n")
    fresh.dvc("import-url", str(upstream), "data/external/upstream.csv")
    fresh.git("add", "-A")
    fresh.git("commit", "-q", "-m", "Import upstream data")
    before = yaml.safe_load((fresh.path / POINTER).read_text())

    assert "updated 1 imported source(s) (data/external/upstream.csv.dvc)" in refresh(fresh)
    assert changed(fresh) == [], "the source has not changed: nothing to commit"

    upstream.write_text("a,b\n1,2\n3,4\n")
    refresh(fresh)
    assert changed(fresh) == [f" M {POINTER}"]
    after = yaml.safe_load((fresh.path / POINTER).read_text())
    assert after["outs"][0]["md5"] != before["outs"][0]["md5"]
    assert (fresh.path / "data/external/upstream.csv").read_text() == upstream.read_text()


def test_the_projects_own_command_runs_after_the_imports(fresh: Project) -> None:
    own = "data/external/own.csv"
    command = f"echo 'a,b' > {own} && dvc add -q {own}"
    assert f"ran the refresh command ({command!r})" in refresh(fresh, "--command", command)
    assert "?? data/external/own.csv.dvc" in changed(fresh)

    output = refresh(fresh, "--command", "echo fetching; exit 3", check=False)
    assert "fetching" in output
    assert "refresh-data: error: refresh command 'echo fetching; exit 3': exited 3" in output


def test_without_a_source_it_says_there_is_nothing_to_refresh(fresh: Project) -> None:
    assert "nothing to refresh" in refresh(fresh, "--command", "")
    assert changed(fresh) == []
