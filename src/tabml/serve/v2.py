"""The Open Inference Protocol (KServe V2): inference requests and responses.

A request carries one input tensor per feature; `V2Decoder` checks them and builds the
same onnxruntime feed as the REST rows give, with the categorical and numeric checks of
`decode.RowDecoder` and the numeric rule of `numbers`.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tabml.contract import LABEL_OUTPUT, NUMERIC_INPUT, PROBABILITIES_OUTPUT
from tabml.serve.decode import Feed, RowDecoder, locator
from tabml.serve.model import FeatureSpec, OnnxModel
from tabml.serve.numbers import Outside, numbers
from tabml.serve.problems import MAX_PROBLEMS, Problem, RequestError

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


class V2Decoder:
    """Checks inference requests against the feature schema and builds the onnxruntime feed."""

    def __init__(self, records: RowDecoder) -> None:
        self.records = records
        self.by_name = records.by_name
        self.rule = records.rule
        self.max_rows = records.max_rows

    def decode(self, payload: Any) -> tuple[Feed, int, list[str], Outside]:
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
            if not isinstance(name, str) or name not in self.by_name:
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
        rows = self._rows(inputs)
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
                locate = locator(_tensor_prefix(index), "")
                try:
                    feed[name] = self.records.categorical_column(feature, data, locate)
                except RequestError as error:
                    raise RequestError(400, error.problems) from None
        outside = self._numeric_feed(numeric, rows, feed) if numeric else None
        return feed, rows, outputs, outside

    def _numeric_feed(
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
            locate = locator(_tensor_prefix(index), "")
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


def _flatten_rows(data: list[Any]) -> list[Any]:
    """V2 tensors may be nested row-major: [[v], [v]] for shape [rows, 1]."""
    if data and all(isinstance(item, list) and len(item) == 1 for item in data):
        return [item[0] for item in data]
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
    the outputs."""
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
    }
