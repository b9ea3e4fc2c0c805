"""Bad data stops the pipeline at validate; the previous model survives and is restored."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tabml.config import DataSchema, NumericFeature

from .project import Project

pytestmark = pytest.mark.slow


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def rewrite(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def numeric_feature(schema: DataSchema) -> tuple[str, NumericFeature]:
    """The first numeric feature with both bounds: the column the cases break."""
    for name, spec in schema.features.items():
        if isinstance(spec, NumericFeature) and spec.min is not None and spec.max is not None:
            return name, spec
    raise AssertionError("the schema has no numeric feature with a range")


def bad_cases(
    schema: DataSchema, rows: int
) -> dict[str, tuple[Callable[[pd.DataFrame], str], str]]:
    """Each kind of bad data, made from the project's own data and schema, with the
    message validate must give for it."""
    column, spec = numeric_feature(schema)
    assert spec.min is not None and spec.max is not None
    target, classes = schema.target.name, schema.target.classes
    dtype = "float64" if spec.dtype == "float" else "int64"
    typo = classes[0] + "h"
    below = spec.min - 100.0
    header_at = min(300, rows // 2)

    def missing_column(frame: pd.DataFrame) -> str:
        return rewrite(frame.drop(columns=column))

    def wrong_dtype(frame: pd.DataFrame) -> str:
        bad = frame.astype({column: object})
        bad.loc[10, column] = "twelve"
        return rewrite(bad)

    def nan_label(frame: pd.DataFrame) -> str:
        bad = frame.copy()
        bad.loc[[3, 4], target] = None
        return rewrite(bad)

    def unknown_label(frame: pd.DataFrame) -> str:
        bad = frame.copy()
        bad.loc[7, target] = typo
        return rewrite(bad)

    def out_of_range(frame: pd.DataFrame) -> str:
        bad = frame.astype({column: "float64"})
        bad.loc[20, column] = below
        return rewrite(bad)

    def empty_file(frame: pd.DataFrame) -> str:
        return ""

    def duplicated_header(frame: pd.DataFrame) -> str:
        lines = rewrite(frame).splitlines(keepends=True)
        return "".join([*lines[:header_at], lines[0], *lines[header_at:]])

    return {
        "missing column": (missing_column, f"column '{column}', rule column_in_dataframe"),
        "wrong dtype": (
            wrong_dtype,
            f"column '{column}', rule coerce_dtype('{dtype}'): 1 bad row(s), "
            "e.g. line 12: 'twelve'",
        ),
        "nan label": (nan_label, f"column '{target}', rule not_nullable: 2 bad row(s)"),
        "unknown label": (
            unknown_label,
            f"column '{target}', rule isin({classes!r}): 1 bad row(s), e.g. line 9: {typo!r}",
        ),
        "out of range": (
            out_of_range,
            f"column '{column}', rule in_range({spec.min!r}, {spec.max!r}): 1 bad row(s), "
            f"e.g. line 22: {below!r}",
        ),
        "empty file": (empty_file, "rule file_not_empty"),
        "duplicated header": (
            duplicated_header,
            f"rule header_not_repeated_in_data: 1 bad row(s), e.g. line {header_at + 1}",
        ),
    }


CASES = [
    "missing column",
    "wrong dtype",
    "nan label",
    "unknown label",
    "out of range",
    "empty file",
    "duplicated header",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_data_fails_at_validate_and_the_model_is_kept(trained: Project, case: str) -> None:
    make_bad, expected = bad_cases(trained.schema(), trained.raw_rows())[case]
    model, onnx = trained.path / "models/model.joblib", trained.path / "models/model.onnx"
    model_hash, onnx_hash = md5(model), md5(onnx)
    good = pd.read_csv(trained.path / "data/raw/dataset.csv")
    (trained.path / "data/external/incoming.csv").write_text(make_bad(good))
    trained.set_params(data={"source": "file", "path": "data/external/incoming.csv"})

    result = trained.dvc("repro", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "failed to reproduce 'validate'" in output
    assert expected in output
    assert "Running stage 'split'" not in output
    report = json.loads((trained.path / "reports/validation.json").read_text())
    assert report["passed"] is False
    # The pipeline stopped before training: the model in the workspace is untouched.
    assert (md5(model), md5(onnx)) == (model_hash, onnx_hash)

    # And should it be lost, the previous version comes back from the DVC cache.
    model.unlink()
    onnx.unlink()
    trained.git("checkout", "--", "params.yaml", "reports/validation.json")
    trained.dvc("checkout")
    assert (md5(model), md5(onnx)) == (model_hash, onnx_hash)
    assert md5(trained.path / "data/raw/dataset.csv") == trained.lock_md5("data/raw/dataset.csv")
