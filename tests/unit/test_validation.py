"""Validation errors: the shared problems, and each caller's message worded from them."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tabml.config import ConfigError, parse_params
from tabml.errors import InputError
from tabml.report.sources import ReportSources, build_report
from tabml.serve.model import ModelLoadError, OnnxModel
from tabml.serve.settings import SettingsError, load_settings
from tabml.validation import Problem, problems
from tests.tools import run_tool


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(gt=0)


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: Inner
    name: str

    @model_validator(mode="after")
    def _short(self) -> Outer:
        if len(self.name) > 3:
            raise ValueError("name is too long")
        return self


def caught(model: type[BaseModel], raw: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as error:
        model.model_validate(raw)
    return error.value


def test_problems_name_key_value_rule_and_kind() -> None:
    found = problems(caught(Outer, {"inner": {"size": 0, "colour": "red"}}))
    assert found == [
        Problem("inner.size", 0, "Input should be greater than 0", "greater_than"),
        Problem("inner.colour", "red", "Extra inputs are not permitted", "extra_forbidden"),
        Problem("name", {"inner": {"size": 0, "colour": "red"}}, "Field required", "missing"),
    ]
    assert found[0].describe() == "inner.size = 0: Input should be greater than 0"


def test_a_model_validators_problem_has_no_key() -> None:
    (problem,) = problems(caught(Outer, {"inner": {"size": 1}, "name": "long"}))
    assert problem.key == ""
    assert problem.describe() == (
        "<top level> = {'inner': {'size': 1}, 'name': 'long'}: Value error, name is too long"
    )


def test_params_errors_name_each_key(default_params: Any) -> None:
    raw = default_params.model_dump(mode="json", by_alias=True)
    raw["split"] = {"test_size": 2.0, "sead": 1}
    del raw["train"]
    with pytest.raises(ConfigError) as error:
        parse_params(raw, "my.yaml")
    assert str(error.value) == "\n".join(
        [
            "my.yaml: 3 invalid setting(s)",
            "  split.test_size = 2.0: Input should be less than 1",
            "  split.sead: unknown key (value 1); check the spelling",
            "  train: required key is missing",
        ]
    )


def test_settings_errors_name_the_variable() -> None:
    environ = {"TABML_PORT": "-1", "TABML_WORKERS": "many"}
    with pytest.raises(SettingsError) as error:
        load_settings(environ)
    assert str(error.value) == (
        "TABML_PORT = '-1': Input should be greater than or equal to 0; "
        "TABML_WORKERS = 'many': Input should be a valid integer, unable to parse string "
        "as an integer"
    )


def test_metadata_errors_name_each_field(tmp_path: Path) -> None:
    metadata = {
        "model": {"name": "m", "version": ""},
        "data": {},
        "features": [{"name": "x", "dtype": "text", "onnx_type": "float32"}],
        "target": {"name": "y", "classes": ["a"]},
    }
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(metadata))
    with pytest.raises(ModelLoadError) as error:
        OnnxModel.load(tmp_path / "model.onnx", path)
    assert str(error.value) == (
        f"{path}: model.version: String should have at least 1 character; "
        "features.0.dtype: Input should be 'float', 'int' or 'category'; "
        "target.classes: List should have at least 2 items after validation, not 1"
    )


def test_a_bad_gate_on_the_base_branch_names_key_value_and_rule(
    tmp_path: Path, repo_root: Path, default_params: Any
) -> None:
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["gate"] = {"metrics": {"f1": {"direction": "up"}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "metrics.json").write_text(json.dumps({"f1": 0.9}))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t.invalid"}
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        run_tool(["git", *command], cwd=tmp_path, env=env)
    sources = ReportSources(
        root=tmp_path,
        base="main",
        new_ref="work",
        params=default_params,
        params_path="params.yaml",
        metrics_path="metrics.json",
        roc_path="roc.json",
        artifact_url=None,
    )
    with pytest.raises(InputError) as error:
        build_report(sources)
    assert str(error.value) == (
        "main:params.yaml: gate section is invalid: "
        "gate.metrics.f1.direction = 'up': Input should be 'higher' or 'lower'"
    )


def test_the_module_imports_nothing_heavy_and_nothing_from_training() -> None:
    code = (
        "import re, sys, tabml.validation; "
        "print(sorted(m for m in sys.modules "
        "if re.match(r'(tabml|sklearn|pandas|numpy)\\b', m)))"
    )
    shown = run_tool([sys.executable, "-c", code])
    assert re.findall(r"'([\w.]+)'", shown.stdout) == ["tabml", "tabml.validation"]
