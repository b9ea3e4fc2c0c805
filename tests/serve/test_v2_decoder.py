"""V2Decoder's typed path gives the checked path's feed, or steps aside; the packed input.

`decode_well_formed` must never accept a request the checked path (`decode`) would
refuse, and for every request it accepts it must build the same feed; anything else goes
to `decode`, so a refused request names the same field, value and rule either way. A
large body is read by simdjson (`v2_large`) instead of msgspec: every test of the typed
path runs for small and large bodies alike (`body_size`, which moves the line between
them).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabml.contract import OutOfRange
from tabml.serve import v2
from tabml.serve.decode import RowDecoder
from tabml.serve.http import parse_json
from tabml.serve.model import FeatureSpec
from tabml.serve.problems import RequestError
from tabml.serve.v2 import V2Decoder
from tests.serve.conftest import AsgiClient, ExportedModel

MAX_ROWS = 50
SERVER_LINE = v2.LARGE_BODY_BYTES  # read before any test moves it
PACKED = "numeric_features"


@pytest.fixture(params=["small", "large"], autouse=True)
def body_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with bodies read as small ones (numbers parsed into Python floats)
    and as large ones (read by simdjson, numbers straight into arrays)."""
    if request.param == "large":
        monkeypatch.setattr(v2, "LARGE_BODY_BYTES", 0)
    else:
        monkeypatch.setattr(v2, "LARGE_BODY_BYTES", 1 << 40)
    return str(request.param)


def decoder_of(model: ExportedModel, out_of_range: OutOfRange = "reject") -> V2Decoder:
    features = [FeatureSpec.model_validate(item) for item in model.metadata["features"]]
    return V2Decoder(RowDecoder(features, MAX_ROWS, out_of_range=out_of_range))


def tensor(name: str, data: list[Any], datatype: str, shape: list[int] | None = None) -> Any:
    return {
        "name": name,
        "shape": shape if shape is not None else [len(data), 1],
        "datatype": datatype,
        "data": data,
    }


def per_feature(
    sizes: list[Any], counts: list[Any], colours: list[Any], **extra: Any
) -> dict[str, Any]:
    return {
        "inputs": [
            tensor("size", sizes, "FP32"),
            tensor("count", counts, "INT64"),
            tensor("colour", colours, "BYTES"),
        ],
        **extra,
    }


def packed(rows: list[list[Any]], colours: list[Any], datatype: str = "FP32") -> dict[str, Any]:
    return {
        "inputs": [
            tensor("colour", colours, "BYTES"),
            tensor(PACKED, [value for row in rows for value in row], datatype, [len(rows), 2]),
        ]
    }


def _change(payload: dict[str, Any], index: int, **fields: Any) -> dict[str, Any]:
    inputs = [dict(item) for item in payload["inputs"]]
    inputs[index].update(fields)
    return {**payload, "inputs": inputs}


def refusal(decoder: V2Decoder, payload: Any) -> str:
    with pytest.raises(RequestError) as refused:
        decoder.decode(payload)
    assert refused.value.status == 400
    return refused.value.message


WELL_FORMED = {
    "in-order": per_feature([12.5, 40.0], [3, 7], ["red", "blue"]),
    "shuffled": {
        "inputs": list(reversed(per_feature([12.5, 40.0], [3, 7], ["red", "blue"])["inputs"]))
    },
    "flat-shapes": {
        "inputs": [
            tensor("count", [3, 7], "INT32", [2]),
            tensor("size", [12.5, 40], "FP64", [2]),
            tensor("colour", ["red", "blue"], "BYTES", [2]),
        ]
    },
    "one-row": per_feature([99.5], [50], ["green"], id="request-1"),
    "outputs": per_feature([0.0], [0], ["red"], outputs=[{"name": "probabilities"}]),
    "packed": packed([[12.5, 3], [40.0, 7]], ["red", "blue"]),
    "packed-one-row": packed([[12.5, 3]], ["red"]),
    "packed-ints": packed([[12, 3], [40, 7]], ["red", "blue"], "INT64"),
    "packed-ints-one-row": packed([[12, 3]], ["red"], "INT64"),
    # The int feature in a float datatype: read as one typed tuple (shuffled, as one-value
    # tensors), the one-row forms taking float datatypes only.
    "one-row-floats": _change(
        per_feature([99.5], [50.0], ["green"], id="row-9"), 1, datatype="FP64"
    ),
    "one-row-floats-shuffled": {
        "inputs": list(
            reversed(_change(per_feature([99.5], [50.0], ["green"]), 1, datatype="FP64")["inputs"])
        )
    },
}


@pytest.mark.parametrize("name", list(WELL_FORMED))
def test_well_formed_requests_give_the_checked_feed(mixed_model: ExportedModel, name: str) -> None:
    decoder = decoder_of(mixed_model)
    payload = WELL_FORMED[name]
    fast = decoder.decode_well_formed(orjson.dumps(payload))
    assert fast is not None
    feed, rows, outputs, request_id = fast
    checked, checked_rows, checked_outputs, outside = decoder.decode(payload)
    assert (rows, outputs, request_id) == (checked_rows, checked_outputs, payload.get("id"))
    assert outside is None
    assert feed.keys() == checked.keys()
    for column, values in checked.items():
        assert feed[column].dtype == values.dtype, column
        np.testing.assert_array_equal(feed[column], values)
    assert feed[PACKED].flags.c_contiguous


BASE = per_feature([12.5, 40.0], [3, 7], ["red", "blue"])
PACKED_BASE = packed([[12.5, 3], [40.0, 7]], ["red", "blue"])
UNUSUAL = {
    "null-accepted": (per_feature([None, 40.0], [3, 7], ["red", "blue"]), None),
    "nested-accepted": (_change(BASE, 0, data=[[12.5], [40.0]]), None),
    "below-the-range": (
        per_feature([-5.0, 40.0], [3, 7], ["red", "blue"]),
        "inputs[0].data[0] = -5.0: must be within [0.0, 100.0], the feature's range in the model's "
        "data schema",
    ),
    "fractional-int": (
        per_feature([12.5, 40.0], [3, 7.5], ["red", "blue"]),
        "inputs[1].data[1] = 7.5: must be a whole number",
    ),
    "int-datatype-fraction": (
        _change(BASE, 0, datatype="INT32"),
        "inputs[0].data[0] = 12.5: must be a whole number",
    ),
    "string-number": (
        per_feature(["12.5", 40.0], [3, 7], ["red", "blue"]),
        'inputs[0].data[0] = "12.5": must be a number (float), not a string',
    ),
    "boolean": (
        per_feature([True, 40.0], [3, 7], ["red", "blue"]),
        "inputs[0].data[0] = true: must be a number (float), not a boolean",
    ),
    "unknown-category": (
        per_feature([12.5, 40.0], [3, 7], ["red", "pink"]),
        "inputs[2].data[1] = \"pink\": must be one of ['blue', 'green', 'red']",
    ),
    "missing": (
        {"inputs": BASE["inputs"][:2]},
        "inputs[name=colour]: required input is missing",
    ),
    "twice": (
        {"inputs": [*BASE["inputs"], BASE["inputs"][0]]},
        'inputs[3].name = "size": feature given twice',
    ),
    "twice-in-place-of-another": (
        # count's values would pass in size's place: only the names tell them apart.
        {"inputs": [BASE["inputs"][1], BASE["inputs"][1], BASE["inputs"][2]]},
        'inputs[1].name = "count": feature given twice; '
        "inputs[name=size]: required input is missing",
    ),
    "unknown-input": (
        {"inputs": [*BASE["inputs"], tensor("weight", [1.0, 2.0], "FP32")]},
        'inputs[3].name = "weight": not a feature of this model (GET /v2/models/{name} lists '
        "the inputs)",
    ),
    "rows-differ": (
        _change(BASE, 1, shape=[1, 1], data=[3]),
        "inputs[1].shape = [1,1]: every input needs the same number of rows; the first input has 2",
    ),
    "shape-two-columns": (
        _change(BASE, 0, shape=[1, 2]),
        "inputs[0].shape = [1,2]: must be [rows] or [rows, 1]",
    ),
    "data-short": (
        _change(BASE, 0, data=[12.5]),
        "inputs[0].data: holds 1 values; shape [2, 1] needs 2",
    ),
    "categorical-as-numbers": (
        _change(BASE, 2, datatype="FP32"),
        "inputs[2].datatype = \"FP32\": feature 'colour' is categorical: use BYTES",
    ),
    "numeric-as-bytes": (
        _change(BASE, 0, datatype="BYTES"),
        "inputs[0].datatype = \"BYTES\": feature 'size' is numeric: use one of ['FP16', "
        "'FP32', 'FP64', 'INT16', 'INT32', 'INT64', 'INT8', 'UINT16', 'UINT32', 'UINT64', "
        "'UINT8']",
    ),
    "unknown-field": (
        {**BASE, "priority": 1},
        "priority = 1: not a field of an inference request (id, parameters, inputs, outputs)",
    ),
    "id-not-a-string": ({**BASE, "id": 7}, "id = 7: must be a string"),
    "unknown-output": (
        {**BASE, "outputs": [{"name": "logits"}]},
        'outputs[0] = {"name":"logits"}: must be an object naming one of [\'label\', '
        "'probabilities']",
    ),
    "packed-nested-accepted": (
        _change(PACKED_BASE, 1, data=[[12.5, 3], [40.0, 7]]),
        None,
    ),
    "packed-shape": (
        _change(PACKED_BASE, 1, shape=[2, 3]),
        "inputs[1].shape = [2,3]: must be [rows, 2]: one column per numeric feature, in the "
        "order GET /v2/models/{name} lists them under parameters.packed_numeric_input",
    ),
    "packed-flat-shape": (
        _change(PACKED_BASE, 1, shape=[4]),
        "inputs[1].shape = [4]: must be [rows, 2]: one column per numeric feature, in the "
        "order GET /v2/models/{name} lists them under parameters.packed_numeric_input",
    ),
    "packed-datatype": (
        _change(PACKED_BASE, 1, datatype="BYTES"),
        "inputs[1].datatype = \"BYTES\": input 'numeric_features' is numeric: use one of "
        "['FP16', 'FP32', 'FP64', 'INT16', 'INT32', 'INT64', 'INT8', 'UINT16', 'UINT32', "
        "'UINT64', 'UINT8']",
    ),
    "packed-data-short": (
        _change(PACKED_BASE, 1, data=[12.5, 3, 40.0]),
        "inputs[1].data: holds 3 values; shape [2, 2] needs 4",
    ),
    "packed-value-out-of-range": (
        packed([[12.5, 3], [40.0, 51]], ["red", "blue"]),
        "inputs[1].data[1][count] = 51: must be within [0.0, 50.0], the feature's range in the "
        "model's data schema",
    ),
    "packed-fraction-in-int-column": (
        packed([[12.5, 3.5], [40.0, 7]], ["red", "blue"]),
        "inputs[1].data[0][count] = 3.5: must be a whole number",
    ),
    "packed-beside-a-feature": (
        {"inputs": [*PACKED_BASE["inputs"], BASE["inputs"][0]]},
        'inputs[2].name = "size": numeric feature given alone and in the packed '
        "'numeric_features' tensor; send one or the other",
    ),
    "packed-twice": (
        {"inputs": [*PACKED_BASE["inputs"], PACKED_BASE["inputs"][1]]},
        'inputs[2].name = "numeric_features": feature given twice',
    ),
}


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_anything_else_goes_to_the_checked_path(mixed_model: ExportedModel, name: str) -> None:
    """The typed path steps aside, and `decode_body` (what the app calls) answers exactly
    as the checked path does: the same feed, or the same named problems."""
    decoder = decoder_of(mixed_model)
    payload, message = UNUSUAL[name]
    body = orjson.dumps(payload)
    assert decoder.decode_well_formed(body) is None
    if message is None:
        feed, rows, _, outside, _ = decoder.decode_body(body)
        assert rows == 2 and PACKED in feed and outside is None
        return
    assert refusal(decoder, json.loads(body)) == message
    with pytest.raises(RequestError) as refused:
        decoder.decode_body(body)
    assert refused.value.message == message


def test_a_single_row_in_metadata_order_is_read_as_one_typed_tuple(
    mixed_model: ExportedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The common single row, one tensor per feature in the order the metadata lists
    them, is read by the in-order form; with a categorical feature listed first the
    numeric columns are still gathered in metadata order."""
    monkeypatch.setattr(v2, "LARGE_BODY_BYTES", SERVER_LINE)  # a small body, as served
    features = [FeatureSpec.model_validate(item) for item in mixed_model.metadata["features"]]
    row = {"size": 99.5, "count": 50.0, "colour": "green"}
    for order in (features, [features[2], features[0], features[1]]):
        decoder = V2Decoder(RowDecoder(order, MAX_ROWS, out_of_range="reject"))
        payload = {
            "inputs": [
                tensor(f.name, [row[f.name]], "FP32" if f.numeric else "BYTES") for f in order
            ],
            "outputs": [{"name": "label"}],
        }
        body = orjson.dumps(payload)
        decoder._row_in_order.decode(body)  # the in-order form takes it
        fast = decoder.decode_well_formed(body)
        assert fast is not None
        checked, rows, outputs, _ = decoder.decode(payload)
        assert fast[1:] == (rows, outputs, None) == (1, ["label"], None)
        assert fast[0].keys() == checked.keys()
        for column, values in checked.items():
            assert (fast[0][column].dtype, fast[0][column].shape) == (values.dtype, values.shape)
            np.testing.assert_array_equal(fast[0][column], values)
        np.testing.assert_array_equal(fast[0][PACKED], [[99.5, 50.0]])


def test_out_of_range_values_are_counted_whichever_way_they_come(
    mixed_model: ExportedModel,
) -> None:
    """Under the "count" policy the typed path steps aside and the checked path accepts the
    value and marks it, for the packed tensor as for one tensor per feature."""
    decoder = decoder_of(mixed_model, "count")
    for payload in (
        per_feature([101.0, 40.0], [3, 7], ["red", "blue"]),
        packed([[101.0, 3], [40.0, 7]], ["red", "blue"]),
    ):
        body = orjson.dumps(payload)
        assert decoder.decode_well_formed(body) is None
        feed, _, _, outside, _ = decoder.decode_body(body)
        assert outside is not None and outside.tolist() == [[True, False], [False, False]]
        np.testing.assert_array_equal(feed[PACKED], np.array([[101, 3], [40, 7]], dtype=np.float32))


def test_the_packed_input_predicts_as_one_tensor_per_feature(
    breast_cancer_model: ExportedModel, client: AsgiClient
) -> None:
    metadata = client.get("/v2/models/tabml-classifier").json()
    described = metadata["parameters"]["packed_numeric_input"]
    numeric = list(breast_cancer_model.schema.numeric_features)
    assert described == {
        "name": PACKED,
        "datatype": "FP32",
        "shape": [-1, len(numeric)],
        "columns": numeric,
    }
    rows = breast_cancer_model.feature_rows(3)
    per_tensor = {"inputs": [tensor(name, [row[name] for row in rows], "FP32") for name in numeric]}
    one_tensor = {
        "inputs": [
            tensor(
                PACKED,
                [row[name] for row in rows for name in numeric],
                "FP32",
                [len(rows), len(numeric)],
            )
        ]
    }
    first = client.post("/v2/models/tabml-classifier/infer", per_tensor)
    second = client.post("/v2/models/tabml-classifier/infer", one_tensor)
    assert first.status == second.status == 200
    assert first.json() == second.json()
    labels, _ = breast_cancer_model.expected(rows)
    assert first.json()["outputs"][0]["data"] == labels
    refused = client.post(
        "/v2/models/tabml-classifier/infer",
        {"inputs": [{**one_tensor["inputs"][0], "shape": [len(rows), 2]}]},
    )
    assert refused.status == 400
    assert refused.json()["details"][0]["field"] == "inputs[0].shape"


RAW_ONLY = {
    # Numbers JSON allows that a typed parse and a text reader might read apart.
    "exponents-and-signs": per_feature([1.25e1, 4e1], [3, 7], ["red", "blue"]),
    "negative-zero": per_feature([-0.0, 40.0], [-0, 7], ["red", "blue"]),
    "on-the-bounds": per_feature([0.0, 100.0], [0, 50], ["red", "blue"]),
}


@pytest.mark.parametrize("name", list(RAW_ONLY))
def test_numbers_read_from_the_text_are_the_parsed_numbers(
    mixed_model: ExportedModel, name: str
) -> None:
    decoder = decoder_of(mixed_model)
    payload = RAW_ONLY[name]
    body = orjson.dumps(payload)
    fast = decoder.decode_well_formed(body)
    assert fast is not None
    checked = decoder.decode(json.loads(body))[0]
    np.testing.assert_array_equal(fast[0][PACKED], checked[PACKED])


def test_text_with_spaces_and_a_number_too_large_to_read(mixed_model: ExportedModel) -> None:
    """JSON written by hand: spaces inside the arrays are read; a number beyond float64's
    range steps aside, and the checked path names it."""
    decoder = decoder_of(mixed_model)
    spaced = (
        b'{"inputs": [ {"name": "size", "shape": [2, 1], "datatype": "FP32", '
        b'"data": [ 12.5 ,\n 40 ] }, {"name": "count", "shape": [2], "datatype": "INT64", '
        b'"data": [3, 7]}, {"name": "colour", "shape": [2], "datatype": "BYTES", '
        b'"data": ["red", "blue"]} ] }'
    )
    fast = decoder.decode_well_formed(spaced)
    assert fast is not None
    np.testing.assert_array_equal(fast[0][PACKED], np.array([[12.5, 3], [40, 7]], np.float32))
    too_large = spaced.replace(b"12.5", b"1e400")
    assert decoder.decode_well_formed(too_large) is None
    with pytest.raises(RequestError) as refused:
        decoder.decode_body(too_large)
    assert refused.value.message.startswith("inputs[0].data[0]")


_NUMBERISH = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1, max_value=120),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-2, max_value=60),
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.floats(min_value=0, max_value=50), max_size=2),
)


_NUMERIC_DATATYPES = st.sampled_from(["FP32", "FP64", "INT64"])


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(_NUMBERISH, min_size=1, max_size=4),
    counts=st.lists(_NUMBERISH, min_size=1, max_size=4),
    pack=st.booleans(),
    datatypes=st.tuples(_NUMERIC_DATATYPES, _NUMERIC_DATATYPES),
    shuffled=st.booleans(),
)
def test_large_small_and_one_row_bodies_get_the_checked_answer(
    mixed_model: ExportedModel,
    sizes: list[Any],
    counts: list[Any],
    pack: bool,
    datatypes: tuple[str, str],
    shuffled: bool,
) -> None:
    """Whatever the numeric data and datatypes hold, in metadata order or not, a body read
    as a large one, as a small one (a single row first in the one-row forms: as one typed
    tuple when in order, as one-value tensors when not) and by the checked path alone gets
    one answer: the same feed, or the same named problems."""
    rows = len(sizes)
    colours = ["red"] * rows
    if pack:
        pairs = [[size, count] for size, count in zip(sizes, counts, strict=False)]
        payload = packed(pairs, colours[: len(pairs)], datatypes[0])
    else:
        payload = per_feature(sizes, counts, colours)
        payload["inputs"][0]["datatype"], payload["inputs"][1]["datatype"] = datatypes
    if shuffled:
        payload["inputs"].reverse()
    body = json.dumps(payload).encode()  # integers beyond 64 bits too
    decoder = decoder_of(mixed_model)
    answers = []
    for line in (0, 1 << 40):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(v2, "LARGE_BODY_BYTES", line)
            answers.append(_answer(lambda: decoder.decode_body(body)[:4]))
    answers.append(_answer(lambda: decoder.decode(parse_json(body))))
    assert answers[0] == answers[1] == answers[2]


# Values within both features' ranges (size [0, 100], count [0, 50]), whole or not, so
# that most single rows get as far as the checks after the parse.
_IN_RANGE = st.one_of(st.floats(min_value=0, max_value=50), st.integers(0, 50))


@settings(max_examples=150, deadline=None)
@given(
    size=st.one_of(_IN_RANGE, _NUMBERISH),
    count=st.one_of(_IN_RANGE, _NUMBERISH),
    datatypes=st.tuples(_NUMERIC_DATATYPES, _NUMERIC_DATATYPES),
    shuffled=st.booleans(),
)
def test_single_rows_get_the_checked_answer(
    mixed_model: ExportedModel, size: Any, count: Any, datatypes: tuple[str, str], shuffled: bool
) -> None:
    """The same for single rows alone, the one-row forms' whole domain: in metadata order
    the typed tuple reads them, shuffled the one-value tensors do, and an integer datatype
    sends them on to the general form."""
    payload = per_feature([size], [count], ["red"])
    payload["inputs"][0]["datatype"], payload["inputs"][1]["datatype"] = datatypes
    if shuffled:
        payload["inputs"].reverse()
    body = json.dumps(payload).encode()
    decoder = decoder_of(mixed_model)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(v2, "LARGE_BODY_BYTES", SERVER_LINE)
        served = _answer(lambda: decoder.decode_body(body)[:4])
    assert served == _answer(lambda: decoder.decode(parse_json(body)))


def _answer(decode: Any) -> Any:
    """A decoding's feed, rows, outputs and out-of-range marks, or its refusal, in a form
    == compares (NaN included)."""
    try:
        feed, rows, outputs, outside = decode()
    except RequestError as error:
        return error.status, error.message
    columns = {name: str(values.tolist()) for name, values in feed.items()}
    return columns, rows, outputs, None if outside is None else outside.tolist()


ONE_ROW_PACKED = packed([[12.5, 3]], ["red"])
# A single row in float datatypes: in metadata order it is what the in-order form reads,
# shuffled what the one-row union reads; each case must get past neither.
ONE_ROW = _change(per_feature([12.5], [3], ["red"]), 1, datatype="FP32")
ONE_ROW_UNUSUAL = {
    "no-value": _change(ONE_ROW, 0, data=[]),
    "two-values": _change(ONE_ROW, 0, data=[12.5, 13.0]),
    "two-colours": _change(ONE_ROW, 2, data=["red", "blue"]),
    "shape-one-by-two": _change(ONE_ROW, 0, shape=[1, 2]),
    "shape-one-one-one": _change(ONE_ROW, 0, shape=[1, 1, 1]),
    "shape-empty": _change(ONE_ROW, 0, shape=[]),
    "rows-differ": _change(ONE_ROW, 1, shape=[2, 1], data=[3, 4]),
    "nested": _change(ONE_ROW, 0, data=[[12.5]]),
    "above-the-range": _change(ONE_ROW, 0, data=[100.5]),
    "below-the-range": _change(ONE_ROW, 0, data=[-5.0]),
    "fraction-for-an-int": _change(ONE_ROW, 1, data=[3.5]),
    "fraction-for-an-int-as-int64": per_feature([12.5], [3.5], ["red"]),
    # A single row in an integer datatype is read by the general typed form, which
    # holds that datatype's values whole.
    "fraction-in-an-int-datatype": _change(ONE_ROW, 0, datatype="INT64"),
    "unknown-colour": _change(ONE_ROW, 2, data=["pink"]),
    "null": _change(ONE_ROW, 0, data=[None]),  # accepted, by the checked path
    # A tensor without a name must not pass for the feature at its place.
    "no-name": {
        "inputs": [
            {key: value for key, value in ONE_ROW["inputs"][0].items() if key != "name"},
            *ONE_ROW["inputs"][1:],
        ]
    },
    "unknown-output": {**ONE_ROW, "outputs": [{"name": "logits"}]},
    "id-not-a-string": {**ONE_ROW, "id": 7},
    "boolean": _change(ONE_ROW, 0, data=[True]),
    "categorical-as-numbers": _change(ONE_ROW, 2, datatype="FP32", data=[1.0]),
    "numeric-as-bytes": _change(ONE_ROW, 0, datatype="BYTES", data=["12.5"]),
    "missing": {"inputs": ONE_ROW["inputs"][:2]},
    "unknown-input": {"inputs": [*ONE_ROW["inputs"], tensor("weight", [1.0], "FP32")]},
    # count's value would pass in size's place: only the names tell them apart.
    "twice-in-place-of-another": {
        "inputs": [ONE_ROW["inputs"][1], ONE_ROW["inputs"][1], ONE_ROW["inputs"][2]]
    },
    "packed-beside-a-feature": {"inputs": [*ONE_ROW_PACKED["inputs"], ONE_ROW["inputs"][0]]},
    "packed-three-values": _change(ONE_ROW_PACKED, 1, data=[12.5, 3, 4]),
    "packed-shape-one-by-three": _change(ONE_ROW_PACKED, 1, shape=[1, 3]),
    "packed-flat-shape": _change(ONE_ROW_PACKED, 1, shape=[2]),
    "packed-out-of-range": packed([[12.5, 51]], ["red"]),
    "packed-fraction-in-an-int-datatype": packed([[12.5, 3]], ["red"], "INT32"),
}


@pytest.mark.parametrize("shuffled", [False, True], ids=["in-order", "shuffled"])
@pytest.mark.parametrize("name", list(ONE_ROW_UNUSUAL))
def test_a_single_row_the_one_row_form_does_not_take_gets_the_checked_answer(
    mixed_model: ExportedModel, name: str, shuffled: bool
) -> None:
    decoder = decoder_of(mixed_model)
    payload = ONE_ROW_UNUSUAL[name]
    if shuffled:
        payload = {**payload, "inputs": list(reversed(payload["inputs"]))}
    body = orjson.dumps(payload)
    assert decoder.decode_well_formed(body) is None
    checked = _answer(lambda: decoder.decode(parse_json(body)))
    assert _answer(lambda: decoder.decode_body(body)[:4]) == checked


def test_a_large_body_is_read_by_simdjson(
    breast_cancer_model: ExportedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1,000-row request is above the line the server uses: simdjson reads it, and its
    numbers give the feed the checked path builds."""
    monkeypatch.setattr(v2, "LARGE_BODY_BYTES", SERVER_LINE)
    metadata = breast_cancer_model.metadata["features"]
    features = [FeatureSpec.model_validate(item) for item in metadata]
    decoder = V2Decoder(RowDecoder(features, 1000, out_of_range="reject"))
    # The C reader reads such a body first (test_v2_row_reader); here the Python path.
    decoder._read_rows = None
    rows = (breast_cancer_model.feature_rows() * 2)[:1000]
    numeric = list(breast_cancer_model.schema.numeric_features)
    payload = {"inputs": [tensor(name, [row[name] for row in rows], "FP32") for name in numeric]}
    body = orjson.dumps(payload)
    assert len(body) >= SERVER_LINE
    read_requests: list[Any] = []
    read = decoder._large_requests.read

    def counted_read(text: bytes) -> Any:
        read_requests.append(read(text))
        return read_requests[-1]

    monkeypatch.setattr(decoder._large_requests, "read", counted_read)
    fast = decoder.decode_well_formed(body)
    assert fast is not None
    assert [len(request.inputs) for request in read_requests] == [len(numeric)]
    checked = decoder.decode(payload)[0]
    np.testing.assert_array_equal(fast[0][PACKED], checked[PACKED])
