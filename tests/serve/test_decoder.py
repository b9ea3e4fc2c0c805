"""RowDecoder's one-pass path for plain rows gives the checked path's feed, or steps aside.

`decode_plain_records` must never accept a body the checked path would refuse, and for
every body it accepts it must build the same feed; anything unusual goes back to the
checked path (None), whose messages name the field and the rule.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest

from tabml.contract import OutOfRange
from tabml.serve.decode import RowDecoder
from tabml.serve.model import FeatureSpec
from tabml.serve.problems import RequestError
from tabml.serve.v2 import V2Decoder
from tests.serve.conftest import ExportedModel

MAX_ROWS = 50


def decoder_of(model: ExportedModel, out_of_range: OutOfRange = "reject") -> RowDecoder:
    features = [FeatureSpec.model_validate(item) for item in model.metadata["features"]]
    return RowDecoder(features, MAX_ROWS, out_of_range=out_of_range)


def checked_feed(decoder: RowDecoder, body: bytes) -> dict[str, np.ndarray]:
    feed, _, _ = decoder.decode_records(json.loads(body))
    return feed


def assert_same_feed(plain: dict[str, np.ndarray], checked: dict[str, np.ndarray]) -> None:
    assert plain.keys() == checked.keys()
    for name, column in checked.items():
        assert plain[name].dtype == column.dtype, name
        assert plain[name].shape == column.shape, name
        np.testing.assert_array_equal(plain[name], column)


@pytest.mark.parametrize("count", [1, 7, MAX_ROWS])
def test_plain_rows_give_the_checked_feed(breast_cancer_model: ExportedModel, count: int) -> None:
    decoder = decoder_of(breast_cancer_model)
    rows = breast_cancer_model.feature_rows(count)
    for body, single in ((orjson.dumps(rows), False), (orjson.dumps(rows[0]), True)):
        decoded = decoder.decode_plain_records(body)
        assert decoded is not None
        feed, rows_seen, was_single = decoded
        assert (rows_seen, was_single) == ((1, True) if single else (count, False))
        assert feed["numeric_features"].flags.c_contiguous
        assert_same_feed(feed, checked_feed(decoder, body))


def test_mixed_rows_with_ints_and_categories(mixed_model: ExportedModel) -> None:
    decoder = decoder_of(mixed_model)
    rows = [row for row in mixed_model.feature_rows(30) if row["size"] is not None]
    body = orjson.dumps(rows)
    decoded = decoder.decode_plain_records(body)
    assert decoded is not None
    assert_same_feed(decoded[0], checked_feed(decoder, body))


def test_a_batch_of_whole_numbers_in_a_float_feature(mixed_model: ExportedModel) -> None:
    """JSON integers in a float feature are read as floats in a batch, whose rows are
    packed into one float64 array, as in a single row."""
    decoder = decoder_of(mixed_model)
    body = orjson.dumps([{"size": 12, "count": 3, "colour": "red"}, _mixed_row(size=99)])
    decoded = decoder.decode_plain_records(body)
    assert decoded is not None
    assert decoded[0]["numeric_features"].tolist() == [[12.0, 3.0], [99.0, 3.0]]
    assert_same_feed(decoded[0], checked_feed(decoder, body))


_ABSENT = object()


def _mixed_row(**change: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"size": 12.5, "count": 3, "colour": "red"}
    row.update(change)
    return {name: value for name, value in row.items() if value is not _ABSENT}


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (orjson.dumps(_mixed_row(size=None)), False),  # a null the model accepts
        (orjson.dumps(_mixed_row(colour="pink")), True),
        (orjson.dumps(_mixed_row(count=2.5)), True),
        (orjson.dumps(_mixed_row(count=2**60)), True),
        (orjson.dumps([_mixed_row(), _mixed_row(count=2**60)]), True),
        (orjson.dumps(_mixed_row(size=1e39)), True),  # beyond float32
        (orjson.dumps(_mixed_row(size=-5)), True),  # below the schema's minimum
        (orjson.dumps([_mixed_row(), _mixed_row(count=51)]), True),  # above the maximum
        (orjson.dumps([_mixed_row(size=-1e39), _mixed_row()]), True),
        (orjson.dumps(_mixed_row(size="12")), True),
        (orjson.dumps(_mixed_row(size=True)), True),
        (orjson.dumps(_mixed_row(colour=_ABSENT)), True),
        (orjson.dumps(_mixed_row(weight=1.0)), True),
        (b'{"size": NaN, "count": 3, "colour": "red"}', True),
        (orjson.dumps([]), True),
        (orjson.dumps([_mixed_row()] * (MAX_ROWS + 1)), True),
        (orjson.dumps([_mixed_row(), 5]), True),
        (b'{"size": 1', True),
    ],
    ids=[
        "null",
        "unknown-category",
        "fractional-int",
        "int-beyond-2^53",
        "int-beyond-2^53-in-a-batch",
        "beyond-float32",
        "below-the-range",
        "above-the-range-in-a-batch",
        "beyond-float32-in-a-batch",
        "string-number",
        "boolean",
        "missing",
        "extra",
        "nan",
        "empty-batch",
        "over-the-limit",
        "not-an-object",
        "truncated",
    ],
)
def test_anything_unusual_goes_to_the_checked_path(
    mixed_model: ExportedModel, body: bytes, refused: bool
) -> None:
    decoder = decoder_of(mixed_model)
    assert decoder.decode_plain_records(body) is None
    try:
        payload = json.loads(body)
    except ValueError:
        return  # the app answers 400 "body: must be valid JSON"
    if refused:
        with pytest.raises(RequestError):
            decoder.decode_records(payload)
    else:
        decoder.decode_records(payload)


@pytest.mark.parametrize("policy", ["reject", "count"])
def test_out_of_range_values_under_each_policy(
    mixed_model: ExportedModel, policy: OutOfRange
) -> None:
    """ "reject" names each value outside its range; "count" builds the feed the values
    give and marks where they lie outside (nulls do not)."""
    decoder = decoder_of(mixed_model, policy)
    rows = [_mixed_row(size=None), _mixed_row(size=-5.0, count=60), _mixed_row(count=50)]
    if policy == "reject":
        with pytest.raises(RequestError) as refused:
            decoder.decode_records(rows)
        assert [(p.field, p.out_of_range) for p in refused.value.problems] == [
            ("[1].size", "size"),
            ("[1].count", "count"),
        ]
        return
    feed, count, outside = decoder.decode_records(rows)
    assert count == 3
    np.testing.assert_array_equal(
        feed["numeric_features"], np.array([[np.nan, 3], [-5, 60], [12.5, 50]], np.float32)
    )
    assert outside is not None
    assert outside.tolist() == [[False, False], [True, True], [False, False]]
    assert decoder.decode_records([_mixed_row()])[2] is None
    v2 = {
        "inputs": [
            {"name": "count", "shape": [2], "datatype": "INT64", "data": [3, 51]},
            {"name": "size", "shape": [2], "datatype": "FP32", "data": [101.0, 12.5]},
            {"name": "colour", "shape": [2], "datatype": "BYTES", "data": ["red", "blue"]},
        ]
    }
    feed, _, _, outside = V2Decoder(decoder).decode(v2)
    np.testing.assert_array_equal(
        feed["numeric_features"], np.array([[101, 3], [12.5, 51]], np.float32)
    )
    assert feed["numeric_features"].flags.c_contiguous
    assert outside is not None
    assert outside.tolist() == [[True, False], [False, True]]
