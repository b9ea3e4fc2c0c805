"""The large-request reader (simdjson) takes only requests in the common form, and every
body gets the checked path's answer whichever path reads it.

Bodies are written as text, so that keys given twice, escapes and numbers no Python
value writes can be sent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tabml.serve import v2
from tabml.serve.http import parse_json
from tabml.serve.problems import RequestError
from tabml.serve.v2 import V2Decoder
from tests.serve.conftest import ExportedModel
from tests.serve.test_v2_decoder import decoder_of, per_feature

SIZE = '{"name": "size", "shape": [2, 1], "datatype": "FP32", "data": [12.5, 40.0]}'
COUNT = '{"name": "count", "shape": [2, 1], "datatype": "INT64", "data": [3, 7]}'
COLOUR = '{"name": "colour", "shape": [2, 1], "datatype": "BYTES", "data": ["red", "blue"]}'


def request(size: str = SIZE, count: str = COUNT, colour: str = COLOUR, extra: str = "") -> bytes:
    return f'{{"inputs": [{size}, {count}, {colour}]{extra}}}'.encode()


def size(**fields: str) -> str:
    """The size tensor with some of its fields' JSON text replaced."""
    text = {"name": '"size"', "shape": "[2, 1]", "datatype": '"FP32"', "data": "[12.5, 40.0]"}
    text.update(fields)
    return "{" + ", ".join(f'"{key}": {value}' for key, value in text.items()) + "}"


READ = {
    "plain": request(),
    "spaces": request().replace(b", ", b" ,\n\t ").replace(b": ", b" :  "),
    "id": request(extra=', "id": "request-1"'),
    "id-empty": request(extra=', "id": ""'),
    "id-with-brackets": request(extra=', "id": "batch [1] of [2]"'),
    "parameters": request(extra=', "parameters": {"content_type": "np"}'),
    "tensor-parameters": request(size=size(parameters="{}")),
    "null-tensor-parameters": request(size=size(parameters="null")),
    "outputs": request(extra=', "outputs": [{"name": "probabilities"}]'),
    "outputs-with-parameters": request(
        extra=', "outputs": [{"name": "label", "parameters": {"binary_data": false}}]'
    ),
    "outputs-null": request(extra=', "outputs": null'),
    "ints-for-floats": request(size=size(data="[12, 40]")),
    "exponents": request(size=size(data="[1.25e1, 4E+1]")),
    "flat-shape": request(size=size(shape="[2]")),
    "escaped-quote-in-id": request(extra=', "id": "a \\"quoted\\" id"'),
}

REFUSED = {
    "not-json": request()[:-1],
    "trailing-text": request() + b" x",
    "an-array": b"[" + request() + b"]",
    "inputs-twice": request(extra=f', "inputs": [{SIZE}]'),
    "key-twice-in-a-tensor": request(size=size(name='"size", "name": "count"')),
    "key-twice-in-an-output": request(extra=', "outputs": [{"name": "label", "name": "x"}]'),
    "unknown-field": request(extra=', "model": "x"'),
    "id-null": request(extra=', "id": null'),
    "id-number": request(extra=', "id": 7'),
    "parameters-null": request(extra=', "parameters": null'),
    "parameters-array": request(extra=', "parameters": [1]'),
    "parameters-holding-an-array": request(extra=', "parameters": {"a": [1]}'),
    "no-inputs": b'{"id": "x"}',
    "inputs-an-object": b'{"inputs": {}}',
    "tensor-not-an-object": request(size="[1]"),
    "tensor-unknown-field": request(size=size(rows="2")),
    "tensor-no-data": request(size=size().replace(', "data": [12.5, 40.0]', "")),
    "name-a-number": request(size=size(name="1")),
    "name-unknown": request(size=size(name='"weight"')),
    "datatype-bytes-for-a-number": request(size=size(datatype='"BYTES"')),
    "datatype-a-number": request(size=size(datatype="32")),
    "datatype-float-for-a-category": request(colour=COLOUR.replace('"BYTES"', '"FP32"')),
    "shape-a-float": request(size=size(shape="[2.0, 1]")),
    "shape-a-boolean": request(size=size(shape="[2, true]")),
    "shape-an-object": request(size=size(shape='{"rows": 2}')),
    "data-an-object": request(size=size(data='{"a": 1}')),
    "data-null": request(size=size(data="[null, 40.0]")),
    "data-a-string": request(size=size(data='["12.5", 40.0]')),
    "data-a-boolean": request(size=size(data="[true, 40.0]")),
    "data-nested": request(size=size(data="[[12.5], [40.0]]")),
    # The flattened count matches the rows: only the brackets tell.
    "data-nested-unevenly": request(size=size(data="[[12.5, 40.0], []]")),
    "data-beyond-float64": request(size=size(data="[1e400, 40.0]")),
    "data-beyond-64-bits": request(count=COUNT.replace("[3, 7]", "[18446744073709551616, 7]")),
    "category-a-number": request(colour=COLOUR.replace('"blue"', "7")),
    "category-null": request(colour=COLOUR.replace('"blue"', "null")),
    "outputs-an-object": request(extra=', "outputs": {"name": "label"}'),
    "output-a-string": request(extra=', "outputs": ["label"]'),
    "output-name-a-number": request(extra=', "outputs": [{"name": 1}]'),
    # An escaped '[' is not in the text: an array hidden behind it must not pass.
    "escaped-bracket-in-id": request(extra=', "id": "a \\u005b b"'),
}


@pytest.fixture(autouse=True)
def every_body_is_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(v2, "LARGE_BODY_BYTES", 0)


def test_the_cases_are_what_they_say(mixed_model: ExportedModel) -> None:
    """The plain body is the one per_feature builds, and the no-data case lacks only data."""
    assert json.loads(READ["plain"]) == per_feature([12.5, 40.0], [3, 7], ["red", "blue"])
    assert json.loads(REFUSED["tensor-no-data"])["inputs"][0] == {
        "name": "size",
        "shape": [2, 1],
        "datatype": "FP32",
    }


@pytest.mark.parametrize("name", list(READ))
def test_common_requests_are_read(mixed_model: ExportedModel, name: str) -> None:
    decoder = decoder_of(mixed_model)
    assert decoder._large_requests.read(READ[name]) is not None
    assert _answer(decoder, READ[name]) == _checked(decoder, READ[name])


@pytest.mark.parametrize("name", list(REFUSED))
def test_anything_else_is_left_to_the_checks(mixed_model: ExportedModel, name: str) -> None:
    decoder = decoder_of(mixed_model)
    assert decoder._large_requests.read(REFUSED[name]) is None
    assert _answer(decoder, REFUSED[name]) == _checked(decoder, REFUSED[name])


def test_a_refusal_leaves_the_reader_usable(mixed_model: ExportedModel) -> None:
    reader = decoder_of(mixed_model)._large_requests
    for name in ("data-beyond-64-bits", "data-a-string", "not-json", "data-nested"):
        assert reader.read(REFUSED[name]) is None, name
        read = reader.read(READ["plain"])
        assert read is not None and read.inputs[0].data.tolist() == [12.5, 40.0]


def test_a_read_request_holds_typed_tensors(mixed_model: ExportedModel) -> None:
    read = decoder_of(mixed_model)._large_requests.read(READ["outputs-with-parameters"])
    assert read is not None
    assert read.outputs is not None
    assert ([output.name for output in read.outputs], read.id) == (["label"], None)
    sizes, counts, colours = read.inputs
    assert (sizes.shape, sizes.datatype, sizes.data.tolist()) == ([2, 1], "FP32", [12.5, 40.0])
    assert (counts.shape, counts.data.tolist()) == ([2, 1], [3.0, 7.0])
    assert sizes.data.format == "d"  # float64
    assert colours.data == ["red", "blue"]


def _answer(decoder: V2Decoder, body: bytes) -> Any:
    try:
        feed, rows, outputs, outside, request_id = decoder.decode_body(body)
    except RequestError as error:
        return error.status, error.message
    columns = {name: str(values.tolist()) for name, values in feed.items()}
    return columns, rows, outputs, None if outside is None else outside.tolist(), request_id


def _checked(decoder: V2Decoder, body: bytes) -> Any:
    try:
        payload = parse_json(body)
        feed, rows, outputs, outside = decoder.decode(payload)
    except RequestError as error:
        return error.status, error.message
    columns = {name: str(values.tolist()) for name, values in feed.items()}
    outside_list = None if outside is None else outside.tolist()
    return columns, rows, outputs, outside_list, payload.get("id")
