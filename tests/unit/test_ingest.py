"""ingest: bundled datasets with clean names; user files reach validate untouched."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabml.config import DataParams
from tabml.errors import PipelineError
from tabml.stages.ingest import (
    BUNDLED,
    BUNDLED_TARGETS,
    bundled_frame,
    ingest,
    snake_case,
    write_bundled,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mean radius", "mean_radius"),
        ("sepal length (cm)", "sepal_length_cm"),
        ("OD280/OD315 of diluted wines", "od280_od315_of_diluted_wines"),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


@pytest.mark.parametrize(
    ("name", "rows", "classes"),
    [
        ("breast_cancer", 569, {"benign", "malignant"}),
        ("wine", 178, {"class_0", "class_1", "class_2"}),
        ("iris", 150, {"setosa", "versicolor", "virginica"}),
    ],
)
def test_bundled_frames_have_named_labels(name: str, rows: int, classes: set[str]) -> None:
    frame = bundled_frame(name)
    target = BUNDLED_TARGETS[name]
    assert len(frame) == rows
    assert set(frame[target]) == classes
    assert all(column == snake_case(column) for column in frame.columns)


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_frames_are_scikit_learns_datasets(name: str) -> None:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    assert BUNDLED[name].features == tuple(bunch.feature_names)
    expected = bunch.data.rename(columns=snake_case)
    expected[BUNDLED_TARGETS[name]] = [str(bunch.target_names[i]) for i in bunch.target]
    pd.testing.assert_frame_equal(bundled_frame(name), expected, check_exact=True)


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_csv_is_what_pandas_writes_for_the_frame(tmp_path: Path, name: str) -> None:
    write_bundled(name, tmp_path / "raw.csv")
    written = bundled_frame(name).to_csv(index=False, lineterminator="\n")
    assert (tmp_path / "raw.csv").read_text(encoding="utf-8") == written


def test_bundled_source_writes_csv(tmp_path: Path) -> None:
    out = tmp_path / "raw" / "dataset.csv"
    ingest(DataParams(source="sklearn", sklearn_dataset="iris"), tmp_path, out)
    frame = pd.read_csv(out)
    assert frame.shape == (150, 5)
    assert frame["species"].iloc[0] == "setosa"


def test_csv_source_is_copied_byte_for_byte(tmp_path: Path) -> None:
    source = tmp_path / "data" / "mine.csv"
    source.parent.mkdir()
    # Problems (a bad value, a repeated header, no final newline) must survive ingest.
    source.write_bytes(b"a,b,label\n1,x,yes\na,b,label\n2,3,no")
    out = tmp_path / "raw.csv"
    ingest(DataParams(source="file", path="data/mine.csv"), tmp_path, out)
    assert out.read_bytes() == source.read_bytes()


def test_parquet_source_becomes_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [0.1, 1e-12, 12345.678901234], "label": ["a", "b", "a"]})
    frame.to_parquet(tmp_path / "mine.parquet")
    out = tmp_path / "raw.csv"
    ingest(DataParams(source="file", path="mine.parquet"), tmp_path, out)
    pd.testing.assert_frame_equal(pd.read_csv(out), frame, check_dtype=False)


def test_missing_file_says_how_to_add_it(tmp_path: Path) -> None:
    with pytest.raises(
        PipelineError,
        match=r"data.path = 'data/external/x.csv': no such file.*"
        r"dvc add data/external/x.csv",
    ):
        ingest(DataParams(source="file", path="data/external/x.csv"), tmp_path, tmp_path / "o.csv")
