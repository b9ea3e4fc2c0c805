"""What a refresh before a retrain updates: imported sources, then the project's command."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tabml.cli import main
from tabml.errors import InputError
from tabml.monitor.refresh import RefreshPlan, is_import, plan

ADDED = {"outs": [{"md5": "a" * 32, "size": 10, "path": "mine.csv"}]}
IMPORTED_URL = {
    "md5": "b" * 32,
    "frozen": True,
    "deps": [{"etag": "x", "path": "s3://bucket/data.csv"}],
    "outs": [{"md5": "c" * 32, "path": "data.csv"}],
}
IMPORTED_REPO = {
    "deps": [{"path": "data/x.csv", "repo": {"url": "https://example.com/r.git", "rev_lock": "f"}}],
    "outs": [{"md5": "d" * 32, "path": "x.csv"}],
}


def write(root: Path, name: str, content: object) -> str:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(yaml.safe_dump(content))
    return name


def test_imports_are_the_pointers_with_a_source() -> None:
    assert is_import(IMPORTED_URL)
    assert is_import(IMPORTED_REPO)
    assert not is_import(ADDED)


def test_the_plan_updates_imports_only_and_runs_the_command(tmp_path: Path) -> None:
    names = [
        write(tmp_path, "data/external/mine.csv.dvc", ADDED),
        write(tmp_path, "data/external/data.csv.dvc", IMPORTED_URL),
        write(tmp_path, "data/external/x.csv.dvc", IMPORTED_REPO),
    ]
    todo = plan(tmp_path, names, "make fetch")
    assert todo == RefreshPlan(
        ("data/external/data.csv.dvc", "data/external/x.csv.dvc"), "make fetch"
    )
    assert "updated 2 imported source(s)" in todo.describe()
    assert "ran the refresh command ('make fetch')" in todo.describe()


def test_with_nothing_to_refresh_it_says_so(tmp_path: Path) -> None:
    todo = plan(tmp_path, [write(tmp_path, "mine.csv.dvc", ADDED)], None)
    assert todo.empty
    assert todo.describe().startswith("nothing to refresh")
    assert not RefreshPlan((), "make fetch").empty


def test_an_unreadable_pointer_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.dvc").write_text("outs: [unclosed")
    with pytest.raises(InputError, match=r"bad\.dvc: not a readable \.dvc file"):
        plan(tmp_path, ["bad.dvc"], None)


def test_outside_a_git_work_tree_it_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert main(["refresh-data", "--command", ""]) == 2
    assert "not a git work tree" in capsys.readouterr().err
