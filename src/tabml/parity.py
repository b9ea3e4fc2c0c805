"""Parity: the ONNX graph serving runs answers as the fitted scikit-learn pipeline does.

evaluate runs the check on the test set, where its metrics are measured, so those
metrics describe the served graph too; it fails when the probabilities differ by more
than `export.parity_tolerance` on any test row, so a model that would serve different
answers is never published. Its report (tabml.parity_report) is what export checks
and records in the metadata.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from numpy.typing import NDArray

from tabml.config import DataSchema
from tabml.contract import LABEL_OUTPUT, NUMERIC_INPUT, PROBABILITIES_OUTPUT
from tabml.parity_report import Parity, ParityError, significant, within
from tabml.stages.train import model_input

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def onnx_feed(features: pd.DataFrame, schema: DataSchema) -> dict[str, NDArray[Any]]:
    """The feed the graph takes, from model input (`model_input`): the numeric features
    as one [rows, n] float32 array, and one [rows, 1] string array per categorical
    feature."""
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
    """The graph's labels and probabilities for `frame`'s rows."""
    return _run_graph(onnx_bytes, onnx_feed(model_input(frame, schema), schema))


def _run_graph(
    onnx_bytes: bytes, feed: dict[str, NDArray[Any]]
) -> tuple[NDArray[Any], NDArray[np.float32]]:
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    labels, proba = session.run([LABEL_OUTPUT, PROBABILITIES_OUTPUT], feed)
    return np.asarray(labels), np.asarray(proba)


def check_parity(
    onnx_bytes: bytes, model: Pipeline, frame: pd.DataFrame, schema: DataSchema, tolerance: float
) -> Parity:
    """The graph against the pipeline on `frame`'s rows; ParityError above `tolerance`."""
    features = model_input(frame, schema)
    expected = model.predict_proba(features)
    return check_scored_parity(onnx_bytes, model, features, expected, schema, tolerance)


def check_scored_parity(
    onnx_bytes: bytes,
    model: Pipeline,
    features: pd.DataFrame,
    expected: NDArray[np.float64],
    schema: DataSchema,
    tolerance: float,
) -> Parity:
    """`check_parity` for rows already turned into model input (`features`) and scored by
    the pipeline (`expected`, its predict_proba of them), as evaluate has them."""
    labels, proba = _run_graph(onnx_bytes, onnx_feed(features, schema))
    diff = np.abs(proba.astype(np.float64) - expected)
    worst = int(diff.max(axis=1).argmax())
    parity = Parity(
        rows=len(features),
        max_abs_diff=significant(float(diff.max())),
        worst_row=worst,
        labels_equal=bool((labels.astype(str) == model.predict(features).astype(str)).all()),
    )
    if not within(parity.max_abs_diff, tolerance):
        raise ParityError(
            f"ONNX and scikit-learn probabilities differ by {parity.max_abs_diff:g} on test "
            f"row {worst}, above export.parity_tolerance = {tolerance:g}"
        )
    return parity
