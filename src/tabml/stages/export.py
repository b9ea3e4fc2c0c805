"""export: the serving artefact as ONNX, checked against scikit-learn, plus its metadata.

The ONNX graph takes every numeric feature in one float32 input, `numeric_features`
([rows, numeric features], columns in schema order, also named in the model's own
metadata), and each categorical feature as a [rows, 1] string input; it returns
`label` and `probabilities`, whose
columns follow `target.classes` in the metadata file. The stage fails when ONNX and
scikit-learn probabilities differ by more than `export.parity_tolerance` on any
test row, so a model that would serve different answers is never published.

The metadata is a function of the stage's declared inputs only (model, data, params,
metrics and the pinned libraries), never of the commit, the clock or the machine: the
same inputs give the same bytes, hence the same dvc.lock, on any commit. The commit a
released model was built from is the image's `org.opencontainers.image.revision`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pyarrow.parquet as pq
from numpy.typing import NDArray
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from tabml import DISTRIBUTION
from tabml.config import DataSchema, ExportParams, Params
from tabml.contract import (
    LABEL_OUTPUT,
    NUMERIC_COLUMNS_KEY,
    NUMERIC_INPUT,
    PROBABILITIES_OUTPUT,
    encode_numeric_columns,
)
from tabml.errors import PipelineError
from tabml.stages.train import model_input

# Installed distributions whose versions metadata.json records, by distribution name:
# this project's own is DISTRIBUTION, which need not be its import name.
RECORDED_DISTRIBUTIONS = (DISTRIBUTION, "scikit-learn", "skl2onnx", "onnx", "onnxruntime")


class ParityError(PipelineError):
    """ONNX and scikit-learn disagree on the test set by more than the tolerance."""


@dataclass(frozen=True)
class Parity:
    rows: int
    max_abs_diff: float
    worst_row: int
    labels_equal: bool


def file_md5(path: Path) -> str:
    """The hash DVC 3 records for a file in dvc.lock (md5 of its bytes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def to_onnx(model: Pipeline, schema: DataSchema, params: ExportParams) -> bytes:
    initial_types: list[tuple[str, Any]] = [
        (name, FloatTensorType([None, 1])) for name in schema.numeric_features
    ] + [(name, StringTensorType([None, 1])) for name in schema.categorical_features]
    onnx_model = convert_sklearn(
        model,
        name=params.model_name,
        initial_types=initial_types,
        target_opset={"": params.target_opset, "ai.onnx.ml": 3},
        options={id(model.steps[-1][1]): {"zipmap": False}},
        final_types=None,
    )
    # skl2onnx collects opset domains in a set, whose order follows Python's per-process
    # string hashing; sorting them makes model.onnx byte-identical from run to run.
    opsets = sorted(onnx_model.opset_import, key=lambda opset: opset.domain)
    del onnx_model.opset_import[:]
    onnx_model.opset_import.extend(opsets)
    outputs = [output.name for output in onnx_model.graph.output]
    rename = dict(zip(outputs, [LABEL_OUTPUT, PROBABILITIES_OUTPUT], strict=True))
    for node in onnx_model.graph.node:
        node.output[:] = [rename.get(name, name) for name in node.output]
    for output in onnx_model.graph.output:
        output.name = rename[output.name]
    pack_numeric_inputs(onnx_model, schema.numeric_features)
    return bytes(onnx_model.SerializeToString())


def pack_numeric_inputs(model: onnx.ModelProto, names: list[str]) -> None:
    """Replace the graph's one-column float inputs `names` with one input, NUMERIC_INPUT,
    shaped [rows, len(names)], columns in that order.

    onnxruntime converts and checks every input on every call; with one input per
    feature that per-input cost, not the arithmetic, decides single-row latency.
    skl2onnx's first step for the numeric columns is a Concat of exactly these inputs,
    which becomes an Identity of the packed input; any other reader of a column gets it
    from a Split of the packed input.
    """
    if not names:
        return
    graph = model.graph
    columns = set(names)
    others = [item for item in graph.input if item.name not in columns]
    packed = onnx.helper.make_tensor_value_info(
        NUMERIC_INPUT, onnx.TensorProto.FLOAT, [None, len(names)]
    )
    del graph.input[:]
    graph.input.extend([packed, *others])
    for node in graph.node:
        axis = next((a.i for a in node.attribute if a.name == "axis"), None)
        if node.op_type == "Concat" and list(node.input) == names and axis in (1, -1):
            node.op_type = "Identity"
            del node.attribute[:]
            node.input[:] = [NUMERIC_INPUT]
    if any(name in columns for node in graph.node for name in node.input):
        opset = next(item.version for item in model.opset_import if item.domain in ("", "ai.onnx"))
        split = onnx.helper.make_node("Split", [NUMERIC_INPUT], names, axis=1)
        # Without sizes, Split cuts equal parts: one column each. Opset 18 wants the count.
        if opset >= 18:
            split.attribute.append(onnx.helper.make_attribute("num_outputs", len(names)))
        graph.node.insert(0, split)
    onnx.helper.set_model_props(model, {NUMERIC_COLUMNS_KEY: encode_numeric_columns(names)})


def onnx_inputs(frame: pd.DataFrame, schema: DataSchema) -> dict[str, NDArray[Any]]:
    """The feed the graph takes: the numeric features as one [rows, n] float32 array,
    and one [rows, 1] string array per categorical feature."""
    features = model_input(frame, schema)
    feed: dict[str, NDArray[Any]] = {}
    if schema.numeric_features:
        numeric = features[schema.numeric_features].to_numpy(dtype=np.float32)
        feed[NUMERIC_INPUT] = np.ascontiguousarray(numeric)
    for name in schema.categorical_features:
        feed[name] = features[name].to_numpy(dtype=str).reshape(-1, 1)
    return feed


def onnx_predict(
    onnx_bytes: bytes, frame: pd.DataFrame, schema: DataSchema
) -> tuple[NDArray[Any], NDArray[np.float32]]:
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    labels, proba = session.run([LABEL_OUTPUT, PROBABILITIES_OUTPUT], onnx_inputs(frame, schema))
    return np.asarray(labels), np.asarray(proba)


def check_parity(
    onnx_bytes: bytes, model: Pipeline, frame: pd.DataFrame, schema: DataSchema, tolerance: float
) -> Parity:
    features = model_input(frame, schema)
    expected = model.predict_proba(features)
    labels, proba = onnx_predict(onnx_bytes, features, schema)
    diff = np.abs(proba.astype(np.float64) - expected)
    worst = int(diff.max(axis=1).argmax())
    parity = Parity(
        rows=len(frame),
        max_abs_diff=float(diff.max()),
        worst_row=worst,
        labels_equal=bool((labels.astype(str) == model.predict(features).astype(str)).all()),
    )
    if parity.max_abs_diff > tolerance:
        raise ParityError(
            f"ONNX and scikit-learn probabilities differ by {parity.max_abs_diff:.3g} on test "
            f"row {worst}, above export.parity_tolerance = {tolerance:g}"
        )
    return parity


def training_class_ratio(
    all_labels: pd.Series, test_labels: pd.Series, classes: list[str]
) -> dict[str, float]:
    """Share of each class among the training rows: the split is a partition of the
    validated data, so training's label counts are the whole's less the test set's.
    Serving exports these shares to hold the predicted class mix against."""
    counts = (
        all_labels.astype(str)
        .value_counts()
        .sub(test_labels.astype(str).value_counts(), fill_value=0)
    )
    total = counts.sum()
    if total <= 0:
        raise PipelineError(
            f"export: no training rows ({len(all_labels)} validated rows, "
            f"{len(test_labels)} test rows); the class mix needs at least one"
        )
    return {label: round(float(counts.get(label, 0)) / float(total), 6) for label in classes}


def build_metadata(
    *,
    onnx_bytes: bytes,
    schema: DataSchema,
    params: Params,
    model: Pipeline,
    metrics: dict[str, Any],
    parity: Parity,
    data_version: str,
    data_rows: int,
    class_ratio: dict[str, float],
) -> dict[str, Any]:
    """Everything serving and governance need to know about one exported model;
    `class_ratio` is training's label mix (`training_class_ratio`)."""
    features = []
    for name, spec in schema.features.items():
        entry = {"name": name, **spec.model_dump(mode="json")}
        entry["onnx_type"] = "string" if name in schema.categorical_features else "float32"
        features.append(entry)
    return {
        "model": {
            "name": params.export.model_name,
            "version": hashlib.md5(onnx_bytes, usedforsecurity=False).hexdigest(),
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
            "classes": [str(c) for c in model.classes_],
            "training_class_ratio": class_ratio,
        },
        "params": params.model_settings(),
        "metrics": metrics,
        "parity": {
            "rows": parity.rows,
            "max_abs_diff": parity.max_abs_diff,
            "labels_equal": parity.labels_equal,
            "tolerance": params.export.parity_tolerance,
        },
        "libraries": {name: version(name) for name in RECORDED_DISTRIBUTIONS},
    }


def run(
    *,
    model_path: Path,
    test_path: Path,
    raw_path: Path,
    validated_path: Path,
    metrics_path: Path,
    schema: DataSchema,
    params: Params,
    onnx_out: Path,
    metadata_out: Path,
) -> dict[str, Any]:
    model: Pipeline = joblib.load(model_path)
    onnx_bytes = to_onnx(model, schema, params.export)
    test = pd.read_parquet(test_path)
    parity = check_parity(onnx_bytes, model, test, schema, params.export.parity_tolerance)
    data_rows = pq.ParquetFile(validated_path).metadata.num_rows
    target = schema.target.name
    class_ratio = training_class_ratio(
        pd.read_parquet(validated_path, columns=[target])[target],
        test[target],
        [str(c) for c in model.classes_],
    )
    metadata = build_metadata(
        onnx_bytes=onnx_bytes,
        schema=schema,
        params=params,
        model=model,
        metrics=json.loads(metrics_path.read_text(encoding="utf-8")),
        parity=parity,
        data_version=file_md5(raw_path),
        data_rows=data_rows,
        class_ratio=class_ratio,
    )
    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    onnx_out.write_bytes(onnx_bytes)
    metadata_out.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata
