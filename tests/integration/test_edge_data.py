"""Data at the edges of what validate allows: every later stage succeeds, or stops with
one clear message and exit status 2, never a Python traceback.

The cases are made from the bundled data: exactly `validate.min_rows` rows, a class at
exactly `validate.min_rows_per_class` rows, a feature that is empty in every row its
schema allows to be (max_null_fraction 1.0), and a feature with one value throughout.
Each runs the pipeline's own commands (dvc.yaml) from validate on, then the drift check
and the pull-request report.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tabml.config import DataSchema, NumericFeature

from .project import BIN, Project, commit_template, copy_project

pytestmark = pytest.mark.slow

# The stages after ingest, in dvc.yaml's order: ingest is replaced by writing the case.
STAGES = ("validate", "split", "train", "evaluate", "export", "model_card")
EdgeCase = Callable[[pd.DataFrame, DataSchema, dict[str, object]], tuple[pd.DataFrame, dict]]


def numeric_features(schema: DataSchema) -> list[str]:
    return [name for name, spec in schema.features.items() if isinstance(spec, NumericFeature)]


def smallest_allowed(frame: pd.DataFrame, schema: DataSchema, rules: dict) -> tuple:
    """Exactly min_rows rows, each class as rare as allowed and the rest of the first."""
    target, rare = schema.target.name, schema.target.classes[-1]
    per_class = int(rules["min_rows_per_class"])
    rows = int(rules["min_rows"])
    kept = pd.concat(
        [
            frame[frame[target] == rare].head(per_class),
            frame[frame[target] != rare].head(rows - per_class),
        ]
    )
    assert len(kept) == rows
    return kept, {}


def rarest_class(frame: pd.DataFrame, schema: DataSchema, rules: dict) -> tuple:
    target, rare = schema.target.name, schema.target.classes[-1]
    per_class = int(rules["min_rows_per_class"])
    kept = pd.concat([frame[frame[target] != rare], frame[frame[target] == rare].head(per_class)])
    return kept, {}


def empty_feature(frame: pd.DataFrame, schema: DataSchema, rules: dict) -> tuple:
    """A feature whose schema allows it to be missing everywhere, and is."""
    name = numeric_features(schema)[0]
    return frame.assign(**{name: np.nan}), {name: {"max_null_fraction": 1.0}}


def half_empty_feature(frame: pd.DataFrame, schema: DataSchema, rules: dict) -> tuple:
    name = numeric_features(schema)[1]
    blanked = frame.copy()
    blanked.loc[blanked.index[: len(frame) // 2], name] = np.nan
    return blanked, {name: {"max_null_fraction": 0.5}}


def constant_feature(frame: pd.DataFrame, schema: DataSchema, rules: dict) -> tuple:
    name = numeric_features(schema)[0]
    spec = schema.features[name]
    assert isinstance(spec, NumericFeature) and spec.min is not None
    return frame.assign(**{name: spec.min}), {}


CASES: dict[str, EdgeCase] = {
    "smallest_allowed_table": smallest_allowed,
    "rarest_allowed_class": rarest_class,
    "feature_empty_in_every_row": empty_feature,
    "feature_empty_in_half_the_rows": half_empty_feature,
    "constant_feature": constant_feature,
}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The template with its bundled data ingested, and fewer bootstrap samples."""
    project = commit_template(tmp_path_factory.mktemp("edge") / "project")
    project.set_params(model_card={"bootstrap_samples": 50})
    stage_command(project, "ingest")
    return project


def stage_command(project: Project, stage: str) -> subprocess.CompletedProcess[str]:
    command = yaml.safe_load((project.path / "dvc.yaml").read_text())["stages"][stage]["cmd"]
    return tabml(project, *shlex.split(command)[1:])


def tabml(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return project.run(str(BIN / "tabml"), *args, check=False)


def assert_clean_outcome(result: subprocess.CompletedProcess[str], step: str) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, f"{step} ended in a traceback:\n{output}"
    assert result.returncode in (0, 2), f"{step} exited {result.returncode}:\n{output}"
    if result.returncode == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and ": error: " in lines[0], (
            f"{step}: not one clear message:\n{output}"
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_stage_succeeds_or_says_why(ingested: Project, tmp_path: Path, case: str) -> None:
    project = copy_project(ingested, tmp_path / "project")
    params = project.read_params()
    rules = params["validate"]
    assert isinstance(rules, dict)
    schema_file = project.path / str(rules["schema"])
    schema_doc = yaml.safe_load(schema_file.read_text())
    schema = DataSchema.model_validate(schema_doc)
    raw = project.path / "data" / "raw" / "dataset.csv"
    frame, overrides = CASES[case](pd.read_csv(raw), schema, rules)
    frame.to_csv(raw, index=False)
    for name, changes in overrides.items():
        schema_doc["features"][name].update(changes)
    schema_file.write_text(yaml.safe_dump(schema_doc, sort_keys=False))

    result = stage_command(project, "validate")
    assert result.returncode == 0, f"{case} must be data validate allows:\n{result.stderr}"
    for stage in STAGES[1:]:
        result = stage_command(project, stage)
        assert_clean_outcome(result, f"{case}: {stage}")
        if result.returncode != 0:
            return

    sample = project.path / "sample.csv"
    frame.drop(columns=schema.target.name).head(60).to_csv(sample, index=False)
    drift = tabml(
        project,
        "drift",
        "--sample",
        str(sample),
        "--json-out",
        "reports/drift.json",
        "--html-out",
        "reports/drift.html",
    )
    assert_clean_outcome(drift, f"{case}: drift")
    report = tabml(project, "report", "--base", "HEAD", "--out", "report.md", "--summary", "s.json")
    assert report.returncode in (0, 1), f"{case}: report:\n{report.stdout}{report.stderr}"
    assert "Traceback" not in report.stdout + report.stderr
