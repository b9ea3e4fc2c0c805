"""init's planners, each alone on tiny inputs: the data, its schema, the rename,
params.yaml and the DVC remote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tabml.adopt.names import Names
from tabml.adopt.plan import (
    DataPlan,
    InitRequest,
    SchemaPlan,
    plan_data,
    plan_params,
    plan_project_rename,
    plan_remote,
    plan_schema,
)
from tabml.config import Params, parse_params
from tabml.errors import InputError
from tabml.schema_infer import infer_schema

DEST = "data/external/d.csv"


def request_for(data: Path, delimiter: str | None = None, target: str = "label") -> InitRequest:
    return InitRequest("wine", "wine", data, target, "/tmp/remote", delimiter)


def data_plan(frame: pd.DataFrame, delimiter: str = ",") -> DataPlan:
    return DataPlan(
        source=Path("/elsewhere/d.csv"),
        dest=DEST,
        delimiter=delimiter,
        frame=frame,
        copy=True,
        untrack_from_git=False,
    )


def params_on_file(repo_root: Path, schema_path: str) -> Params:
    """The template's params.yaml pointed at DEST and `schema_path`."""
    raw: dict[str, Any] = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw["data"].update(source="file", sklearn_dataset=None, path=DEST)
    raw["validate"]["schema"] = schema_path
    return parse_params(raw)


# --------------------------------------------------------------------------- data


def test_the_data_is_read_at_the_delimiter_its_header_shows_and_planned_for_copying(
    tmp_path: Path, tiny_frame: pd.DataFrame, default_params: Params
) -> None:
    source = tmp_path / "d.csv"
    tiny_frame.to_csv(source, index=False, sep=";")
    plan = plan_data(tmp_path / "project", request_for(source), default_params, tracked=[])
    assert (plan.source, plan.dest, plan.delimiter) == (source, DEST, ";")
    pd.testing.assert_frame_equal(plan.frame, tiny_frame)
    assert plan.copy and not plan.untrack_from_git
    assert plan.notes == (
        f"read {source} as ';'-delimited, as its header line shows (--delimiter chooses "
        "another); params.yaml data.delimiter = ';'",
    )
    named = plan_data(tmp_path / "project", request_for(source, ";"), default_params, [DEST])
    assert named.notes == () and named.untrack_from_git


def test_data_already_in_place_is_not_copied_and_other_contents_are_not_overwritten(
    tmp_path: Path, tiny_frame: pd.DataFrame, default_params: Params
) -> None:
    root = tmp_path / "project"
    (root / "data" / "external").mkdir(parents=True)
    source = tmp_path / "d.csv"
    tiny_frame.to_csv(source, index=False)
    tiny_frame.to_csv(root / DEST, index=False)
    assert not plan_data(root, request_for(source), default_params, []).copy
    tiny_frame.head(110).to_csv(root / DEST, index=False)
    with pytest.raises(InputError, match=rf"--data '{source}': {DEST} exists with other contents"):
        plan_data(root, request_for(source), default_params, [])


def test_a_delimiter_for_a_parquet_file_and_a_missing_target_are_refused(
    tmp_path: Path, tiny_frame: pd.DataFrame, default_params: Params
) -> None:
    source = tmp_path / "d.parquet"
    tiny_frame.to_parquet(source)
    with pytest.raises(InputError, match=r"--delimiter ';': applies to a CSV file only"):
        plan_data(tmp_path, request_for(source, ";"), default_params, [])
    with pytest.raises(InputError, match=r"--target 'kind': must be a column of"):
        plan_data(tmp_path, request_for(source, target="kind"), default_params, [])


# --------------------------------------------------------------------------- schema


def test_a_schema_is_inferred_under_a_free_name_when_params_names_other_data(
    tmp_path: Path, tiny_frame: pd.DataFrame, default_params: Params
) -> None:
    plan = plan_schema(tmp_path, default_params, data_plan(tiny_frame), "label", "wine")
    assert plan.path == "schemas/d.yaml" and not plan.kept and plan.notes == ()
    assert plan.text is not None
    assert plan.text.startswith(f"# Data schema inferred by `wine init` from {DEST}.\n# Review")
    assert yaml.safe_load(plan.text)["target"] == {"name": "label", "classes": ["no", "yes"]}
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "d.yaml").write_text("another dataset's\n")
    assert plan_schema(tmp_path, default_params, data_plan(tiny_frame), "label", "w").path == (
        "schemas/d_2.yaml"
    )


def test_the_schema_params_names_is_kept_for_its_data_and_must_share_its_target(
    tmp_path: Path, tiny_frame: pd.DataFrame, repo_root: Path
) -> None:
    schema_path = "schemas/mine.yaml"
    (tmp_path / "schemas").mkdir()
    inferred = infer_schema(tiny_frame, "label").model_dump(mode="json")
    (tmp_path / schema_path).write_text(yaml.safe_dump(inferred))
    params = params_on_file(repo_root, schema_path)
    plan = plan_schema(tmp_path, params, data_plan(tiny_frame), "label", "wine")
    assert plan == SchemaPlan(
        schema_path, None, (f"{schema_path} exists; kept as it is (review it by hand)",)
    )
    assert plan.kept
    with pytest.raises(
        InputError,
        match=rf"--target 'colour': {schema_path} \(the schema params.yaml names\) "
        "has target 'label'; must match",
    ):
        plan_schema(tmp_path, params, data_plan(tiny_frame), "colour", "wine")


# --------------------------------------------------------------------------- rename

# Names of another project than this one, so that renaming this one leaves them be.
OLD = Names(project="grape", package="grape")
NEW = Names(project="vine", package="vine")
PYPROJECT = '[project]\nname = "grape"\n\n[tool.ruff]\nline-length = 100\n'


def test_the_same_names_plan_no_rename() -> None:
    texts = {"pyproject.toml": PYPROJECT, "src/grape/__init__.py": "NAME = 'grape'\n"}
    renamed = plan_project_rename(texts, OLD, OLD)
    assert renamed.plan.empty
    assert renamed.texts == texts


def test_a_rename_moves_rewrites_and_formats_without_touching_its_input() -> None:
    texts = {
        "pyproject.toml": PYPROJECT,
        "src/grape/__init__.py": "NAME = 'grape'\n",
        "src/grape/other.py": "VALUE = 'kept'\n",
    }
    before = dict(texts)
    renamed = plan_project_rename(texts, OLD, NEW)
    assert texts == before
    assert renamed.plan.moves == {
        "src/grape/__init__.py": "src/vine/__init__.py",
        "src/grape/other.py": "src/vine/other.py",
    }
    # Formatted as ruff asks: double quotes.
    assert renamed.plan.contents == {
        "pyproject.toml": '[project]\nname = "vine"\n\n[tool.ruff]\nline-length = 100\n',
        "src/vine/__init__.py": 'NAME = "vine"\n',
    }
    assert renamed.texts == {
        "pyproject.toml": renamed.plan.contents["pyproject.toml"],
        "src/vine/__init__.py": 'NAME = "vine"\n',
        "src/vine/other.py": "VALUE = 'kept'\n",
    }


def test_a_rename_that_leaves_a_mention_or_an_unwrappable_line_is_refused() -> None:
    left = {"pyproject.toml": PYPROJECT, "README.md": "Grape, capitalised.\n"}
    with pytest.raises(InputError, match=r"'grape' -> 'vine': 1 mention\(s\) would remain"):
        plan_project_rename(left, OLD, NEW)
    comment = "# " + "x" * 92 + " grape\n"  # 100 characters; a comment is not wrapped
    long_name = Names(project="vine", package="vine_cultivars")
    with pytest.raises(
        InputError, match=r"--package-name 'vine_cultivars': renaming to it leaves 1 line"
    ):
        plan_project_rename(
            {"pyproject.toml": PYPROJECT, "src/grape/a.py": comment}, OLD, long_name
        )


# --------------------------------------------------------------------------- params.yaml


def test_params_are_pointed_at_the_data_once(repo_root: Path, tiny_frame: pd.DataFrame) -> None:
    text = (repo_root / "params.yaml").read_text()
    schema = SchemaPlan("schemas/d.yaml", "inferred")
    edited = plan_params(text, "label", data_plan(tiny_frame, ";"), schema)
    assert edited is not None
    params = parse_params(yaml.safe_load(edited))
    assert (params.data.source, params.data.path, params.data.delimiter) == ("file", DEST, ";")
    assert params.validate_.schema_path == "schemas/d.yaml"
    assert params.model_card.slices == ["size", "count"]
    assert plan_params(edited, "label", data_plan(tiny_frame, ";"), schema) is None


# --------------------------------------------------------------------------- remote


@pytest.mark.parametrize(
    ("config", "set_default", "drop"),
    [
        ({}, True, None),
        ({"core.remote": "storage", "remote.storage.url": "s3://b/p"}, False, None),
        ({"core.remote": "storage", "remote.storage.url": "s3://b/old"}, True, None),
        (
            {"core.remote": "example", "remote.example.url": "~/.dvc-remotes/example"},
            True,
            "example",
        ),
        (
            {"core.remote": "example", "remote.example.url": f"{Path.home()}/.dvc-remotes/t"},
            True,
            "example",
        ),
        ({"core.remote": "team", "remote.team.url": "s3://team/store"}, True, None),
    ],
)
def test_the_remote_is_set_as_default_and_only_the_example_one_dropped(
    config: dict[str, str], set_default: bool, drop: str | None
) -> None:
    plan = plan_remote(config, "s3://b/p")
    assert (plan.url, plan.set_default, plan.drop) == ("s3://b/p", set_default, drop)
