"""ingest: materialise the raw dataset, as CSV, from the source that params.yaml names.

The raw CSV is kept exactly as the source had it (a CSV source is copied byte for
byte, its data.delimiter included, which validate reads it with) so that every problem
in the data reaches the validate stage intact. Other sources are written comma-separated.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd

from tabml.config import DataParams
from tabml.errors import InputError

# The label column each bundled dataset gets, named for what it holds.
BUNDLED_TARGETS = {"breast_cancer": "diagnosis", "wine": "cultivar", "iris": "species"}


def snake_case(name: str) -> str:
    """'mean radius' -> 'mean_radius', 'sepal length (cm)' -> 'sepal_length_cm'."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def bundled_frame(name: str) -> pd.DataFrame:
    """A dataset shipped inside scikit-learn, with snake_case columns and named labels."""
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    bunch = loader(as_frame=True)
    frame: pd.DataFrame = bunch.data.rename(columns=snake_case)
    frame[BUNDLED_TARGETS[name]] = [str(bunch.target_names[i]) for i in bunch.target]
    return frame


def ingest(data: DataParams, root: Path, out: Path) -> None:
    """Write the raw dataset named by `data` to the CSV file `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if data.source == "sklearn":
        assert data.sklearn_dataset is not None  # enforced by DataParams
        bundled_frame(data.sklearn_dataset).to_csv(out, index=False, lineterminator="\n")
        return
    assert data.path is not None  # enforced by DataParams
    source = root / data.path
    if not source.is_file():
        raise InputError(
            f"data.path = {data.path!r}: no such file; add it with `dvc add {data.path}` "
            "or `dvc import-url URL {data.path}`"
        )
    if source.suffix.lower() == ".csv":
        shutil.copyfile(source, out)
    else:
        pd.read_parquet(source).to_csv(out, index=False, lineterminator="\n")
