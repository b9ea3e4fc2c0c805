"""Bad data stops the pipeline at validate; the previous model survives and is restored."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from .project import Project

pytestmark = pytest.mark.slow


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def rewrite(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def missing_column(frame: pd.DataFrame) -> str:
    return rewrite(frame.drop(columns="mean_radius"))


def wrong_dtype(frame: pd.DataFrame) -> str:
    bad = frame.astype({"mean_texture": object})
    bad.loc[10, "mean_texture"] = "twelve"
    return rewrite(bad)


def nan_label(frame: pd.DataFrame) -> str:
    bad = frame.copy()
    bad.loc[[3, 4], "diagnosis"] = None
    return rewrite(bad)


def unknown_label(frame: pd.DataFrame) -> str:
    bad = frame.copy()
    bad.loc[7, "diagnosis"] = "benighn"
    return rewrite(bad)


def out_of_range(frame: pd.DataFrame) -> str:
    bad = frame.copy()
    bad.loc[20, "mean_area"] = -100.0
    return rewrite(bad)


def empty_file(frame: pd.DataFrame) -> str:
    return ""


def duplicated_header(frame: pd.DataFrame) -> str:
    lines = rewrite(frame).splitlines(keepends=True)
    return "".join([*lines[:300], lines[0], *lines[300:]])


CASES: dict[str, tuple[Callable[[pd.DataFrame], str], str]] = {
    "missing column": (missing_column, "column 'mean_radius', rule column_in_dataframe"),
    "wrong dtype": (
        wrong_dtype,
        "column 'mean_texture', rule coerce_dtype('float64'): 1 bad row(s), e.g. line 12: 'twelve'",
    ),
    "nan label": (nan_label, "column 'diagnosis', rule not_nullable: 2 bad row(s)"),
    "unknown label": (
        unknown_label,
        "column 'diagnosis', rule isin(['benign', 'malignant']): 1 bad row(s), "
        "e.g. line 9: 'benighn'",
    ),
    "out of range": (
        out_of_range,
        "column 'mean_area', rule in_range(0.0, 3700.0): 1 bad row(s), e.g. line 22: -100.0",
    ),
    "empty file": (empty_file, "rule file_not_empty"),
    "duplicated header": (
        duplicated_header,
        "rule header_not_repeated_in_data: 1 bad row(s), e.g. line 301",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_fails_at_validate_and_the_model_is_kept(trained: Project, case: str) -> None:
    make_bad, expected = CASES[case]
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
