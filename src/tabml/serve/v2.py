"""The Open Inference Protocol (KServe V2): inference requests and responses.

A request carries one input tensor per feature, or, for the numeric features, one packed
`[rows, numeric features]` tensor named as the graph's numeric input (the columns in
metadata order, as GET /v2/models/{name} lists them) beside a tensor per categorical
feature. `V2Decoder` checks them and builds the same onnxruntime feed as the REST rows
give, with the categorical and numeric checks of `decode.RowDecoder` and the numeric rule
of `numbers`.

Most requests are well formed, so `decode_body` first tries readers that accept only
requests every check passes: for a model of numeric features only, a C reader of a
tensor per feature (`body_readers`); then a typed parse (msgspec: a single row in
metadata order as one fixed tuple, else a tagged union of tensors; for a large body
simdjson, `v2_large`). Anything else goes to `decode`, whose checks name every problem.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import Annotated, Any, Literal, Union

import msgspec
import numpy as np
import orjson
from numpy.typing import NDArray

from tabml.contract import LABEL_OUTPUT, NUMERIC_INPUT, PROBABILITIES_OUTPUT
from tabml.serve.body_readers import v2_row_reader
from tabml.serve.decode import Feed, RowDecoder, locator
from tabml.serve.http import parse_json
from tabml.serve.model import FeatureSpec, OnnxModel
from tabml.serve.numbers import Outside, numbers, whole_at
from tabml.serve.numbers import whole as numbers_whole
from tabml.serve.problems import MAX_PROBLEMS, Problem, RequestError
from tabml.serve.v2_large import (
    REQUEST_FIELDS,
    TENSOR_FIELDS,
    TENSOR_REQUIRED,
    LargeRequests,
    TensorKind,
)

V2_NUMERIC_TYPES = frozenset(
    {
        "FP16",
        "FP32",
        "FP64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
    }
)
V2_OUTPUTS = (LABEL_OUTPUT, PROBABILITIES_OUTPUT)
# Where the model metadata describes the packed numeric input.
PACKED_PARAMETER = "packed_numeric_input"
# One numeric column of a checked request: the tensor's index in `inputs`, the feature,
# its values, whether they must be whole numbers and where value i sits in the request.
_Column = tuple[int, FeatureSpec, list[Any], bool, Callable[[int], str]]


class _Output(msgspec.Struct, gc=False):
    name: str


_shape = operator.attrgetter("shape")
_data = operator.attrgetter("data")
_datatype = operator.attrgetter("datatype")
_first = operator.itemgetter(0)
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
_BYTES = frozenset({"BYTES"})
# From this size on, a body is read by simdjson (`v2_large`), its numeric data straight
# into arrays, rather than parsed by msgspec into Python floats. Measured on the
# breast-cancer model's 30 features, one tensor each, decode_body in µs, simdjson
# against msgspec: 1,000 rows (243 KB) 517 against 1,358; 100 rows (26 KB) 132 against
# 149; 80 rows (22 KB) 130 against 134; 70 rows (19 KB) 127 against 120; a single row
# (2.5 KB) 88 against 13 (reading each tensor from Python costs about 3 µs).
LARGE_BODY_BYTES = 22 * 1024
# A one-row tensor's shape: [1] or [1, 1].
_ONE_ROW_SHAPE = Annotated[list[Literal[1]], msgspec.Meta(min_length=1, max_length=2)]


@dataclass(frozen=True)
class _TypedRequests:
    """A typed decoder of inference requests and the tensor types it yields: one per
    input, in the order the feed takes them (the numeric features in metadata order, then
    the categorical ones), and the packed numeric input's."""

    in_order: list[type[msgspec.Struct]]
    packed_type: type[msgspec.Struct] | None
    column_kinds: frozenset[type[msgspec.Struct]]
    packed_kinds: frozenset[type[msgspec.Struct]]
    # Whether numeric tensors' data are float64 memoryviews (read by `v2_large`).
    raw: bool
    # Whether every tensor is typed as one row: its shape [1] or [1, 1] (the packed
    # tensor's [1, numeric features]) and its data that many values; its numeric
    # datatypes are then the float ones, so only the int features' values need a
    # whole-number check (a row in an integer datatype is read by the next form).
    one_row: bool


class V2Decoder:
    """Checks inference requests against the feature schema and builds the onnxruntime feed."""

    def __init__(self, records: RowDecoder) -> None:
        self.records = records
        self.by_name = records.by_name
        self.rule = records.rule
        self.max_rows = records.max_rows
        self.width = len(records.numeric)
        # The graph's numeric input, as one tensor: offered when there are numeric
        # features and none of the features takes its name.
        self.packs = bool(self.width) and NUMERIC_INPUT not in self.by_name
        self._one_row = _typed_requests(records, self.rule.bounds, packs=self.packs, one_row=True)
        self._small = _typed_requests(records, self.rule.bounds, packs=self.packs)
        self._large = _typed_requests(records, self.rule.bounds, packs=self.packs, raw=True)
        self._decoders = [
            (typed, _request_decoder(_tensor_union(typed)))
            for typed in (self._one_row, self._small)
        ]
        # A single row with its tensors in metadata order, the order GET /v2/models/{name}
        # lists them: read as a fixed tuple, so neither the tensors' order nor their
        # types need a look of their own.
        self._row_in_order = _request_decoder(_row_in_order_type(records, self.rule.bounds))
        # Only a body naming the first feature (as orjson writes its name: a client that
        # escapes non-ASCII goes the slower way) is tried in that form first, so that most
        # others, such as the packed tensor after numeric features, pay no failed parse
        # (about 1 µs) before their own.
        self._first_name = orjson.dumps(records.features[0].name) if records.features else b""
        numeric_at = [at for at, feature in enumerate(records.features) if feature.numeric]
        self._numeric_of: Callable[[tuple[Any, ...]], Any] = (
            operator.itemgetter(slice(0, self.width))
            if numeric_at == list(range(self.width))
            else lambda inputs: [inputs[at] for at in numeric_at]
        )
        self._categorical_at = [
            (at, feature.name, records.allowed[feature.name])
            for at, feature in enumerate(records.features)
            if not feature.numeric
        ]
        self._large_requests = LargeRequests(_tensor_kinds(self._large, records))
        self._lower = [lower for lower, _ in self.rule.bounds]
        self._upper = [upper for _, upper in self.rule.bounds]
        # The C reader of rows with a tensor per feature, for a model of numeric features
        # only (`body_readers`); None where it does not apply or was not built.
        self._read_rows = v2_row_reader(records.features, self.rule.bounds, self.rule.int_columns)

    def decode_body(self, body: bytes) -> tuple[Feed, int, list[str], Outside, str | None]:
        """The feed, the row count, the outputs asked for, where values lie outside their
        schema ranges and the request's id, for a request body."""
        fast = self.decode_well_formed(body)
        if fast is not None:
            return (*fast[:3], None, fast[3])
        payload = parse_json(body)
        feed, rows, outputs, outside = self.decode(payload)
        return feed, rows, outputs, outside, payload.get("id")

    # --- the common case: a request every check passes, parsed and typed in one pass ---

    def decode_well_formed(self, body: bytes) -> tuple[Feed, int, list[str], str | None] | None:
        """The feed, the row count, the outputs and the id of a request that passes every
        check of `decode` with its values within their schema ranges and its tensors'
        data flat; None for any other, which `decode` then describes.

        msgspec parses each tensor into the type of the feature it names (a tagged
        union), so the types of names, datatypes and values are checked as the JSON is
        read; what is left (shapes, lengths, ranges) is checked a whole request at a
        time. A single row with its tensors in metadata order is read as one fixed tuple
        of one-value tensors, whose order and types then need no check of their own. A
        large body is read by simdjson (`v2_large`), its numeric data straight into
        arrays. Before all of these, for a model of numeric features only, the C reader
        (`body_readers`) tries rows with a tensor per feature."""
        if self._read_rows is not None:
            read = self._read_rows(body, self.max_rows)
            if read is not None:
                numeric = np.frombuffer(read[0], dtype=np.float32).reshape(read[1], -1)
                return {NUMERIC_INPUT: numeric}, read[1], list(V2_OUTPUTS), read[2]
        if len(body) < LARGE_BODY_BYTES and self._first_name in body:
            try:
                row = self._row_in_order.decode(body)
            except msgspec.DecodeError:  # also raised for JSON that breaks the types
                pass
            else:
                return self._well_formed_row(row)
        parsed = self._parse_typed(body)
        if parsed is None:
            return None
        typed, request = parsed
        outputs = self._well_formed_outputs(request.outputs)
        inputs = request.inputs
        if outputs is None or not inputs or not inputs[0].shape:
            return None
        rows = inputs[0].shape[0]
        if not 0 < rows <= self.max_rows:
            return None
        kinds = list(map(type, inputs))
        if kinds != typed.in_order:
            # Any other order, or the numeric features packed: every input once.
            expected = typed.packed_kinds if typed.packed_type in kinds else typed.column_kinds
            # The same set, and each once: a feature sent twice in place of a missing
            # one has the right count and only known names, but would shift the columns.
            if len(kinds) != len(expected) or frozenset(kinds) != expected:
                return None
            inputs = sorted(inputs, key=_order)
        packed = inputs[0] if type(inputs[0]) is typed.packed_type else None
        columns = inputs[1:] if packed is not None else inputs
        categorical = columns[self.width :] if packed is None else columns
        if not typed.one_row and not self._shapes_hold(columns, rows):
            return None
        feed: Feed = {}
        for tensor, feature in zip(categorical, self.records.categorical):  # noqa: B905
            if not self.records.allowed[feature.name].issuperset(tensor.data):
                return None
            feed[feature.name] = np.array(tensor.data, dtype=object).reshape(-1, 1)
        if self.width:
            if packed is not None:
                if list(packed.shape) != [rows, self.width]:  # type: ignore[attr-defined]
                    return None
                tensors = [packed]
            else:
                tensors = columns[: self.width]
            values = self._well_formed_numeric(tensors, rows, typed, packed=packed is not None)
            if values is None:
                return None
            feed[NUMERIC_INPUT] = values
        request_id = request.id if isinstance(request.id, str) else None
        return feed, rows, outputs, request_id

    def _well_formed_row(self, request: Any) -> tuple[Feed, int, list[str], str | None] | None:
        """The feed, the outputs and the id of a single row read in metadata order (its
        tensors typed one value each, the numbers within their bounds and in a float
        datatype), when its int features' values are whole and its categories known."""
        outputs = self._well_formed_outputs(request.outputs)
        if outputs is None:
            return None
        inputs = request.inputs
        feed: Feed = {}
        for at, name, allowed in self._categorical_at:
            value = inputs[at].data[0]
            if value not in allowed:
                return None
            feed[name] = np.array([[value]], dtype=object)
        if self.width:
            values = list(map(_first, map(_data, self._numeric_of(inputs))))
            if not self.rule.row_holds(values):
                return None
            feed[NUMERIC_INPUT] = np.array([values], dtype=np.float32)
        return feed, 1, outputs, request.id if isinstance(request.id, str) else None

    def _parse_typed(self, body: bytes) -> tuple[_TypedRequests, Any] | None:
        """The typed form that takes `body`, and the request parsed into it. A small body
        is tried as one row first: a batch's first shape ends that try at once."""
        if len(body) >= LARGE_BODY_BYTES:
            request = self._large_requests.read(body)
            return None if request is None else (self._large, request)
        for typed, decoder in self._decoders:
            try:
                return typed, decoder.decode(body)
            except msgspec.DecodeError:  # also raised for JSON that breaks the types
                continue
        return None

    @staticmethod
    def _shapes_hold(columns: list[Any], rows: int) -> bool:
        """Whether each tensor of one column is shaped [rows] or [rows, 1] and holds
        `rows` values."""
        # Whole-list comparisons in C for the usual shapes; a mix goes value by value.
        shapes = list(map(_shape, columns))
        if shapes != [[rows, 1]] * len(columns) and shapes != [[rows]] * len(columns):
            allowed = ([rows], [rows, 1])
            if not all(map(allowed.__contains__, shapes)):
                return False
        return list(map(len, map(_data, columns))) == [rows] * len(columns)

    def _well_formed_numeric(
        self, tensors: list[Any], rows: int, typed: _TypedRequests, *, packed: bool
    ) -> NDArray[np.float32] | None:
        """The [rows, numeric features] feed from the packed tensor or one tensor per
        numeric feature (in metadata order), when every value keeps the numeric rule."""
        # The one-row form's numeric datatypes are floats: only int features are whole.
        whole = (
            self.rule.int_columns if typed.one_row else self._whole_columns(tensors, packed=packed)
        )
        if packed and len(tensors[0].data) != rows * self.width:
            return None
        if typed.raw:
            # float64 values, one copy into one array; each tensor of one column holds
            # `rows` values (`_shapes_hold`).
            flat = np.frombuffer(b"".join(map(_data, tensors)), dtype=np.float64)
            block = flat.reshape(rows, self.width).T if packed else flat.reshape(self.width, rows)
        elif not packed:
            # One tensor per feature: the typed parse held each value within its feature's
            # bounds; only whole numbers are left to check.
            if rows == 1:
                values = list(map(_first, map(_data, tensors)))
                if not whole_at(values, whole):
                    return None
                return np.array([values], dtype=np.float32)
            block = np.array(list(map(_data, tensors)), dtype=np.float64)
            if whole and not numbers_whole(block[whole]):
                return None
            return np.ascontiguousarray(block.T, dtype=np.float32)
        else:
            data = tensors[0].data
            if rows == 1:
                return self._packed_row(data, whole)
            block = np.array(data, dtype=np.float64).reshape(rows, self.width).T
        if not self.rule.columns_hold(block, whole):
            return None
        return np.ascontiguousarray(block.T, dtype=np.float32)

    def _whole_columns(self, tensors: list[Any], *, packed: bool) -> list[int]:
        """The numeric columns whose values must be whole numbers: the int features', and
        every column a tensor of an integer datatype carries."""
        datatypes = set(map(_datatype, tensors))
        if datatypes <= _FLOAT_TYPES:
            return self.rule.int_columns
        if packed or not datatypes & _FLOAT_TYPES:
            return list(range(self.width))  # integer tensors hold whole numbers
        return [
            position
            for position, tensor in enumerate(tensors)
            if tensor.datatype not in _FLOAT_TYPES or position in self.rule.int_columns
        ]

    def _packed_row(self, data: list[float], whole: list[int]) -> NDArray[np.float32] | None:
        """One packed row, held to its bounds here (the typed parse holds a tensor per
        feature to its bounds as it reads it)."""
        if not (
            all(map(operator.le, self._lower, data))
            and all(map(operator.le, data, self._upper))
            and whole_at(data, whole)
        ):
            return None
        return np.array([data], dtype=np.float32)

    @staticmethod
    def _well_formed_outputs(requested: list[Any] | None) -> list[str] | None:
        """The names of the outputs asked for (typed {"name": ...} objects), once each."""
        if requested is None:
            return list(V2_OUTPUTS)
        names: list[str] = []
        for item in requested:
            if item.name not in V2_OUTPUTS:
                return None
            if item.name not in names:
                names.append(item.name)
        return names or None

    # --- any request: every problem named ------------------------------------------

    def decode(self, payload: Any) -> tuple[Feed, int, list[str], Outside]:
        """The feed, the row count, the names of the outputs the client asked for and
        where values lie outside their schema ranges."""
        self._check_request_fields(payload)
        outputs = self._outputs(payload.get("outputs"))
        inputs = payload.get("inputs")
        if not isinstance(inputs, list):
            raise RequestError.one(
                400,
                "inputs",
                "must be an array of input tensors, one per feature",
                value=inputs,
                has_value="inputs" in payload,
            )
        packed = self._check_inputs_named(inputs)
        rows = self._rows(inputs)
        feed, outside = self._checked_feed(inputs, rows, packed=packed)
        return feed, rows, outputs, outside

    @staticmethod
    def _check_request_fields(payload: Any) -> None:
        """An object of only the request's fields, its id a string and its parameters an
        object."""
        if not isinstance(payload, dict):
            raise RequestError.one(
                400, "body", "must be a JSON object with an 'inputs' array", value=payload
            )
        unknown = sorted(set(payload) - REQUEST_FIELDS)
        if unknown:
            raise RequestError(
                400,
                [
                    Problem(
                        name,
                        "not a field of an inference request (id, parameters, inputs, outputs)",
                        payload[name],
                    )
                    for name in unknown
                ],
            )
        if "id" in payload and not isinstance(payload["id"], str):
            raise RequestError.one(400, "id", "must be a string", value=payload["id"])
        if "parameters" in payload and not isinstance(payload["parameters"], dict):
            raise RequestError.one(
                400, "parameters", "must be an object", value=payload["parameters"]
            )

    def _check_inputs_named(self, inputs: list[Any]) -> bool:
        """Every input an object naming a feature (or the packed numeric input) once, and
        every feature given; whether the numeric features come packed. Every problem is
        named at once."""
        tensors: dict[str, dict[str, Any]] = {}
        problems: list[Problem] = []
        for index, tensor in enumerate(inputs):
            where = f"inputs[{index}]"
            if not isinstance(tensor, dict):
                problems.append(
                    Problem(where, "must be an object with name, shape, datatype and data", tensor)
                )
                continue
            name = tensor.get("name")
            # A list or an object is no name (and cannot be looked up: it is unhashable).
            if not isinstance(name, str) or (
                name not in self.by_name and not (name == NUMERIC_INPUT and self.packs)
            ):
                problems.append(
                    Problem(
                        f"{where}.name",
                        "not a feature of this model (GET /v2/models/{name} lists the inputs)",
                        name,
                    )
                )
            elif name in tensors:
                problems.append(Problem(f"{where}.name", "feature given twice", name))
            else:
                tensors[name] = tensor
        packed = NUMERIC_INPUT in tensors and self.packs
        if packed:
            problems += self._packed_twice(inputs)
        for name, feature in self.by_name.items():
            if (
                name not in tensors
                and not (packed and feature.numeric)
                and len(problems) <= MAX_PROBLEMS
            ):
                problems.append(
                    Problem(f"inputs[name={name}]", "required input is missing", has_value=False)
                )
        if problems:
            raise RequestError(400, problems)
        return packed

    def _packed_twice(self, inputs: list[Any]) -> list[Problem]:
        """The numeric features given alone beside the packed numeric input."""
        problems: list[Problem] = []
        for index, tensor in enumerate(inputs):
            name = tensor.get("name") if isinstance(tensor, dict) else None
            feature = self.by_name.get(name) if isinstance(name, str) else None
            if feature is not None and feature.numeric:
                problems.append(
                    Problem(
                        f"inputs[{index}].name",
                        f"numeric feature given alone and in the packed {NUMERIC_INPUT!r} "
                        "tensor; send one or the other",
                        feature.name,
                    )
                )
        return problems

    def _checked_feed(
        self, inputs: list[dict[str, Any]], rows: int, *, packed: bool
    ) -> tuple[Feed, Outside]:
        """The feed of named, shaped inputs, each datatype and value checked, and where
        values lie outside their schema ranges."""
        feed: Feed = {}
        numeric: list[_Column] = []
        for index, tensor in enumerate(inputs):
            name = tensor["name"]
            datatype = tensor["datatype"]
            if name == NUMERIC_INPUT and packed:
                self._check_numeric_type(index, datatype, f"input {name!r} is numeric")
                numeric.extend(self._packed_columns(index, tensor, datatype))
                continue
            feature = self.by_name[name]
            data = _flatten_rows(tensor["data"], 1)
            if feature.numeric:
                self._check_numeric_type(index, datatype, f"feature {name!r} is numeric")
                integral = feature.dtype == "int" or not datatype.startswith("FP")
                locate = locator(_tensor_prefix(index), "")
                numeric.append((index, feature, data, integral, locate))
            else:
                if datatype != "BYTES":
                    raise RequestError.one(
                        400,
                        f"inputs[{index}].datatype",
                        f"feature {name!r} is categorical: use BYTES",
                        value=datatype,
                    )
                locate = locator(_tensor_prefix(index), "")
                try:
                    feed[name] = self.records.categorical_column(feature, data, locate)
                except RequestError as error:
                    raise RequestError(400, error.problems) from None
        outside = self._numeric_feed(numeric, rows, feed) if numeric else None
        return feed, outside

    @staticmethod
    def _check_numeric_type(index: int, datatype: str, what: str) -> None:
        if datatype not in V2_NUMERIC_TYPES:
            raise RequestError.one(
                400,
                f"inputs[{index}].datatype",
                f"{what}: use one of {sorted(V2_NUMERIC_TYPES)}",
                value=datatype,
            )

    def _packed_columns(self, index: int, tensor: dict[str, Any], datatype: str) -> list[_Column]:
        """The packed numeric tensor's columns, one per numeric feature, in metadata order;
        value i of a column is named by its row and feature."""
        data = _flatten_rows(tensor["data"], self.width)
        whole = not datatype.startswith("FP")
        columns: list[_Column] = []
        for position, feature in enumerate(self.records.numeric):
            locate = locator(_tensor_prefix(index), f"[{feature.name}]")
            column = data[position :: self.width]
            columns.append((index, feature, column, whole or feature.dtype == "int", locate))
        return columns

    def _numeric_feed(self, numeric: list[_Column], rows: int, feed: Feed) -> Outside:
        # Fast path: every numeric tensor in one array ([features, rows]); any problem
        # (or a value outside its range) sends the request to the value-by-value checks,
        # which name the tensor and value. The graph takes the columns in metadata order,
        # whatever the request's order; every numeric feature is an input.
        numeric = sorted(numeric, key=lambda item: self.rule.position[item[1].name])
        flat = list(chain.from_iterable(item[2] for item in numeric))
        block = numbers(flat, (len(numeric), rows))
        integral = [position for position, item in enumerate(numeric) if item[3]]
        if block is not None and self.rule.columns_hold(block, integral):
            feed[NUMERIC_INPUT] = np.ascontiguousarray(block.T, dtype=np.float32)
            return None
        problems: list[Problem] = []
        columns: dict[str, list[float]] = {}
        # Checked in request order, so problems are listed the way the client sent them.
        for _, feature, data, whole, locate in sorted(numeric, key=lambda item: item[0]):
            columns[feature.name] = self.rule.check_column(
                feature, data, locate, problems, integral=whole
            )
        if problems:
            raise RequestError(400, problems)
        wide = np.array([columns[name] for name in self.records.numeric_names], dtype=np.float64).T
        feed[NUMERIC_INPUT] = np.ascontiguousarray(wide, dtype=np.float32)
        return self.rule.outside(wide)

    def _outputs(self, requested: Any) -> list[str]:
        if requested is None:
            return list(V2_OUTPUTS)
        if not isinstance(requested, list) or not requested:
            raise RequestError.one(
                400,
                "outputs",
                'must be a non-empty array of {"name": ...} objects',
                value=requested,
            )
        names: list[str] = []
        for index, item in enumerate(requested):
            name = item.get("name") if isinstance(item, dict) else None
            if name not in V2_OUTPUTS:
                raise RequestError.one(
                    400,
                    f"outputs[{index}]",
                    f"must be an object naming one of {list(V2_OUTPUTS)}",
                    value=item,
                )
            if name not in names:
                names.append(name)
        return names

    def _rows(self, inputs: list[dict[str, Any]]) -> int:
        rows: int | None = None
        for index, tensor in enumerate(inputs):
            where = f"inputs[{index}]"
            if not TENSOR_REQUIRED <= tensor.keys() <= TENSOR_FIELDS:
                for key in ("shape", "datatype", "data"):
                    if key not in tensor:
                        raise RequestError.one(
                            400, f"{where}.{key}", "is required", has_value=False
                        )
                extra = sorted(set(tensor) - TENSOR_FIELDS)
                raise RequestError.one(
                    400,
                    f"{where}.{extra[0]}",
                    "not a field of an input tensor (name, shape, datatype, parameters, data)",
                    value=tensor[extra[0]],
                )
            shape = tensor["shape"]
            width = self.width if tensor["name"] == NUMERIC_INPUT and self.packs else 1
            if width == 1 and (
                not isinstance(shape, list)
                or not 1 <= len(shape) <= 2
                or any(type(size) is not int for size in shape)
                or (len(shape) == 2 and shape[1] != 1)
            ):
                raise RequestError.one(
                    400, f"{where}.shape", "must be [rows] or [rows, 1]", value=shape
                )
            if width != 1 and (
                not isinstance(shape, list)
                or len(shape) != 2
                or any(type(size) is not int for size in shape)
                or shape[1] != width
            ):
                raise RequestError.one(
                    400,
                    f"{where}.shape",
                    f"must be [rows, {width}]: one column per numeric feature, in the order "
                    f"GET /v2/models/{{name}} lists them under parameters.{PACKED_PARAMETER}",
                    value=shape,
                )
            if not isinstance(tensor["datatype"], str):
                raise RequestError.one(
                    400, f"{where}.datatype", "must be a string", value=tensor["datatype"]
                )
            if rows is None:
                rows = shape[0]
                if rows < 1:
                    raise RequestError.one(
                        400, f"{where}.shape", "needs at least one row", value=shape
                    )
                if rows > self.max_rows:
                    raise RequestError.one(
                        400,
                        f"{where}.shape",
                        f"at most {self.max_rows} rows (TABML_MAX_BATCH_ROWS)",
                        value=shape,
                    )
            elif shape[0] != rows:
                raise RequestError.one(
                    400,
                    f"{where}.shape",
                    f"every input needs the same number of rows; the first input has {rows}",
                    value=shape,
                )
            data = tensor["data"]
            if not isinstance(data, list):
                raise RequestError.one(400, f"{where}.data", "must be an array", value=data)
            count = len(_flatten_rows(data, width))
            if count != rows * width:
                raise RequestError.one(
                    400,
                    f"{where}.data",
                    f"holds {count} values; shape {shape} needs {rows * width}",
                    has_value=False,
                )
        assert rows is not None  # every feature is an input, and there is at least one
        return rows


def _typed_requests(
    records: RowDecoder,
    bounds: list[tuple[float, float]],
    *,
    packs: bool,
    raw: bool = False,
    one_row: bool = False,
) -> _TypedRequests:
    """The typed requests of a model's features. A numeric feature's values are held
    within its bounds as they are parsed (at a few nanoseconds a value, less than a
    Python check of one row costs), or, `raw`, read by `v2_large` as float64 and held to
    their bounds a block at a time; the packed tensor's columns have bounds of their
    own, checked once it is read. `one_row` types every tensor as one row, so that its
    shape and length need no check of their own, and its numeric datatypes as floats,
    so that a datatype needs no whole-number check of its own (a request in an integer
    datatype fails this form and is read by the next)."""
    width = len(records.numeric)
    numeric_types = _FLOAT_TYPES if one_row else V2_NUMERIC_TYPES
    column_shape: Any = _ONE_ROW_SHAPE if one_row else list[int]
    # The packed tensor's one row: [1, numeric features].
    packed_shape: Any = (
        tuple[Literal[1], Literal[width]]  # type: ignore[valid-type]
        if one_row
        else list[int]
    )

    def values(kind: Any, count: int = 1) -> Any:
        if raw:
            return Any  # read by `v2_large`, not by msgspec
        if one_row and count == 1:
            return tuple[kind]
        if one_row:
            return Annotated[list[kind], msgspec.Meta(min_length=count, max_length=count)]
        return list[kind]

    in_order = [
        _tensor_type(
            feature.name,
            order,
            values(Annotated[float, msgspec.Meta(ge=lower, le=upper)]),
            column_shape,
            datatypes=numeric_types,
        )
        for order, (feature, (lower, upper)) in enumerate(zip(records.numeric, bounds, strict=True))
    ]
    in_order += [
        _tensor_type(feature.name, width + order, values(str), column_shape, datatypes=_BYTES)
        for order, feature in enumerate(records.categorical)
    ]
    packed_type = (
        _tensor_type(NUMERIC_INPUT, -1, values(float, width), packed_shape, datatypes=numeric_types)
        if packs
        else None
    )
    return _TypedRequests(
        in_order=in_order,
        packed_type=packed_type,
        column_kinds=frozenset(in_order),
        packed_kinds=frozenset([packed_type, *in_order[width:]] if packed_type else ()),
        raw=raw,
        one_row=one_row,
    )


def _tensor_type(
    name: str,
    order: int,
    data: Any,
    shape: Any,
    *,
    datatypes: frozenset[str],
    tagged: bool = True,
) -> type[msgspec.Struct]:
    """The typed form of the input tensor `name`, its values typed `data` and its
    datatype one of `datatypes`: tagged by its name, for a union of tensors, or with the
    name as a field of its own, for a tensor at a fixed place (a tag alone would let a
    tensor without a name pass there)."""
    fields: list[Any] = [
        ("shape", shape),
        ("datatype", Literal[tuple(sorted(datatypes))]),
        ("data", data),
        ("parameters", Any, None),
    ]
    if not tagged:
        return msgspec.defstruct(
            f"RowTensor{order + 1}",
            [("name", Literal[name]), *fields],
            forbid_unknown_fields=True,
            gc=False,
        )
    return msgspec.defstruct(
        f"Tensor{order + 1}",
        fields,
        namespace={"order": order},
        tag_field="name",
        tag=name,
        forbid_unknown_fields=True,
        gc=False,
    )


def _row_in_order_type(records: RowDecoder, bounds: list[tuple[float, float]]) -> Any:
    """The inputs of a single row with one tensor per feature in metadata order: each
    shaped [1] or [1, 1] and holding one value, a number within its feature's bounds in
    a float datatype or a string as BYTES."""
    bounds_of = dict(zip(records.numeric_names, bounds, strict=True))
    tensors = []
    for order, feature in enumerate(records.features):
        if feature.numeric:
            lower, upper = bounds_of[feature.name]
            data: Any = tuple[Annotated[float, msgspec.Meta(ge=lower, le=upper)]]
            datatypes = _FLOAT_TYPES
        else:
            data, datatypes = tuple[str], _BYTES
        tensors.append(
            _tensor_type(
                feature.name, order, data, _ONE_ROW_SHAPE, datatypes=datatypes, tagged=False
            )
        )
    return tuple[tuple(tensors)]  # type: ignore[misc]


def _tensor_kinds(typed: _TypedRequests, records: RowDecoder) -> dict[str, TensorKind]:
    """What `v2_large` reads each input tensor of `typed` into, by name."""
    width = len(records.numeric)
    kinds = {
        feature.name: TensorKind(tensor_type, V2_NUMERIC_TYPES, numeric=True)
        for feature, tensor_type in zip(records.numeric, typed.in_order[:width], strict=True)
    }
    for feature, tensor_type in zip(records.categorical, typed.in_order[width:], strict=True):
        kinds[feature.name] = TensorKind(tensor_type, _BYTES, numeric=False)
    if typed.packed_type is not None:
        kinds[NUMERIC_INPUT] = TensorKind(typed.packed_type, V2_NUMERIC_TYPES, numeric=True)
    return kinds


def _tensor_union(typed: _TypedRequests) -> Any:
    """The inputs of a request that gives the input tensors of `typed` in any order."""
    tensors = (*typed.in_order, *filter(None, [typed.packed_type]))
    return list[Union[tensors]]  # type: ignore[valid-type]  # noqa: UP007


def _request_decoder(inputs: Any) -> msgspec.json.Decoder[Any]:
    """A decoder of inference requests whose inputs are typed `inputs`."""
    request = msgspec.defstruct(
        "InferenceRequest",
        [
            ("inputs", inputs),
            ("id", str | msgspec.UnsetType, msgspec.UNSET),
            ("parameters", dict[str, Any] | msgspec.UnsetType, msgspec.UNSET),
            ("outputs", list[_Output] | None, None),
        ],
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(request)


def _order(tensor: Any) -> int:
    return int(tensor.order)


def _flatten_rows(data: list[Any], width: int) -> list[Any]:
    """V2 tensors may be nested row-major: [[v], [v]] for shape [rows, 1], rows of
    `width` values for shape [rows, width]."""
    if data and all(isinstance(item, list) and len(item) == width for item in data):
        return list(chain.from_iterable(data))
    return data


def _tensor_prefix(tensor: int) -> Callable[[int], str]:
    def prefix(index: int) -> str:
        return f"inputs[{tensor}].data[{index}]"

    return prefix


def v2_response(
    model: OnnxModel,
    labels: list[str],
    probabilities: NDArray[np.float32],
    outputs: list[str],
    request_id: str | None,
) -> dict[str, Any]:
    tensors: list[dict[str, Any]] = []
    for name in outputs:
        if name == LABEL_OUTPUT:
            tensors.append(
                {"name": name, "datatype": "BYTES", "shape": [len(labels)], "data": labels}
            )
        else:
            tensors.append(
                {
                    "name": name,
                    "datatype": "FP32",
                    "shape": list(probabilities.shape),
                    "data": probabilities.reshape(-1),
                }
            )
    body: dict[str, Any] = {
        "model_name": model.name,
        "model_version": model.version,
        "outputs": tensors,
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def v2_model_metadata(model: OnnxModel) -> dict[str, Any]:
    """The body of GET /v2/models/{name}: each feature an input, label and probabilities
    the outputs; parameters.packed_numeric_input describes the one tensor that may carry
    every numeric feature instead (the graph's own numeric input)."""
    numeric = [feature.name for feature in model.features if feature.numeric]
    parameters: dict[str, Any] = {}
    if numeric and NUMERIC_INPUT not in {feature.name for feature in model.features}:
        parameters[PACKED_PARAMETER] = {
            "name": NUMERIC_INPUT,
            "datatype": "FP32",
            "shape": [-1, len(numeric)],
            "columns": numeric,
        }
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "onnxruntime_onnx",
        "inputs": [
            {
                "name": feature.name,
                "datatype": "FP32" if feature.numeric else "BYTES",
                "shape": [-1, 1],
            }
            for feature in model.features
        ],
        "outputs": [
            {"name": LABEL_OUTPUT, "datatype": "BYTES", "shape": [-1]},
            {
                "name": PROBABILITIES_OUTPUT,
                "datatype": "FP32",
                "shape": [-1, len(model.classes)],
            },
        ],
        "parameters": parameters,
    }
