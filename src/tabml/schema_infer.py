"""A first data schema inferred from a dataset, for a person to review and tighten."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import yaml
from pandas.api import types as ptypes

from tabml.config import DataSchema, parse_schema

# Categorical columns with more distinct values than this are listed as allowed values
# all the same; past it a person should ask whether the column is an identifier.
MAX_CATEGORIES = 50
# The top of a schema file written by init and by infer-schema; `command` wrote it.
SCHEMA_FILE_HEADER = """\
# Data schema inferred by `{command}` from {source}.
# Review it: tighten the ranges, list the labels you expect, set null allowances.
"""


def _round_out(value: float, up: bool) -> float:
    """Round away from the data to 2 significant digits, so the bound has headroom."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    scale = 10 ** (math.floor(math.log10(abs(value))) - 1)
    rounded = (math.ceil if up else math.floor)(value / scale) * scale
    return float(f"{rounded:.6g}")


def infer_feature(column: pd.Series) -> dict[str, Any]:
    null_fraction = float(column.isna().mean())
    allowance = 0.0 if null_fraction == 0 else min(1.0, round(null_fraction * 2 + 0.01, 2))
    values = column.dropna()
    if ptypes.is_bool_dtype(column) or not ptypes.is_numeric_dtype(column):
        allowed = sorted({str(v) for v in values})
        return {"dtype": "category", "allowed": allowed, "max_null_fraction": allowance}
    low, high = float(values.min()), float(values.max())
    span = high - low or abs(high) or 1.0
    lower = 0.0 if low >= 0 and low - span / 2 < 0 else _round_out(low - span / 2, up=False)
    spec: dict[str, Any] = {
        "dtype": "int" if ptypes.is_integer_dtype(column) else "float",
        "min": lower,
        "max": _round_out(high + span / 2, up=True),
        "max_null_fraction": allowance,
    }
    return spec


def infer_schema(frame: pd.DataFrame, target: str) -> DataSchema:
    """Columns, dtypes, ranges with headroom, allowed labels and null allowances."""
    if target not in frame.columns:
        raise KeyError(
            f"target column {target!r} is not in the data; columns: "
            f"{[str(c) for c in frame.columns]}"
        )
    classes = sorted({str(v) for v in frame[target].dropna()})
    features = {str(name): infer_feature(frame[name]) for name in frame.columns if name != target}
    return parse_schema(
        {"target": {"name": target, "classes": classes}, "features": features},
        source="inferred schema",
    )


def schema_file_text(schema: DataSchema, *, command: str, source: str) -> str:
    """`schema` as a YAML file to review, under a header naming the command that
    inferred it and the data (`source`) it was inferred from."""
    body = yaml.safe_dump(schema.model_dump(mode="json"), sort_keys=False)
    return SCHEMA_FILE_HEADER.format(command=command, source=source) + body
