"""The C reader of inference requests' rows gives the Python path's answer, or declines.

For any body, `V2RowReader.read` either declines (None) or gives what `V2Decoder`'s
Python path gives for it: the same float32 rows, the same row count, the default
outputs, no value outside its range and the same id. A body it reads must be one the
Python path accepts: it holds every value to its feature's range and int features to
whole numbers itself. Well-formed requests of every layout, single rows and batches, are
read; mutated ones never yield an answer the Python path would not give.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabml.contract import NUMERIC_INPUT
from tabml.serve import body_readers, v2
from tabml.serve.decode import RowDecoder
from tabml.serve.model import FeatureSpec
from tabml.serve.problems import RequestError
from tabml.serve.v2 import V2_OUTPUTS, V2Decoder
from tests.serve.test_body_readers import SPACES, mutated, number_literals, require_reader

FEATURES = [
    FeatureSpec(name="a", dtype="float", onnx_type="float32", min=-5.0, max=5.0),
    FeatureSpec(name="bb", dtype="int", onnx_type="float32", min=0.0, max=100.0),
    FeatureSpec(name="mean radius", dtype="float", onnx_type="float32"),
    FeatureSpec(name="é", dtype="float", onnx_type="float32", min=0.5),
    FeatureSpec(name="x_1", dtype="int", onnx_type="float32"),
]
NAMES = [feature.name for feature in FEATURES]
MAX_ROWS = 8


@pytest.fixture(autouse=True)
def small_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python path reads every body here with msgspec, as it reads small ones (a
    large body goes to simdjson, whose answers `test_v2_large` holds to msgspec's)."""
    monkeypatch.setattr(v2, "LARGE_BODY_BYTES", 1 << 40)


@pytest.fixture(scope="module")
def with_reader() -> V2Decoder:
    require_reader()
    decoder = V2Decoder(RowDecoder(FEATURES, MAX_ROWS, out_of_range="reject"))
    assert decoder._read_rows is not None
    return decoder


@pytest.fixture(scope="module")
def python_path() -> V2Decoder:
    decoder = V2Decoder(RowDecoder(FEATURES, MAX_ROWS, out_of_range="reject"))
    decoder._read_rows = None
    return decoder


def assert_answers_as_python(with_reader: V2Decoder, python_path: V2Decoder, body: bytes) -> bool:
    """The reader declines `body` or gives the Python path's answer; whether it read it."""
    assert with_reader._read_rows is not None
    read = with_reader._read_rows(body, MAX_ROWS)
    if read is None:
        return False
    try:
        feed, rows, outputs, outside, request_id = python_path.decode_body(body)
    except RequestError as error:
        pytest.fail(f"read a body the Python path refuses ({error.problems}): {body!r}")
    values, read_rows, read_id = read
    read_values = np.frombuffer(values, dtype=np.float32).reshape(read_rows, len(FEATURES))
    assert np.array_equal(read_values, feed[NUMERIC_INPUT]), body
    assert (read_rows, outputs, outside, read_id) == (rows, list(V2_OUTPUTS), None, request_id)
    # And the app's decoder takes the reader's answer.
    fast_feed, *rest = with_reader.decode_body(body)
    assert np.array_equal(fast_feed[NUMERIC_INPUT], feed[NUMERIC_INPUT]), body
    assert rest == [rows, list(V2_OUTPUTS), None, request_id], body
    return True


# --- well-formed requests ------------------------------------------------------------


def value_literal(feature: FeatureSpec) -> st.SearchStrategy[str]:
    """A number every check passes for `feature`, written as a client might."""
    lower = -3.0e38 if feature.min is None else feature.min
    upper = 3.0e38 if feature.max is None else feature.max
    if feature.dtype == "int":
        whole = st.integers(int(max(lower, -(2**53))), int(min(upper, 2**53)))
        return st.one_of(whole.map(str), whole.map(lambda number: f"{float(number)!r}"))
    return st.floats(lower, upper).map(repr)


ID_TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters='"\\', min_codepoint=0x20),
    max_size=12,
)


@st.composite
def tensor_text(draw: st.DrawFn, name: str, literals: list[str]) -> str:
    rows = len(literals)
    shape = draw(st.sampled_from(["[{}]", "[{},1]", "[ {} , 1 ]", "[{}, 1]"])).format(rows)
    data = ",".join(f"{draw(SPACES)}{literal}{draw(SPACES)}" for literal in literals)
    fields = {
        "name": json.dumps(name, ensure_ascii=False),
        "shape": shape,
        "datatype": json.dumps(draw(st.sampled_from(["FP16", "FP32", "FP64"]))),
        "data": f"[{data}]",
    }
    order = draw(st.permutations(list(fields)))
    return (
        "{"
        + ",".join(
            f'{draw(SPACES)}"{key}"{draw(SPACES)}:{draw(SPACES)}{fields[key]}' for key in order
        )
        + draw(SPACES)
        + "}"
    )


@st.composite
def well_formed_requests(draw: st.DrawFn) -> bytes:
    """One row or a batch of up to MAX_ROWS, a tensor per feature in any order, every
    value passing every check, with or without a plain id before or after the inputs."""
    rows = draw(st.sampled_from([1, 1, 2, MAX_ROWS]) | st.integers(1, MAX_ROWS))
    tensors = [
        draw(
            tensor_text(
                feature.name, draw(st.lists(value_literal(feature), min_size=rows, max_size=rows))
            )
        )
        for feature in FEATURES
    ]
    tensors = draw(st.permutations(tensors))
    members = [f'"inputs"{draw(SPACES)}:{draw(SPACES)}[' + ",".join(tensors) + "]"]
    if draw(st.booleans()):
        members.insert(
            draw(st.integers(0, 1)), f'"id":{json.dumps(draw(ID_TEXT), ensure_ascii=False)}'
        )
    return (draw(SPACES) + "{" + ",".join(members) + "}" + draw(SPACES)).encode()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(well_formed_requests())
def test_well_formed_requests_are_read(
    with_reader: V2Decoder, python_path: V2Decoder, body: bytes
) -> None:
    assert assert_answers_as_python(with_reader, python_path, body), body


@st.composite
def any_value_requests(draw: st.DrawFn) -> bytes:
    """Well-formed in layout, with values of every form: out of range, fractions for int
    features, past the double range."""
    rows = draw(st.integers(1, 3))
    tensors = [
        draw(tensor_text(name, draw(st.lists(number_literals(), min_size=rows, max_size=rows))))
        for name in NAMES
    ]
    return ('{"inputs":[' + ",".join(draw(st.permutations(tensors))) + "]}").encode()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(any_value_requests())
def test_values_are_held_to_the_rule_as_python_holds_them(
    with_reader: V2Decoder, python_path: V2Decoder, body: bytes
) -> None:
    assert_answers_as_python(with_reader, python_path, body)


# Bytes that turn a well-formed request into a nearly well-formed one.
NOISE = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"0", b"1", b"9", b"-", b".", b"e"]
NOISE += [b" ", b"\\", b"\x00", b"\xa0", b"\xff", b"null", b'"FP32"', b'"a"', b"\\u0061"]
NOISE += [b'"shape"', b'"data"', b'"id"', b'"inputs"', b"[1,1]", b"[2]", b"[8]", b"[9]"]


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(well_formed_requests(), st.data())
def test_mutated_requests_are_declined_or_answered_as_python(
    with_reader: V2Decoder, python_path: V2Decoder, body: bytes, data: st.DataObject
) -> None:
    assert_answers_as_python(with_reader, python_path, mutated(body, data, NOISE, repeat=16))


# --- what it declines ----------------------------------------------------------------


def request(
    values: dict[str, Any] | None = None,
    *,
    tensor: dict[str, Any] | None = None,
    **fields: Any,
) -> bytes:
    """A single-row request of FEATURES (values 1, 2, 3, 4, 5 unless given), the first
    tensor's fields replaced by `tensor`'s, and the request's by `fields`'."""
    chosen = dict(zip(NAMES, [1, 2, 3, 4, 5], strict=True)) | (values or {})
    tensors = [
        {"name": name, "shape": [1, 1], "datatype": "FP32", "data": [value]}
        for name, value in chosen.items()
    ]
    tensors[0] |= tensor or {}
    return json.dumps({"inputs": tensors, **fields}, ensure_ascii=False).encode()


def batch(rows: int = 2, *, tensor: dict[str, Any] | None = None, at: int = 0) -> bytes:
    """A request of `rows` rows of FEATURES (row r holding 1 + r % 4 in each feature,
    within every range), the fields of the tensor at `at` replaced by `tensor`'s."""
    tensors = [
        {
            "name": name,
            "shape": [rows],
            "datatype": "FP64",
            "data": [1 + row % 4 for row in range(rows)],
        }
        for name in NAMES
    ]
    tensors[at] |= tensor or {}
    return json.dumps({"inputs": tensors}, ensure_ascii=False).encode()


TENSORS = json.loads(request())["inputs"]


def inputs_of(tensors: list[dict[str, Any]]) -> bytes:
    return json.dumps({"inputs": tensors}, ensure_ascii=False).encode()


DECLINED = {
    "outputs asked for": request(outputs=[{"name": "label"}]),
    "parameters": request(parameters={}),
    "an id that is not a string": request(id=7),
    "a null id": request(id=None),
    "an id with an escape": request(id='say "hi"'),
    "an unknown field": request(model="m"),
    "tensor parameters": request(tensor={"parameters": {}}),
    "an integer datatype": request(tensor={"datatype": "INT32"}),
    "BYTES": request(tensor={"datatype": "BYTES"}),
    "rows that differ between tensors": request(tensor={"shape": [2, 1], "data": [1, 2]}),
    "more values than the shape's rows": request(tensor={"data": [1, 2]}),
    "fewer values than the shape's rows": batch(tensor={"data": [1]}),
    "more rows than a batch may hold": batch(MAX_ROWS + 1),
    "shape [0] and no values": batch(0),
    "shape [-1]": request(tensor={"shape": [-1]}),
    "shape [01]": request().replace(b'"shape": [1, 1]', b'"shape": [01]', 1),
    "shape [2, 2]": batch(tensor={"shape": [2, 2], "data": [1, 2, 3, 4]}),
    "shape [1, 2]": request(tensor={"shape": [1, 2]}),
    "shape [1, 1, 1]": request(tensor={"shape": [1, 1, 1]}),
    "a row count past 2^63": request(tensor={"shape": [2**64 + 1]}),
    "shape [1.0]": request(tensor={"shape": [1.0]}),
    "shape []": request(tensor={"shape": []}),
    "nested data": request(tensor={"data": [[1]]}),
    "nested rows": batch(tensor={"shape": [2, 1], "data": [[1], [2]]}),
    "a trailing comma in the data": request().replace(b'"data": [1]', b'"data": [1,]', 1),
    "a value past the range in the last row": batch(tensor={"data": [1, 6]}),
    "a fraction for an int feature in the last row": batch(tensor={"data": [1, 2.5]}, at=1),
    "no value": request(tensor={"data": []}),
    "a string value": request(tensor={"data": ["1"]}),
    "a null value": request(tensor={"data": [None]}),
    "below the range": request({"a": -5.5}),
    "above the range": request({"bb": 101}),
    "a fraction for an int feature": request({"x_1": 2.5}),
    "an int past 2^53": request({"x_1": 2**53 + 2}),
    "past the double range": request({"mean radius": 10**400}),
    "past the float32 range": request({"mean radius": 3.5e38}),
    "a feature twice": inputs_of(TENSORS[:1] + TENSORS),
    "a feature twice, one missing": inputs_of(TENSORS[:1] + TENSORS[:-1]),
    "a feature missing": inputs_of(TENSORS[1:]),
    "a field twice, data missing": request().replace(b'"data": [1]', b'"shape": [1]', 1),
    "a field twice": request().replace(b'"data": [1]', b'"data": [1], "data": [1]', 1),
    "an unknown feature": request(tensor={"name": "z"}),
    "an escaped name": request().replace(b'"a"', b'"\\u0061"', 1),
    "no inputs": b'{"id":"x"}',
    "inputs twice": request()[:-1] + b',"inputs":[]}',
    "id twice": request(id="x")[:-1] + b',"id":"y"}',
    "inputs closed by a brace": request()[:-2] + b"}}",
    "a trailing comma in the inputs": request()[:-2] + b",]}",
    "a trailing comma": request()[:-1] + b",}",
    "text after": request() + b"x",
    "two documents": request() + b" {}",
    "an array": b"[" + request() + b"]",
    "empty body": b"",
    "invalid UTF-8 in the id": request(id="x").replace(b'"x"', b'"\xff"'),
}


@pytest.mark.parametrize("body", DECLINED.values(), ids=DECLINED.keys())
def test_declines_what_is_not_a_row_every_check_passes(with_reader: V2Decoder, body: bytes) -> None:
    assert with_reader._read_rows is not None
    assert with_reader._read_rows(body, MAX_ROWS) is None


def test_every_prefix_of_a_request_is_declined(with_reader: V2Decoder) -> None:
    assert with_reader._read_rows is not None
    body = request(id="r-1")
    assert with_reader._read_rows(body, MAX_ROWS) is not None
    for end in range(len(body)):
        assert with_reader._read_rows(body[:end], MAX_ROWS) is None, body[:end]


def test_a_request_read_after_a_declined_one_is_not_thought_to_repeat_features(
    with_reader: V2Decoder, python_path: V2Decoder
) -> None:
    # The reader keeps which features a request has shown across calls: a body declined
    # halfway must not make the next body's features look seen.
    assert with_reader._read_rows is not None
    assert with_reader._read_rows(request(tensor={"data": [None]}), MAX_ROWS) is None
    assert assert_answers_as_python(with_reader, python_path, request())


def test_a_batch_is_read_into_rows_in_the_features_order(
    with_reader: V2Decoder, python_path: V2Decoder
) -> None:
    assert with_reader._read_rows is not None
    body = json.dumps(
        {
            "id": "b-1",
            "inputs": [
                {"name": name, "shape": [3, 1], "datatype": "FP32", "data": [at + 1, at + 2, 4]}
                for at, name in reversed(list(enumerate(NAMES)))
            ],
        },
        ensure_ascii=False,
    ).encode()
    read = with_reader._read_rows(body, MAX_ROWS)
    assert read is not None
    values, rows, request_id = read
    expected = [[1, 2, 3, 4, 5], [2, 3, 4, 5, 6], [4, 4, 4, 4, 4]]
    assert rows == 3 and request_id == "b-1"
    assert np.frombuffer(values, dtype=np.float32).reshape(3, -1).tolist() == expected
    assert assert_answers_as_python(with_reader, python_path, body)


def test_a_batch_of_max_rows_is_read_and_one_more_row_is_declined(
    with_reader: V2Decoder, python_path: V2Decoder
) -> None:
    assert with_reader._read_rows is not None
    assert assert_answers_as_python(with_reader, python_path, batch(MAX_ROWS))
    assert with_reader._read_rows(batch(MAX_ROWS), MAX_ROWS - 1) is None
    # The shape is checked before the values; values past the limit are declined too.
    longer = batch(MAX_ROWS).replace(f"[{MAX_ROWS}]".encode(), b"[1]", 1)
    assert with_reader._read_rows(longer, MAX_ROWS) is None


def test_a_large_batch_is_read_as_the_large_body_path_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bodies from LARGE_BODY_BYTES on go to simdjson on the Python path.
    monkeypatch.setattr(v2, "LARGE_BODY_BYTES", 22 * 1024)
    require_reader()
    decoder = V2Decoder(RowDecoder(FEATURES, 1000, out_of_range="reject"))
    generator = np.random.default_rng(7)
    columns = {
        "a": generator.uniform(-5, 5, 1000).tolist(),
        "bb": generator.integers(0, 100, 1000).tolist(),
        "mean radius": generator.normal(14, 3, 1000).tolist(),
        "é": generator.uniform(0.5, 30, 1000).tolist(),
        "x_1": generator.integers(-(2**40), 2**40, 1000).tolist(),
    }
    body = json.dumps(
        {
            "inputs": [
                {"name": name, "shape": [1000], "datatype": "FP64", "data": data}
                for name, data in columns.items()
            ]
        },
        ensure_ascii=False,
    ).encode()
    assert len(body) > v2.LARGE_BODY_BYTES
    fast_feed, *fast_rest = decoder.decode_body(body)
    assert decoder._read_rows is not None and decoder._read_rows(body, 1000) is not None
    decoder._read_rows = None
    feed, *rest = decoder.decode_body(body)
    assert np.array_equal(fast_feed[NUMERIC_INPUT], feed[NUMERIC_INPUT])
    assert fast_rest == rest == [1000, list(V2_OUTPUTS), None, None]


# --- where the reader applies --------------------------------------------------------


def test_applies_to_models_of_numeric_features_only() -> None:
    require_reader()
    bounds = [(-1.0, 1.0), (-1.0, 1.0)]
    plain = FEATURES[:2]
    assert body_readers.v2_row_reader(plain, bounds, [1]) is not None
    category = FeatureSpec(name="c", dtype="category", onnx_type="string", allowed=["x"])
    assert body_readers.v2_row_reader([FEATURES[0], category], bounds, []) is None
    quoted = FeatureSpec(name='say "hi"', dtype="float", onnx_type="float32")
    assert body_readers.v2_row_reader([FEATURES[0], quoted], bounds, []) is None
    mixed = V2Decoder(RowDecoder([FEATURES[0], category], MAX_ROWS, out_of_range="reject"))
    assert mixed._read_rows is None


def test_arguments_are_checked() -> None:
    require_reader()
    reader_type = body_readers.V2RowReader
    assert reader_type is not None
    with pytest.raises(TypeError, match="a float per key"):
        reader_type((b"a", b"b"), (0.0,), (1.0, 1.0), (False, False))
    with pytest.raises(TypeError, match="a bool per key"):
        reader_type((b"a",), (0.0,), (1.0,), ())
    with pytest.raises(TypeError, match="non-empty tuple of bytes"):
        reader_type((), (), (), ())
    reader = reader_type((b"a",), (0.0,), (1.0,), (False,))
    with pytest.raises(TypeError, match="body must be bytes"):
        reader.read("{}", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes 2 arguments"):
        reader.read(b"{}")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="at least 1"):
        reader.read(b"{}", 0)
