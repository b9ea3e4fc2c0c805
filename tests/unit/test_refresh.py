"""What a refresh before a retrain updates: imported sources, then the project's command."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tabml.config import ConfigError, parse_params
from tabml.errors import InputError
from tabml.monitor.refresh import RefreshPlan, is_import, plan

from ..conftest import REPO_ROOT

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
    assert "ran drift.refresh_command ('make fetch')" in todo.describe()


def test_with_nothing_to_refresh_it_says_so(tmp_path: Path) -> None:
    todo = plan(tmp_path, [write(tmp_path, "mine.csv.dvc", ADDED)], None)
    assert todo.empty
    assert todo.describe().startswith("nothing to refresh")
    assert not RefreshPlan((), "make fetch").empty


def test_an_unreadable_pointer_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.dvc").write_text("outs: [unclosed")
    with pytest.raises(InputError, match=r"bad\.dvc: not a readable \.dvc file"):
        plan(tmp_path, ["bad.dvc"], None)


def test_the_refresh_command_is_a_drift_setting() -> None:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    assert parse_params(raw).drift.refresh_command is None
    raw["drift"]["refresh_command"] = "make fetch"
    assert parse_params(raw).drift.refresh_command == "make fetch"
    raw["drift"]["refresh_command"] = ""
    with pytest.raises(ConfigError, match="refresh_command"):
        parse_params(raw)
