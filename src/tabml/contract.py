"""The contract between the exported ONNX graph and serving: how the graph (converted in
onnx_graph.py) takes its inputs and names its outputs, and how a missing category
reaches it.

Both sides import it; it imports nothing, so serving shares it without importing the
training code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

# What serving and batch scoring do with a numeric value outside its feature's schema
# range: refuse it ("reject"), or predict and count it ("count"): TABML_OUT_OF_RANGE and
# params.yaml's score.out_of_range.
OutOfRange = Literal["reject", "count"]
# The graph returns the predicted class as LABEL_OUTPUT and the class probabilities as
# PROBABILITIES_OUTPUT, [rows, classes], columns in metadata.json's `target.classes`.
LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
# The graph takes every numeric feature in one float tensor, [rows, numeric features], with
# columns in metadata order (named again in the model's metadata under NUMERIC_COLUMNS_KEY),
# and each categorical feature as a [rows, 1] string tensor of its own.
NUMERIC_INPUT = "numeric_features"
NUMERIC_COLUMNS_KEY = "numeric_feature_columns"
# Categorical gaps are empty strings, not NaN, in what the model sees: the ONNX
# converter only imputes string columns whose missing marker is itself a string.
MISSING_CATEGORY = ""


def encode_numeric_columns(names: Sequence[str]) -> str:
    """The value of NUMERIC_COLUMNS_KEY in the model's metadata: the columns of
    NUMERIC_INPUT, in order."""
    return json.dumps(list(names))


def decode_numeric_columns(stored: str | None) -> Any:
    """The columns of NUMERIC_INPUT as the model's metadata names them (a list of
    names, unless the graph was built otherwise); None when it names none, or not as
    JSON."""
    if stored is None:
        return None
    try:
        return json.loads(stored)
    except ValueError:
        return None
