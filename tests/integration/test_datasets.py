"""Genericity: another real dataset, from a CSV or Parquet file, by changing params.yaml only."""

from __future__ import annotations

import json

import pytest

from tabml.stages.ingest import bundled_frame

from .project import STAGES, Project

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("dataset", "suffix", "duplicates"),
    # Iris holds two identical flowers (rows 102 and 143): real data, allowed by a param.
    [("wine", "csv", False), ("iris", "parquet", True)],
)
def test_multiclass_dataset_from_a_dvc_tracked_file(
    fresh: Project, dataset: str, suffix: str, duplicates: bool
) -> None:
    # The user's own file, with other columns, another label and three classes.
    path = f"data/external/{dataset}.{suffix}"
    frame = bundled_frame(dataset)
    if suffix == "csv":
        frame.to_csv(fresh.path / path, index=False)
    else:
        frame.to_parquet(fresh.path / path, index=False)
    fresh.dvc("add", path)
    assert (fresh.path / f"{path}.dvc").is_file()

    feature = next(c for c in frame.columns if c not in {"cultivar", "species"})
    fresh.set_params(
        data={"source": "file", "path": path, "sklearn_dataset": None},
        validate={"schema": f"schemas/{dataset}.yaml", "allow_duplicate_rows": duplicates},
        # The model card's slices and sensitive attribute name columns of the data too.
        model_card={
            "slices": [feature],
            "sensitive_attribute": feature,
            "intended_use": f"Classify {dataset} samples.",
        },
    )
    assert fresh.repro() == STAGES

    metadata = json.loads((fresh.path / "models/metadata.json").read_text())
    assert len(metadata["target"]["classes"]) == 3
    assert [f["name"] for f in metadata["features"]] == [
        c for c in frame.columns if c not in {"cultivar", "species"}
    ]
    metrics = json.loads((fresh.path / "metrics/metrics.json").read_text())
    assert metrics["accuracy"] > 0.85
    assert metrics["roc_auc"] > 0.95
    assert metadata["data"]["version"] == fresh.lock_md5("data/raw/dataset.csv")
    card = (fresh.path / "models/model_card.md").read_text()
    assert f"Classify {dataset} samples." in card
    assert f"Across groups of `{feature}`" in card
