"""Request and response shapes, built from the feature schema in metadata.json.

Two views of one schema: pydantic models give the OpenAPI document (every feature
named with its type and range), and `RowDecoder` checks request bodies and turns them
into the onnxruntime feed: one [rows, numeric features] float32 array and one column per
categorical feature. The decoder is hand-written because validating
a 1,000-row batch row by row through pydantic costs more than the inference; the
tests fuzz both views against each other through the OpenAPI document.

A numeric feature's range is the one its data schema gives (`min`, `max` in
metadata.json), the range the validate stage holds training data to. Serving holds
requests to it too: a value outside is refused by default, or, under the "count"
policy (TABML_OUT_OF_RANGE), accepted and reported with the decoded rows.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, create_model

from tabml.serve.model import (
    LABEL_OUTPUT,
    NUMERIC_INPUT,
    PROBABILITIES_OUTPUT,
    FeatureSpec,
    OnnxModel,
)
from tabml.serve.numbers import (
    FLOAT32_MAX,
    NumericRule,
    Outside,
    bounds,
    int_bounds,
    numbers,
)
from tabml.serve.problems import MAX_PROBLEMS, Problem, RequestError, show
from tabml.serve.settings import OutOfRange

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
_V2_TENSOR_REQUIRED = frozenset({"name", "shape", "datatype", "data"})
_V2_TENSOR_FIELDS = _V2_TENSOR_REQUIRED | {"parameters"}

Feed = dict[str, NDArray[Any]]


class RowDecoder:
    """Checks request bodies against the feature schema and builds the onnxruntime feed."""

    def __init__(
        self, features: Sequence[FeatureSpec], max_rows: int, *, out_of_range: OutOfRange
    ) -> None:
        self.features = list(features)
        self.by_name = {feature.name: feature for feature in self.features}
        self.names = frozenset(self.by_name)
        self.numeric = [feature for feature in self.features if feature.numeric]
        self.numeric_names = [feature.name for feature in self.numeric]
        self.categorical = [feature for feature in self.features if not feature.numeric]
        self.allowed = {
            feature.name: frozenset(feature.allowed or ()) for feature in self.categorical
        }
        self.max_rows = max_rows
        self.rule = NumericRule(self.numeric, reject_out_of_range=out_of_range == "reject")
        # itemgetter fetches a row's numeric values in one C call.
        self._getter: Callable[[dict[str, Any]], Any] = (
            operator.itemgetter(*self.numeric_names) if self.numeric else _no_values
        )
        self._plain_rows = _plain_rows_decoder(self.numeric, self.categorical, self.rule.bounds)

    # --- POST /predict, the common case: plain rows, parsed and typed in one pass ------

    def decode_plain_records(self, body: bytes) -> tuple[Feed, int, bool] | None:
        """The feed, the row count and whether the body was one object, for a body of
        rows that hold exactly the features, as plain numbers within their schema
        ranges and known categories, with no nulls; None for anything else (and for
        invalid JSON), which the caller sends to `decode_records`, whose checks name
        every problem (or, under the "count" policy, accept and report values outside
        their ranges).

        msgspec parses the JSON straight into typed rows, so the common case skips
        building a dict per row and checking each value's type in Python."""
        try:
            parsed = self._plain_rows.decode(body)
        except msgspec.DecodeError:  # also raised for JSON that breaks the row types
            return None
        single = not isinstance(parsed, list)
        rows: list[Any] = [parsed] if single else parsed
        if not 0 < len(rows) <= self.max_rows:
            return None
        feed: Feed = {}
        width = len(self.numeric)
        if width and single:
            # One row: its numbers were held within their bounds as they were parsed.
            one = msgspec.structs.astuple(parsed)[:width]
            if not self.rule.row_holds(one):
                return None
            feed[NUMERIC_INPUT] = np.array([one], dtype=np.float32)
        elif width:
            values: Iterable[tuple[Any, ...]] = map(msgspec.structs.astuple, rows)
            if self.categorical:  # numbers come first in each row, then the categories
                values = (row[:width] for row in values)
            wide = np.fromiter(
                chain.from_iterable(values), dtype=np.float64, count=len(rows) * width
            ).reshape(-1, width)
            if not self.rule.rows_hold(wide):
                return None
            feed[NUMERIC_INPUT] = wide.astype(np.float32)
        for position, feature in enumerate(self.categorical):
            field = _plain_field(width + position)
            column = [getattr(row, field) for row in rows]
            if not self.allowed[feature.name].issuperset(column):
                return None
            feed[feature.name] = np.array(column, dtype=object).reshape(-1, 1)
        return feed, len(rows), single

    # --- POST /predict: one JSON object, or an array of them -----------------------

    def decode_records(self, payload: Any) -> tuple[Feed, int, Outside]:
        """The feed, the row count and where values lie outside their schema ranges."""
        if isinstance(payload, dict):
            rows: list[Any] = [payload]
            prefix: Callable[[int], str] = _no_prefix
        elif isinstance(payload, list):
            if not payload:
                raise RequestError.one(422, "body", "a batch needs at least one row", value=[])
            if len(payload) > self.max_rows:
                raise RequestError.one(
                    422,
                    "body",
                    f"a batch holds at most {self.max_rows} rows "
                    f"(TABML_MAX_BATCH_ROWS), this one has {len(payload)}",
                    has_value=False,
                )
            rows = payload
            prefix = _index_prefix
        else:
            raise RequestError.one(
                422,
                "body",
                "must be a JSON object keyed by feature name (one row) or an "
                "array of such objects (a batch)",
                value=payload,
            )
        # Fast path: rows of the right length whose keys all look up are exactly the
        # features; anything else is described row by row.
        width = len(self.by_name)
        if not all(type(row) is dict and len(row) == width for row in rows):
            raise RequestError(422, self._shape_problems(rows, prefix))
        try:
            matrix = [self._numeric_values(row) for row in rows] if self.numeric else []
            categorical = {
                feature.name: [row[feature.name] for row in rows] for feature in self.categorical
            }
        except KeyError:
            raise RequestError(422, self._shape_problems(rows, prefix)) from None
        problems: list[Problem] = []
        feed: Feed = {}
        outside: Outside = None
        if self.numeric:
            try:
                outside = self._numeric_feed(matrix, prefix, feed)
            except RequestError as error:
                problems.extend(error.problems)
        for feature in self.categorical:
            try:
                feed[feature.name] = self._categorical_column(
                    feature, categorical[feature.name], _locator(prefix, feature.name)
                )
            except RequestError as error:
                problems.extend(error.problems)
        if problems:
            raise RequestError(422, problems)
        return feed, len(rows), outside

    def _shape_problems(self, rows: list[Any], prefix: Callable[[int], str]) -> list[Problem]:
        problems: list[Problem] = []
        for index, row in enumerate(rows):
            if type(row) is not dict:
                problems.append(
                    Problem(
                        prefix(index).rstrip(".") or "body",
                        "must be an object keyed by feature name",
                        row,
                    )
                )
            elif row.keys() != self.names:
                self._key_problems(row, prefix(index), problems)
            if len(problems) > MAX_PROBLEMS:
                break
        return problems

    def _key_problems(self, row: dict[str, Any], prefix: str, problems: list[Problem]) -> None:
        for name in self.by_name:
            if name not in row:
                problems.append(
                    Problem(f"{prefix}{name}", "required feature is missing", has_value=False)
                )
        for name in row:
            if name not in self.by_name:
                problems.append(
                    Problem(
                        f"{prefix}{name}",
                        "not a feature of this model (GET /metadata lists the features)",
                        row[name],
                    )
                )

    def _numeric_feed(
        self,
        matrix: list[tuple[Any, ...]],
        prefix: Callable[[int], str],
        feed: Feed,
    ) -> Outside:
        # Fast path: one type scan and one array for every numeric value in the batch;
        # anything unusual (a null, a string, a value outside its range) takes the slow
        # path, which checks value by value and names each problem.
        flat = list(chain.from_iterable(matrix))
        wide = numbers(flat, (-1, len(self.numeric)))
        outside: Outside = None
        if wide is not None and self.rule.rows_hold(wide):
            values = wide.astype(np.float32)
        else:
            problems: list[Problem] = []
            columns = []
            for position, feature in enumerate(self.numeric):
                column = [row[position] for row in matrix]
                columns.append(
                    self.rule.check_column(
                        feature,
                        column,
                        _locator(prefix, feature.name),
                        problems,
                        integral=feature.dtype == "int",
                    )
                )
            if problems:
                raise RequestError(422, problems)
            wide = np.array(columns, dtype=np.float64).T
            outside = self.rule.outside(wide)
            values = wide.astype(np.float32)
        feed[NUMERIC_INPUT] = np.ascontiguousarray(values)
        return outside

    def _numeric_values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        values = self._getter(row)
        return values if len(self.numeric_names) > 1 else (values,)

    def _categorical_column(
        self, feature: FeatureSpec, column: list[Any], locate: Callable[[int], str]
    ) -> NDArray[Any]:
        allowed = self.allowed[feature.name]
        problems: list[Problem] = []
        values: list[str] = []
        for index, value in enumerate(column):
            if type(value) is str and value in allowed:
                values.append(value)
            elif value is None and feature.nullable:
                # The export stage feeds missing categories as "" too; the pipeline imputes.
                values.append("")
            else:
                problems.append(
                    Problem(
                        locate(index),
                        f"must be one of {sorted(allowed)}"
                        + ("" if not feature.nullable else " or null"),
                        value,
                    )
                )
        if problems:
            raise RequestError(422, problems)
        return np.array(values, dtype=object).reshape(-1, 1)

    def reject_non_finite(
        self,
        feed: Feed,
        probabilities: NDArray[np.float32],
        status: int,
        locate_row: Callable[[int], str],
    ) -> None:
        """Refuse rows whose probabilities overflowed: finite inputs far outside the
        schema range (accepted under the "count" policy, or of a feature the schema
        gives no range) can drive a linear model's logits past the float32 range."""
        finite = np.isfinite(probabilities)
        if finite.all():
            return
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        problems = []
        numeric = feed.get(NUMERIC_INPUT)
        for row in bad_rows[: MAX_PROBLEMS + 1].tolist():
            outside = [
                feature.name
                for position, feature in enumerate(self.numeric)
                if numeric is not None
                and (feature.min is not None and feature.max is not None)
                and not feature.min <= float(numeric[row, position]) <= feature.max
            ]
            problems.append(
                Problem(
                    locate_row(row),
                    "the model's probabilities are not finite for this row; features outside "
                    f"their schema range: {', '.join(outside) or 'none'}",
                    has_value=False,
                )
            )
        raise RequestError(status, problems)

    # --- POST /v2/models/{name}/infer: Open Inference Protocol tensors --------------

    def decode_v2(self, payload: Any) -> tuple[Feed, int, list[str], Outside]:
        """The feed, the row count, the names of the outputs the client asked for and
        where values lie outside their schema ranges."""
        if not isinstance(payload, dict):
            raise RequestError.one(
                400, "body", "must be a JSON object with an 'inputs' array", value=payload
            )
        unknown = sorted(set(payload) - {"id", "parameters", "inputs", "outputs"})
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
        outputs = self._v2_outputs(payload.get("outputs"))
        inputs = payload.get("inputs")
        if not isinstance(inputs, list):
            raise RequestError.one(
                400,
                "inputs",
                "must be an array of input tensors, one per feature",
                value=inputs,
                has_value="inputs" in payload,
            )
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
            if name not in self.by_name:
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
        for name in self.by_name:
            if name not in tensors and len(problems) <= MAX_PROBLEMS:
                problems.append(
                    Problem(f"inputs[name={name}]", "required input is missing", has_value=False)
                )
        if problems:
            raise RequestError(400, problems)
        rows = self._v2_rows(inputs, tensors)
        feed: Feed = {}
        numeric: list[tuple[int, FeatureSpec, list[Any], bool]] = []
        for index, tensor in enumerate(inputs):
            name = tensor["name"]
            feature = self.by_name[name]
            data = _flatten_rows(tensor["data"])
            datatype = tensor["datatype"]
            if feature.numeric:
                if datatype not in V2_NUMERIC_TYPES:
                    raise RequestError.one(
                        400,
                        f"inputs[{index}].datatype",
                        f"feature {name!r} is numeric: use one of {sorted(V2_NUMERIC_TYPES)}",
                        value=datatype,
                    )
                integral = feature.dtype == "int" or not datatype.startswith("FP")
                numeric.append((index, feature, data, integral))
            else:
                if datatype != "BYTES":
                    raise RequestError.one(
                        400,
                        f"inputs[{index}].datatype",
                        f"feature {name!r} is categorical: use BYTES",
                        value=datatype,
                    )
                locate = _locator(_tensor_prefix(index), "")
                try:
                    feed[name] = self._categorical_column(feature, data, locate)
                except RequestError as error:
                    raise RequestError(400, error.problems) from None
        outside = self._v2_numeric_feed(numeric, rows, feed) if numeric else None
        return feed, rows, outputs, outside

    def _v2_numeric_feed(
        self, numeric: list[tuple[int, FeatureSpec, list[Any], bool]], rows: int, feed: Feed
    ) -> Outside:
        # Fast path: every numeric tensor in one array ([features, rows]); any problem
        # (or a value outside its range) sends the request to the value-by-value checks,
        # which name the tensor and value. The graph takes the columns in metadata order,
        # whatever the request's order; every numeric feature is an input.
        numeric = sorted(numeric, key=lambda item: self.rule.position[item[1].name])
        flat = list(chain.from_iterable(data for _, _, data, _ in numeric))
        block = numbers(flat, (len(numeric), rows))
        integral = [position for position, item in enumerate(numeric) if item[3]]
        if block is not None and self.rule.columns_hold(block, integral):
            feed[NUMERIC_INPUT] = np.ascontiguousarray(block.T, dtype=np.float32)
            return None
        problems: list[Problem] = []
        columns: dict[str, list[float]] = {}
        # Checked in request order, so problems are listed the way the client sent them.
        for index, feature, data, whole in sorted(numeric, key=lambda item: item[0]):
            locate = _locator(_tensor_prefix(index), "")
            columns[feature.name] = self.rule.check_column(
                feature, data, locate, problems, integral=whole
            )
        if problems:
            raise RequestError(400, problems)
        wide = np.array([columns[name] for name in self.numeric_names], dtype=np.float64).T
        feed[NUMERIC_INPUT] = np.ascontiguousarray(wide, dtype=np.float32)
        return self.rule.outside(wide)

    def _v2_outputs(self, requested: Any) -> list[str]:
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

    def _v2_rows(self, inputs: list[dict[str, Any]], tensors: dict[str, dict[str, Any]]) -> int:
        rows: int | None = None
        for index, tensor in enumerate(inputs):
            where = f"inputs[{index}]"
            if not _V2_TENSOR_REQUIRED <= tensor.keys() <= _V2_TENSOR_FIELDS:
                for key in ("shape", "datatype", "data"):
                    if key not in tensor:
                        raise RequestError.one(
                            400, f"{where}.{key}", "is required", has_value=False
                        )
                extra = sorted(set(tensor) - _V2_TENSOR_FIELDS)
                raise RequestError.one(
                    400,
                    f"{where}.{extra[0]}",
                    "not a field of an input tensor (name, shape, datatype, parameters, data)",
                    value=tensor[extra[0]],
                )
            shape = tensor["shape"]
            if (
                not isinstance(shape, list)
                or not 1 <= len(shape) <= 2
                or any(type(size) is not int for size in shape)
                or (len(shape) == 2 and shape[1] != 1)
            ):
                raise RequestError.one(
                    400, f"{where}.shape", "must be [rows] or [rows, 1]", value=shape
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
            count = len(_flatten_rows(data))
            if count != rows:
                raise RequestError.one(
                    400,
                    f"{where}.data",
                    f"holds {count} values; shape {shape} needs {rows}",
                    has_value=False,
                )
        assert rows is not None  # every feature is an input, and there is at least one
        return rows


def _plain_field(position: int) -> str:
    # Struct attributes need not be valid feature names; the JSON keys are renamed.
    return f"f{position}"


def _plain_rows_decoder(
    numeric: Sequence[FeatureSpec],
    categorical: Sequence[FeatureSpec],
    bounds: Sequence[tuple[float, float]],
) -> msgspec.json.Decoder[Any]:
    """A JSON decoder for one row object or an array of them, holding exactly the
    features: numbers for numeric ones, strings for categorical ones, no nulls.

    A single row's numbers are held within `bounds` (one pair per numeric feature) as
    they are parsed: msgspec's field constraints cost a tenth of what a Python min/max
    over a 30-number row does. A batch's are not: at some 4 ns a value the constraints
    cost several times what one numpy comparison of the whole batch does."""
    names = [feature.name for feature in [*numeric, *categorical]]

    def row_type(name: str, numbers: list[Any]) -> Any:
        return msgspec.defstruct(
            name,
            [
                (_plain_field(position), kind)
                for position, kind in enumerate([*numbers, *[str] * len(categorical)])
            ],
            rename={_plain_field(position): name for position, name in enumerate(names)},
            forbid_unknown_fields=True,
            gc=False,
        )

    bounded = [Annotated[float, msgspec.Meta(ge=lower, le=upper)] for lower, upper in bounds]
    row = row_type("PlainRow", bounded)
    batch_row = row_type("PlainBatchRow", [float] * len(numeric))
    return msgspec.json.Decoder(row | list[batch_row])  # type: ignore[valid-type]


def _flatten_rows(data: list[Any]) -> list[Any]:
    """V2 tensors may be nested row-major: [[v], [v]] for shape [rows, 1]."""
    if data and all(isinstance(item, list) and len(item) == 1 for item in data):
        return [item[0] for item in data]
    return data


def _locator(prefix: Callable[[int], str], name: str) -> Callable[[int], str]:
    """Where value `index` of one column sits in the request, for error messages."""

    def locate(index: int) -> str:
        return f"{prefix(index)}{name}"

    return locate


def _tensor_prefix(tensor: int) -> Callable[[int], str]:
    def prefix(index: int) -> str:
        return f"inputs[{tensor}].data[{index}]"

    return prefix


def _no_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return ()


def _no_prefix(index: int) -> str:
    return ""


def _index_prefix(index: int) -> str:
    return f"[{index}]."


# --- Response shaping --------------------------------------------------------------


def records_response(
    model: OnnxModel, labels: list[str], probabilities: NDArray[np.float32]
) -> dict[str, Any]:
    classes = model.classes
    # Lengths match by construction (the loader checks the probability columns against
    # the classes); zip(strict=True) would double the cost of a 1,000-row response.
    return {
        "model_name": model.name,
        "model_version": model.version,
        "predictions": [
            {"label": label, "probabilities": dict(zip(classes, row))}  # noqa: B905
            for label, row in zip(labels, probabilities.tolist())  # noqa: B905
        ],
    }


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


# --- OpenAPI -----------------------------------------------------------------------


def _field_name(index: int) -> str:
    # Feature names need not be Python identifiers; the JSON name is the alias.
    return f"feature_{index}"


def _feature_type(feature: FeatureSpec, out_of_range: OutOfRange) -> Any:
    if feature.dtype == "category":
        base: Any = Literal[tuple(feature.allowed or ())]
    else:
        # The model takes float32: larger magnitudes would reach it as infinity. Under
        # the "reject" policy the schema range is the bound; under "count", only float32's.
        lower, upper = bounds(feature) if out_of_range == "reject" else (-FLOAT32_MAX, FLOAT32_MAX)
        if feature.dtype == "int":
            lower, upper = int_bounds(lower, upper)
            base = Annotated[int, Field(ge=lower, le=upper)]
        else:
            base = Annotated[float, Field(ge=lower, le=upper, allow_inf_nan=False)]
    return base | None if feature.nullable else base


def _feature_description(feature: FeatureSpec, out_of_range: OutOfRange) -> str:
    text = f"{feature.dtype} feature"
    if feature.min is not None or feature.max is not None:
        shown = [
            show(bound) if bound is not None else "none" for bound in (feature.min, feature.max)
        ]
        text += f"; range in the model's data schema: min {shown[0]}, max {shown[1]}"
        text += (
            " (a value outside is refused)"
            if out_of_range == "reject"
            else " (a value outside is accepted and counted in /metrics)"
        )
    if feature.nullable:
        text += "; null allowed (imputed as in training)"
    return text


def row_model(features: Sequence[FeatureSpec], *, out_of_range: OutOfRange) -> type[BaseModel]:
    """One row of features, as a pydantic model: the OpenAPI `Row` schema."""
    fields: dict[str, Any] = {
        _field_name(index): (
            _feature_type(feature, out_of_range),
            Field(alias=feature.name, description=_feature_description(feature, out_of_range)),
        )
        for index, feature in enumerate(features)
    }
    model: type[BaseModel] = create_model(
        "Row", __config__=ConfigDict(extra="forbid", strict=True), **fields
    )
    return model


def prediction_model(classes: Sequence[str]) -> type[BaseModel]:
    probability_fields: dict[str, Any] = {
        f"class_{index}": (float, Field(alias=name, ge=0.0, le=1.0))
        for index, name in enumerate(classes)
    }
    probabilities: type[BaseModel] = create_model(
        "ClassProbabilities", __config__=ConfigDict(extra="forbid"), **probability_fields
    )
    label_type: Any = Literal[tuple(classes)]
    prediction: type[BaseModel] = create_model(
        "Prediction",
        __config__=ConfigDict(extra="forbid"),
        label=(label_type, Field(description="the predicted class")),
        probabilities=(probabilities, Field(description="probability of each class")),
    )
    response: type[BaseModel] = create_model(
        "PredictResponse",
        __config__=ConfigDict(extra="forbid"),
        model_name=(str, ...),
        model_version=(str, ...),
        predictions=(list[prediction], Field(description="one prediction per row, in order")),
    )
    return response


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class Detail(BaseModel):
        model_config = ConfigDict(extra="forbid")
        field: str
        rule: str
        value: str | None

    error: str = Field(description="every problem as `field = value: rule`, joined by '; '")
    details: list[Detail] = Field(default_factory=list)


class HealthBody(BaseModel):
    status: Literal["ok", "loading"]


class V2Tensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None
    data: list[Any]


class V2RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class V2InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[V2Tensor]
    outputs: list[V2RequestOutput] | None = None


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[V2Tensor]


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2Ready(BaseModel):
    ready: bool


class V2Live(BaseModel):
    live: bool


def _schema_of(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def openapi_document(
    model: OnnxModel,
    max_rows: int,
    max_body_bytes: int,
    version: str,
    *,
    out_of_range: OutOfRange,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document: every feature named, typed, bounded and described."""
    components: dict[str, Any] = {}
    row = _schema_of(row_model(model.features, out_of_range=out_of_range), components)
    predict_response = _schema_of(prediction_model(model.classes), components)
    error = _schema_of(ErrorBody, components)
    health = _schema_of(HealthBody, components)
    v2_request = _schema_of(V2InferRequest, components)
    v2_response = _schema_of(V2InferResponse, components)
    v2_model = _schema_of(V2ModelMetadata, components)
    v2_server = _schema_of(V2ServerMetadata, components)
    v2_ready = _schema_of(V2Ready, components)
    v2_live = _schema_of(V2Live, components)
    components["PredictRequest"] = {
        "oneOf": [row, {"type": "array", "items": row, "minItems": 1, "maxItems": max_rows}],
        "description": "one row (an object keyed by feature name) or a batch (an array of "
        f"rows, at most {max_rows}); bodies over {max_body_bytes} bytes get 413",
    }

    def json_content(schema: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": schema}}}

    def errors(*statuses: int) -> dict[str, Any]:
        reasons = {
            400: "malformed JSON or an invalid inference request",
            404: "unknown model name",
            413: "body over the size limit",
            415: "the body is not application/json",
            422: "a row breaks the feature schema",
            503: "the model is not loaded yet",
        }
        return {
            str(status): {"description": reasons[status], **json_content(error)}
            for status in statuses
        }

    def get(summary: str, schema: dict[str, Any], *statuses: int) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "responses": {
                    "200": {"description": "OK", **json_content(schema)},
                    **errors(*statuses),
                },
            }
        }

    name_parameter = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "the model name",
    }
    metadata_schema = {
        "type": "object",
        "required": ["model", "data", "features", "target"],
        "description": "metadata.json as the export stage wrote it",
    }
    paths: dict[str, Any] = {
        "/predict": {
            "post": {
                "summary": "Predict the class and class probabilities of one row or a batch",
                "requestBody": {
                    "required": True,
                    **json_content({"$ref": "#/components/schemas/PredictRequest"}),
                },
                "responses": {
                    "200": {
                        "description": "one prediction per row",
                        **json_content(predict_response),
                    },
                    **errors(400, 413, 415, 422, 503),
                },
            }
        },
        "/health": get("Liveness: the process answers", health),
        "/ready": get("Readiness: the model is loaded", health, 503),
        "/metadata": get(
            "Model and data versions, params, metrics, features", metadata_schema, 503
        ),
        "/model-card": {
            "get": {
                "summary": "The model card (Markdown), when the model ships one",
                "responses": {
                    "200": {
                        "description": "the model card",
                        "content": {"text/markdown": {"schema": {"type": "string"}}},
                    },
                    **errors(404, 503),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/v2": get("Open Inference Protocol: server metadata", v2_server),
        "/v2/health/live": get("Open Inference Protocol: liveness", v2_live),
        "/v2/health/ready": get("Open Inference Protocol: readiness", v2_ready, 503),
        "/v2/models/{name}": {
            "parameters": [name_parameter],
            **get("Open Inference Protocol: model metadata", v2_model, 404, 503),
        },
        "/v2/models/{name}/ready": {
            "parameters": [name_parameter],
            **get("Open Inference Protocol: model readiness", v2_ready, 404, 503),
        },
        "/v2/models/{name}/infer": {
            "parameters": [name_parameter],
            "post": {
                "summary": "Open Inference Protocol: inference, one input tensor per feature",
                "requestBody": {"required": True, **json_content(v2_request)},
                "responses": {
                    "200": {
                        "description": "label and probabilities tensors",
                        **json_content(v2_response),
                    },
                    **errors(400, 404, 413, 415, 503),
                },
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{model.name} prediction API",
            "version": version,
            "description": f"Model version {model.version}; classes {model.classes}.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
