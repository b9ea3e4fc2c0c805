"""params.yaml and schema files: parsed once, and every bad value named with its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tabml.config import (
    SAFE_LOADER,
    ConfigError,
    load_params,
    load_schema,
    parse_params,
    parse_schema,
)


@pytest.fixture
def raw_params(repo_root: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((repo_root / "params.yaml").read_text())
    return loaded


def test_shipped_params_and_schemas_load(repo_root: Path) -> None:
    params = load_params(repo_root / "params.yaml")
    assert params.train.estimator == "logistic_regression"
    for schema_file in sorted((repo_root / "schemas").glob("*.yaml")):
        schema = load_schema(schema_file)
        assert schema.target.name not in schema.features


def test_unknown_estimator_names_key_and_value(raw_params: dict[str, Any]) -> None:
    raw_params["train"]["estimator"] = "xgboost"
    with pytest.raises(ConfigError) as caught:
        parse_params(raw_params)
    message = str(caught.value)
    assert "train.estimator = 'xgboost'" in message
    assert "logistic_regression" in message


def test_negative_test_size_names_key_and_value(raw_params: dict[str, Any]) -> None:
    raw_params["split"]["test_size"] = -0.2
    with pytest.raises(ConfigError, match=r"split\.test_size = -0\.2: .*greater than 0"):
        parse_params(raw_params)


def test_unknown_key_names_the_key(raw_params: dict[str, Any]) -> None:
    raw_params["train"]["logistic_regression"]["c"] = 0.5
    with pytest.raises(
        ConfigError, match=r"train\.logistic_regression\.c: unknown key \(value 0\.5\)"
    ):
        parse_params(raw_params)


def test_unknown_top_level_section(raw_params: dict[str, Any]) -> None:
    raw_params["trian"] = {"seed": 1}
    with pytest.raises(ConfigError, match=r"trian: unknown key"):
        parse_params(raw_params)


def test_every_error_is_reported_at_once(raw_params: dict[str, Any]) -> None:
    raw_params["split"]["test_size"] = 1.5
    raw_params["train"]["seed"] = "forty-two"
    with pytest.raises(ConfigError) as caught:
        parse_params(raw_params)
    assert "2 invalid setting(s)" in str(caught.value)
    assert "split.test_size = 1.5" in str(caught.value)
    assert "train.seed = 'forty-two'" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"source": "file"}, "data.path is required"),
        ({"source": "file", "path": "data/external/x.xlsx"}, "must end in .csv or .parquet"),
        ({"source": "sklearn"}, "data.sklearn_dataset is required"),
        ({"source": "sklearn", "sklearn_dataset": "mnist"}, "data.sklearn_dataset = 'mnist'"),
        ({"source": "url"}, "data.source = 'url'"),
        (
            {"source": "file", "path": "d.csv", "delimiter": ":"},
            r"data.delimiter = ':'.*',', ';', '\\t' or '\|'",
        ),
        (
            {"source": "file", "path": "d.parquet", "delimiter": ";"},
            r"data.delimiter = ';': applies to a .csv data.path only; must be ','",
        ),
        (
            {"source": "sklearn", "sklearn_dataset": "iris", "delimiter": "\t"},
            r"data.delimiter = '\\t': applies to a .csv data.path only",
        ),
    ],
)
def test_data_source_rules(raw_params: dict[str, Any], data: dict[str, Any], expected: str) -> None:
    raw_params["data"] = data
    with pytest.raises(ConfigError, match=expected):
        parse_params(raw_params)


def test_missing_required_section(raw_params: dict[str, Any]) -> None:
    del raw_params["train"]
    with pytest.raises(ConfigError, match="train: required key is missing"):
        parse_params(raw_params)


def test_the_project_files_read_alike_in_c_and_in_python(repo_root: Path) -> None:
    assert SAFE_LOADER is yaml.CSafeLoader, "PyYAML without libyaml: files parse in Python"
    paths = [repo_root / "params.yaml", *sorted((repo_root / "schemas").glob("*.yaml"))]
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=SAFE_LOADER) == yaml.safe_load(text), path.name


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_params(listed)


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ({"x": {"dtype": "float", "min": 5, "max": 1}}, "min = 5.0 is greater than max = 1.0"),
        ({"x": {"dtype": "text"}}, "features.x"),
        ({"x": {"dtype": "category", "allowed": []}}, "features.x.category.allowed"),
        ({"x": {"dtype": "float", "max_null_fraction": 2}}, "max_null_fraction = 2"),
        ({"label": {"dtype": "float"}}, "also listed as a feature"),
    ],
)
def test_schema_rules(features: dict[str, Any], expected: str) -> None:
    raw = {"target": {"name": "label", "classes": ["a", "b"]}, "features": features}
    with pytest.raises(ConfigError, match=expected):
        parse_schema(raw)


def test_schema_classes_must_be_unique_and_two_or_more() -> None:
    with pytest.raises(ConfigError, match="values must be unique"):
        parse_schema(
            {"target": {"name": "y", "classes": ["a", "a"]}, "features": {"x": {"dtype": "float"}}}
        )
    with pytest.raises(ConfigError, match=r"target.classes"):
        parse_schema(
            {"target": {"name": "y", "classes": ["a"]}, "features": {"x": {"dtype": "float"}}}
        )


def test_hyperparameters_are_those_of_the_chosen_family(raw_params: dict[str, Any]) -> None:
    raw_params["train"]["estimator"] = "random_forest"
    params = parse_params(raw_params)
    assert set(params.train.hyperparameters()) == {
        "n_estimators",
        "max_depth",
        "min_samples_leaf",
        "class_weight",
    }


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_a_csv_file_may_name_its_delimiter(raw_params: dict[str, Any], delimiter: str) -> None:
    raw_params["data"] = {"source": "file", "path": "data/external/d.csv", "delimiter": delimiter}
    assert parse_params(raw_params).data.delimiter == delimiter


def test_model_card_max_rows_below_its_floor_is_named(raw_params: dict[str, Any]) -> None:
    raw_params["model_card"]["max_rows"] = 10
    with pytest.raises(
        ConfigError, match=r"model_card\.max_rows = 10: .*greater than or equal to 100"
    ):
        parse_params(raw_params)
