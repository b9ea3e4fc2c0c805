"""ingest: materialise the raw dataset, as CSV, from the source that params.yaml names.

The raw CSV is kept exactly as the source had it (a CSV source is copied byte for
byte, its data.delimiter included, which validate reads it with) so that every problem
in the data reaches the validate stage intact. Other sources are written comma-separated.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tabml.config import DataParams
from tabml.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class BundledDataset:
    """A dataset shipped inside scikit-learn: its file in sklearn/datasets/data and the
    feature names its `sklearn.datasets.load_<name>` gives the file's columns."""

    file: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class BundledTable:
    columns: list[str]
    values: list[list[float]]
    labels: list[str]


_BREAST_CANCER_MEASURES = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)
# The files are read here, not through sklearn.datasets: importing scikit-learn costs
# about a second of CPU, most of this stage's run. The feature names are
# scikit-learn's; a test holds them and the values to its loaders'.
BUNDLED = {
    "breast_cancer": BundledDataset(
        "breast_cancer.csv",
        (
            *(f"mean {m}" for m in _BREAST_CANCER_MEASURES),
            *(f"{m} error" for m in _BREAST_CANCER_MEASURES),
            *(f"worst {m}" for m in _BREAST_CANCER_MEASURES),
        ),
    ),
    "wine": BundledDataset(
        "wine_data.csv",
        (
            "alcohol",
            "malic_acid",
            "ash",
            "alcalinity_of_ash",
            "magnesium",
            "total_phenols",
            "flavanoids",
            "nonflavanoid_phenols",
            "proanthocyanins",
            "color_intensity",
            "hue",
            "od280/od315_of_diluted_wines",
            "proline",
        ),
    ),
    "iris": BundledDataset(
        "iris.csv",
        ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"),
    ),
}
# The label column each bundled dataset gets, named for what it holds.
BUNDLED_TARGETS = {"breast_cancer": "diagnosis", "wine": "cultivar", "iris": "species"}


def snake_case(name: str) -> str:
    """'mean radius' -> 'mean_radius', 'sepal length (cm)' -> 'sepal_length_cm'."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def bundled_file(name: str) -> Path:
    """Where the installed scikit-learn keeps dataset `name`, found without importing it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"data.sklearn_dataset = {name!r}: scikit-learn is not installed")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / BUNDLED[name].file


def bundled_table(name: str) -> BundledTable:
    """Dataset `name` with snake_case columns and named labels, read as scikit-learn's
    loader reads it: a header of row count, feature count and class names, then rows of
    feature values and a class index."""
    dataset = BUNDLED[name]
    with bundled_file(name).open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        n_rows, n_features, *class_names = next(reader)
        rows = [next(reader) for _ in range(int(n_rows))]
    width = int(n_features)
    return BundledTable(
        columns=[*map(snake_case, dataset.features), BUNDLED_TARGETS[name]],
        values=[[float(value) for value in row[:width]] for row in rows],
        labels=[class_names[int(row[width])] for row in rows],
    )


def bundled_frame(name: str) -> pd.DataFrame:
    """A dataset shipped inside scikit-learn, with snake_case columns and named labels."""
    import numpy as np
    import pandas as pd

    table = bundled_table(name)
    *features, target = table.columns
    frame = pd.DataFrame(np.asarray(table.values, dtype=np.float64), columns=features)
    frame[target] = table.labels
    return frame


def write_bundled(name: str, out: Path) -> None:
    """The CSV that pandas' `to_csv(index=False)` writes for `bundled_frame(name)`:
    floats in their shortest round-trip form."""
    table = bundled_table(name)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(table.columns)
        for values, label in zip(table.values, table.labels, strict=True):
            writer.writerow([*map(repr, values), label])


def ingest(data: DataParams, root: Path, out: Path) -> None:
    """Write the raw dataset named by `data` to the CSV file `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if data.source == "sklearn":
        assert data.sklearn_dataset is not None  # enforced by DataParams
        write_bundled(data.sklearn_dataset, out)
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
        import pandas as pd

        pd.read_parquet(source).to_csv(out, index=False, lineterminator="\n")
