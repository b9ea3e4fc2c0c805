"""Large V2 inference requests (batches), read in one simdjson parse.

A typed parse that yields Python floats spends most of a 1,000-row request making,
converting and freeing 30,000 float objects. simdjson parses the whole body in C; each
numeric tensor's data go from that parse straight into float64 values (`as_buffer`),
and the request's few other values (names, datatypes, shapes, outputs, id) are read from
its objects and typed here as msgspec types them for smaller requests.

The reader takes only the common form of a request: every key known and given once,
every value of its type, numeric data flat arrays of plain numbers and categorical data
arrays of strings. Anything else (nulls, booleans or strings among numbers, nested
arrays, numbers simdjson cannot read, a key given twice) gives None, and the caller falls
back to the checks that name each problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
import numpy as np
import simdjson

# The fields of an inference request and of its input tensors (the checks in `v2` name
# what breaks them).
REQUEST_FIELDS = frozenset({"inputs", "id", "parameters", "outputs"})
TENSOR_REQUIRED = frozenset({"name", "shape", "datatype", "data"})
TENSOR_FIELDS = TENSOR_REQUIRED | {"parameters"}
_BRACKET = ord("[")


class Output(NamedTuple):
    """An output asked for, as msgspec's typed form of `{"name": ...}` reads for smaller
    requests."""

    name: str


@dataclass(frozen=True)
class TensorKind:
    """What an input tensor of one name is read into: its typed form (a msgspec struct of
    shape, datatype, data and parameters), the datatypes it may declare and whether its
    data are numbers (else strings)."""

    tensor_type: type[msgspec.Struct]
    datatypes: frozenset[str]
    numeric: bool


@dataclass(frozen=True)
class LargeRequest:
    """A request as the reader read it: the typed input tensors (a numeric tensor's data
    its float64 values in a memoryview, a categorical one's a list of strings), the
    outputs asked for (None when not given) and the id."""

    inputs: list[Any]
    outputs: list[Output] | None
    id: str | None


class _UncommonError(Exception):
    """The body is not a request in the common form."""


class LargeRequests:
    """Reads large requests of one model (one reader per decoder: a simdjson parser keeps
    the buffers it grew for the largest body so far)."""

    def __init__(self, kinds: Mapping[str, TensorKind]) -> None:
        self._kinds = kinds
        self._parser = simdjson.Parser()
        self._tensor_keys: set[tuple[str, ...]] = set()  # the key orders found well formed

    def read(self, body: bytes) -> LargeRequest | None:
        """`body` read as a request in the common form; None for any other body."""
        try:
            return self._read(body)
        except (_UncommonError, ValueError, TypeError, KeyError, AttributeError):
            # ValueError: not JSON, or a number simdjson cannot read; TypeError: numeric
            # data that are not all numbers. These, KeyError and AttributeError also come
            # from a value of another type than the form's (`_tensor`).
            return None
        except RuntimeError:
            # An integer beyond 64 bits; also what a parser says when a document it backs
            # is still held somewhere: the next request gets a new parser.
            self._parser = simdjson.Parser()
            return None

    def _read(self, body: bytes) -> LargeRequest:
        document = self._parser.parse(body)
        if not isinstance(document, simdjson.Object):
            raise _UncommonError
        fields = _fields(tuple(document.keys()))
        if not fields <= REQUEST_FIELDS or "inputs" not in fields:
            raise _UncommonError
        request_id = document["id"] if "id" in fields else ""
        if not isinstance(request_id, str):
            raise _UncommonError
        if "parameters" in fields and not isinstance(document["parameters"], simdjson.Object):
            raise _UncommonError
        inputs = document["inputs"]
        if not isinstance(inputs, simdjson.Array):
            raise _UncommonError
        names: list[str] = []
        tensors = [self._tensor(tensor, names) for tensor in inputs]
        outputs = _outputs(document.get("outputs"))
        # Every array the form has: inputs, each tensor's shape and data, and outputs; so
        # no tensor's data nest an array (simdjson's `as_buffer` would flatten one into
        # the values). A '[' in a string read is one more, as the text holds it.
        strings = [request_id, *(output.name for output in outputs or ()), *names]
        in_strings = sum(text.count("[") for text in strings)
        if in_strings and b"\\" in body:
            raise _UncommonError  # an escaped '[' is not in the text: left to the checks
        expected = 1 + 2 * len(tensors) + (outputs is not None) + in_strings
        if _brackets(body) != expected:
            raise _UncommonError
        return LargeRequest(
            inputs=tensors, outputs=outputs, id=request_id if "id" in fields else None
        )

    def _tensor(self, tensor: Any, names: list[str]) -> Any:
        """The typed form of one input tensor; its name is added to `names`. A value of
        another type than the form's fails the lookup or method it meets (KeyError,
        AttributeError, TypeError)."""
        keys = tuple(tensor.keys())
        if keys not in self._tensor_keys:
            if not TENSOR_REQUIRED <= _fields(keys) <= TENSOR_FIELDS:
                raise _UncommonError
            self._tensor_keys.add(keys)  # at most the orders of five keys
        name = tensor["name"]
        kind = self._kinds[name]
        datatype = tensor["datatype"]
        if datatype not in kind.datatypes:
            raise _UncommonError
        sizes = tensor["shape"].as_list()
        if set(map(type, sizes)) - {int}:
            raise _UncommonError
        if kind.numeric:
            # float64 values, counted by len()
            values: Any = memoryview(tensor["data"].as_buffer(of_type="d")).cast("d")
        else:
            values = tensor["data"].as_list()
            if set(map(type, values)) - {str}:
                raise _UncommonError
        names.append(name)
        return kind.tensor_type(sizes, datatype, values)


def _fields(keys: Sequence[str]) -> frozenset[str]:
    """A JSON object's keys as a set; one given twice is refused (parsers disagree on
    which of its values counts)."""
    fields = frozenset(keys)
    if len(fields) != len(keys):
        raise _UncommonError
    return fields


def _outputs(requested: Any) -> list[Output] | None:
    """The outputs asked for (None when not given, or null): an array of objects, each
    with a string name (other keys are ignored, as the checks ignore them)."""
    if requested is None:
        return None
    if not isinstance(requested, simdjson.Array):
        raise _UncommonError
    outputs: list[Output] = []
    for item in requested:
        if not isinstance(item, simdjson.Object):
            raise _UncommonError
        _fields(tuple(item.keys()))
        name = item.get("name")
        if type(name) is not str:
            raise _UncommonError
        outputs.append(Output(name))
    return outputs


def _brackets(body: bytes) -> int:
    """How many '[' the body's text holds (numpy: several times faster than bytes.count)."""
    return int(np.count_nonzero(np.frombuffer(body, dtype=np.uint8) == _BRACKET))
