"""infer_schema: a first schema that the data it came from passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from tabml.config import CategoricalFeature, NumericFeature, ValidateParams, parse_schema
from tabml.schema_infer import infer_schema, schema_file_text
from tabml.stages.validate import validate_frame


def test_inferred_schema_accepts_its_own_data(tiny_frame: pd.DataFrame) -> None:
    schema = infer_schema(tiny_frame, "label")
    assert schema.target.classes == ["no", "yes"]
    assert isinstance(schema.features["colour"], CategoricalFeature)
    assert schema.features["colour"].allowed == ["blue", "green", "red"]
    size = schema.features["size"]
    assert isinstance(size, NumericFeature)
    assert size.dtype == "float"
    assert size.min is not None and size.max is not None
    assert size.min <= tiny_frame["size"].min() and size.max >= tiny_frame["size"].max()
    assert schema.features["count"].dtype == "int"
    rules = ValidateParams(schema="unused", min_rows=10)
    assert validate_frame(tiny_frame, schema, rules)[1].passed


def test_negative_ranges_and_null_allowance() -> None:
    frame = pd.DataFrame({"t": [-40.5, -3.0, 12.0, np.nan], "y": ["a", "b", "a", "b"]})
    spec = infer_schema(frame, "y").features["t"]
    assert isinstance(spec, NumericFeature)
    assert spec.min is not None and spec.min < -40.5
    assert spec.max is not None and spec.max > 12.0
    assert spec.max_null_fraction == pytest.approx(0.51)


def test_missing_target_is_named() -> None:
    with pytest.raises(KeyError, match="target column 'label' is not in the data"):
        infer_schema(pd.DataFrame({"x": [1.0]}), "label")


def test_a_schema_file_names_what_inferred_it_from_what_and_loads_back(
    tiny_frame: pd.DataFrame,
) -> None:
    schema = infer_schema(tiny_frame, "label")
    text = schema_file_text(schema, command="wine init", source="data/external/d.csv")
    assert text.startswith(
        "# Data schema inferred by `wine init` from data/external/d.csv.\n"
        "# Review it: tighten the ranges, list the labels you expect, set null allowances.\n"
        "target:\n"
    )
    assert parse_schema(yaml.safe_load(text)) == schema
