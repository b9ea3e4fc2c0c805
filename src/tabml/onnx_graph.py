"""The fitted scikit-learn pipeline as the ONNX graph serving runs.

The graph takes every numeric feature in one float32 input, `numeric_features`
([rows, numeric features], columns in schema order, also named in the graph's own
metadata), and each categorical feature as a [rows, 1] string input; it returns
`label` and `probabilities`, whose columns follow the pipeline's `classes_`.

train converts the pipeline it has just fitted, in the process that already holds
scikit-learn; evaluate checks the graph against the pipeline on the test set, and
export publishes it.
"""

from __future__ import annotations

from typing import Any

import onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from tabml.config import DataSchema
from tabml.contract import (
    LABEL_OUTPUT,
    NUMERIC_COLUMNS_KEY,
    NUMERIC_INPUT,
    PROBABILITIES_OUTPUT,
    encode_numeric_columns,
)


def to_onnx(model: Pipeline, schema: DataSchema, *, graph_name: str, opset: int) -> bytes:
    """`model` as the ONNX graph serving runs, named `graph_name`, in ONNX opset `opset`;
    the same pipeline gives the same bytes in any process."""
    initial_types: list[tuple[str, Any]] = [
        (name, FloatTensorType([None, 1])) for name in schema.numeric_features
    ] + [(name, StringTensorType([None, 1])) for name in schema.categorical_features]
    onnx_model = convert_sklearn(
        model,
        name=graph_name,
        initial_types=initial_types,
        target_opset={"": opset, "ai.onnx.ml": 3},
        options={id(model.steps[-1][1]): {"zipmap": False}},
        final_types=None,
        # skl2onnx writes a scaler as one ai.onnx.ml Scaler node unless told not to.
        # onnxruntime runs that value by value, through a function call and two modulos
        # each; the Sub and Div written instead run vectorised, as scikit-learn divides.
        # One run of the default model on 1,000 rows of 30: 86 against 133 µs; on one
        # row 6.9 against 6.5 (docs/benchmarks.md).
        black_op={"Scaler"},
    )
    # skl2onnx collects opset domains in a set, whose order follows Python's per-process
    # string hashing; sorting them makes the graph byte-identical from run to run.
    opsets = sorted(onnx_model.opset_import, key=lambda item: item.domain)
    del onnx_model.opset_import[:]
    onnx_model.opset_import.extend(opsets)
    outputs = [output.name for output in onnx_model.graph.output]
    rename = dict(zip(outputs, [LABEL_OUTPUT, PROBABILITIES_OUTPUT], strict=True))
    for node in onnx_model.graph.node:
        node.output[:] = [rename.get(name, name) for name in node.output]
    for output in onnx_model.graph.output:
        output.name = rename[output.name]
    pack_numeric_inputs(onnx_model, schema.numeric_features)
    return bytes(onnx_model.SerializeToString())


def pack_numeric_inputs(model: onnx.ModelProto, names: list[str]) -> None:
    """Replace the graph's one-column float inputs `names` with one input, NUMERIC_INPUT,
    shaped [rows, len(names)], columns in that order.

    onnxruntime converts and checks every input on every call; with one input per
    feature that per-input cost, not the arithmetic, decides single-row latency.
    skl2onnx's first step for the numeric columns is a Concat of exactly these inputs,
    which becomes an Identity of the packed input; any other reader of a column gets it
    from a Split of the packed input.
    """
    if not names:
        return
    graph = model.graph
    columns = set(names)
    others = [item for item in graph.input if item.name not in columns]
    packed = onnx.helper.make_tensor_value_info(
        NUMERIC_INPUT, onnx.TensorProto.FLOAT, [None, len(names)]
    )
    del graph.input[:]
    graph.input.extend([packed, *others])
    for node in graph.node:
        axis = next((a.i for a in node.attribute if a.name == "axis"), None)
        if node.op_type == "Concat" and list(node.input) == names and axis in (1, -1):
            node.op_type = "Identity"
            del node.attribute[:]
            node.input[:] = [NUMERIC_INPUT]
    if any(name in columns for node in graph.node for name in node.input):
        opset = next(item.version for item in model.opset_import if item.domain in ("", "ai.onnx"))
        split = onnx.helper.make_node("Split", [NUMERIC_INPUT], names, axis=1)
        # Without sizes, Split cuts equal parts: one column each. Opset 18 wants the count.
        if opset >= 18:
            split.attribute.append(onnx.helper.make_attribute("num_outputs", len(names)))
        graph.node.insert(0, split)
    onnx.helper.set_model_props(model, {NUMERIC_COLUMNS_KEY: encode_numeric_columns(names)})
