"""export: publish the ONNX graph train converted, as models/model.onnx, with its metadata.

The graph takes every numeric feature in one float32 input, `numeric_features`
([rows, numeric features], columns in schema order, also named in the model's own
metadata), and each categorical feature as a [rows, 1] string input; it returns
`label` and `probabilities`, whose columns follow `target.classes` in the metadata file.
evaluate has checked it against the scikit-learn pipeline on the test set (its parity
report, within `export.parity_tolerance`); this stage records that check, so it
neither loads the pipeline nor imports scikit-learn.

The metadata is a function of the stage's declared inputs only (graph, parity report,
data, params, metrics and the pinned libraries), never of the commit, the clock or the
machine: the same inputs give the same bytes, hence the same dvc.lock, on any commit.
The commit a released model was built from is the image's
`org.opencontainers.image.revision`.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from tabml import DISTRIBUTION
from tabml.config import DataSchema, Params
from tabml.contract import LABEL_OUTPUT, PROBABILITIES_OUTPUT
from tabml.errors import PipelineError
from tabml.parity_report import graph_md5, read_report

# Installed distributions whose versions metadata.json records, by distribution name:
# this project's own is DISTRIBUTION, which need not be its import name.
RECORDED_DISTRIBUTIONS = (DISTRIBUTION, "scikit-learn", "skl2onnx", "onnx", "onnxruntime")


def file_md5(path: Path) -> str:
    """The hash DVC 3 records for a file in dvc.lock (md5 of its bytes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def label_counts(path: Path, target: str) -> dict[str, int]:
    """Rows per label in the Parquet file `path`'s column `target`, each label as text
    (as the pipeline's `classes_` are). Read with pyarrow alone: export imports no pandas."""
    column = pq.ParquetFile(path).read(columns=[target], use_pandas_metadata=False).column(0)
    counts: dict[str, int] = {}
    for item in pc.value_counts(column).to_pylist():
        label = str(item["values"])
        counts[label] = counts.get(label, 0) + int(item["counts"])
    return counts


def training_class_ratio(
    all_counts: dict[str, int], test_counts: dict[str, int], classes: list[str]
) -> dict[str, float]:
    """Share of each class among the training rows: the split is a partition of the
    validated data, so training's label counts are the whole's less the test set's.
    Serving exports these shares to hold the predicted class mix against."""
    counts = {label: count - test_counts.get(label, 0) for label, count in all_counts.items()}
    total = sum(counts.values())
    if total <= 0:
        raise PipelineError(
            f"export: no training rows ({sum(all_counts.values())} validated rows, "
            f"{sum(test_counts.values())} test rows); the class mix needs at least one"
        )
    return {label: round(counts.get(label, 0) / total, 6) for label in classes}


def build_metadata(
    *,
    onnx_bytes: bytes,
    schema: DataSchema,
    params: Params,
    metrics: dict[str, Any],
    parity: dict[str, Any],
    data_version: str,
    data_rows: int,
    class_ratio: dict[str, float],
) -> dict[str, Any]:
    """Everything serving and governance need to know about one exported model;
    `parity` is evaluate's report (`parity_report.read_report`) and `class_ratio` training's
    label mix (`training_class_ratio`)."""
    features = []
    for name, spec in schema.features.items():
        entry = {"name": name, **spec.model_dump(mode="json")}
        entry["onnx_type"] = "string" if name in schema.categorical_features else "float32"
        features.append(entry)
    return {
        "model": {
            "name": params.export.model_name,
            # The graph's md5, as the parity report names the graph it checked.
            "version": graph_md5(onnx_bytes),
            "format": "onnx",
            "file": "model.onnx",
            "estimator": params.train.estimator,
            "hyperparameters": params.train.hyperparameters(),
            "outputs": {"label": LABEL_OUTPUT, "probabilities": PROBABILITIES_OUTPUT},
            "opset": params.export.target_opset,
        },
        "data": {"version": data_version, "rows": data_rows},
        "features": features,
        "target": {
            "name": schema.target.name,
            "classes": [str(c) for c in parity["classes"]],
            "training_class_ratio": class_ratio,
        },
        "params": params.model_settings(),
        "metrics": metrics,
        "parity": {
            key: parity[key] for key in ("rows", "max_abs_diff", "labels_equal", "tolerance")
        },
        "libraries": {name: version(name) for name in RECORDED_DISTRIBUTIONS},
    }


def run(
    *,
    graph_path: Path,
    parity_path: Path,
    test_path: Path,
    raw_path: Path,
    validated_path: Path,
    metrics_path: Path,
    schema: DataSchema,
    params: Params,
    onnx_out: Path,
    metadata_out: Path,
) -> dict[str, Any]:
    onnx_bytes = graph_path.read_bytes()
    target = schema.target.name
    test_counts = label_counts(test_path, target)
    parity = read_report(
        parity_path,
        graph=onnx_bytes,
        test_rows=sum(test_counts.values()),
        tolerance=params.export.parity_tolerance,
        schema_classes=[str(c) for c in schema.target.classes],
    )
    class_ratio = training_class_ratio(
        label_counts(validated_path, target),
        test_counts,
        [str(c) for c in parity["classes"]],
    )
    metadata = build_metadata(
        onnx_bytes=onnx_bytes,
        schema=schema,
        params=params,
        metrics=json.loads(metrics_path.read_text(encoding="utf-8")),
        parity=parity,
        data_version=file_md5(raw_path),
        data_rows=pq.ParquetFile(validated_path).metadata.num_rows,
        class_ratio=class_ratio,
    )
    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    onnx_out.write_bytes(onnx_bytes)
    metadata_out.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata
