"""The fitted pipeline as an ONNX graph: scikit-learn's answers, from one packed input."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import joblib
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from tabml.config import DataSchema, ExportParams, TrainParams
from tabml.contract import NUMERIC_COLUMNS_KEY, NUMERIC_INPUT
from tabml.onnx_graph import pack_numeric_inputs, to_onnx
from tabml.parity import check_parity, onnx_predict
from tabml.stages.train import fit, model_input
from tests.tools import run_tool

FAMILIES = ["logistic_regression", "random_forest", "gradient_boosting"]


def default_graph(model: Pipeline, schema: DataSchema) -> bytes:
    """`model`'s graph in the default opset."""
    return to_onnx(model, schema, graph_name="model", opset=ExportParams().target_opset)


@pytest.mark.parametrize("estimator", FAMILIES)
def test_onnx_matches_sklearn_for_every_family(
    estimator: str, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator=estimator))  # type: ignore[arg-type]
    onnx_bytes = default_graph(model, tiny_schema)
    parity = check_parity(onnx_bytes, model, tiny_frame, tiny_schema, 1e-5)
    assert parity.max_abs_diff <= 1e-5
    assert parity.labels_equal
    assert parity.rows == len(tiny_frame)


def test_onnx_handles_missing_and_unseen_values(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    odd = pd.DataFrame({"size": [np.nan, 10.0], "count": [3, 4], "colour": ["purple", None]})
    labels, proba = onnx_predict(default_graph(model, tiny_schema), odd, tiny_schema)
    prepared = model_input(odd, tiny_schema)
    np.testing.assert_allclose(proba, model.predict_proba(prepared), atol=1e-5)
    assert list(labels) == list(model.predict(prepared))


@pytest.mark.parametrize("estimator", FAMILIES)
def test_a_feature_empty_in_every_row_still_converts(
    estimator: str, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    # A schema may allow a feature to be missing everywhere (max_null_fraction 1.0); the
    # graph must still take every feature the schema lists, and agree with scikit-learn.
    empty = tiny_frame.assign(size=np.nan)
    model = fit(empty, tiny_schema, TrainParams(estimator=estimator))  # type: ignore[arg-type]
    onnx_bytes = default_graph(model, tiny_schema)
    parity = check_parity(onnx_bytes, model, tiny_frame, tiny_schema, 1e-5)
    assert parity.max_abs_diff <= 1e-5 and parity.labels_equal


def test_the_graph_takes_numeric_features_as_one_input(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    loaded = onnx.load_from_string(default_graph(model, tiny_schema))
    inputs = {item.name: item.type.tensor_type for item in loaded.graph.input}
    assert list(inputs) == [NUMERIC_INPUT, *tiny_schema.categorical_features]
    assert [dim.dim_value for dim in inputs[NUMERIC_INPUT].shape.dim] == [0, 2]
    props = {prop.key: prop.value for prop in loaded.metadata_props}
    assert json.loads(props[NUMERIC_COLUMNS_KEY]) == ["size", "count"]
    # skl2onnx's Concat of the numeric columns became an Identity; no Split was needed.
    assert "Split" not in {node.op_type for node in loaded.graph.node}


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_packing_splits_columns_that_other_nodes_read(opset: int) -> None:
    """A graph that reads columns one by one gets them from a Split of the packed input."""
    column = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Sub", ["a", "b"], ["out"])],
        "columns",
        [column(name, onnx.TensorProto.FLOAT, [None, 1]) for name in ("a", "b")],
        [column("out", onnx.TensorProto.FLOAT, [None, 1])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.ir_version = 7
    pack_numeric_inputs(model, ["a", "b"])
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_inputs()] == [NUMERIC_INPUT]
    feed = {NUMERIC_INPUT: np.array([[5.0, 2.0], [1.0, 4.0]], dtype=np.float32)}
    [out] = session.run(["out"], feed)
    np.testing.assert_array_equal(out, [[3.0], [-3.0]])


@pytest.mark.slow
def test_onnx_bytes_do_not_depend_on_the_hash_seed(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    """Each process hashes strings with its own seed; the exported bytes must not care."""
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    joblib.dump(model, tmp_path / "model.joblib")
    (tmp_path / "schema.json").write_text(tiny_schema.model_dump_json())
    script = (
        "import hashlib, joblib, sys\n"
        "from tabml.config import load_schema\n"
        "from tabml.onnx_graph import to_onnx\n"
        "model = joblib.load(sys.argv[1]); schema = load_schema(sys.argv[2])\n"
        "graph = to_onnx(model, schema, graph_name='model', opset=17)\n"
        "print(hashlib.md5(graph).hexdigest())\n"
    )
    digests = {
        run_tool(
            [sys.executable, "-c", script, tmp_path / "model.joblib", tmp_path / "schema.json"],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout.strip()
        for seed in range(6)
    }
    assert len(digests) == 1, digests


@pytest.mark.parametrize("opset", [13, 17])
def test_the_graph_is_named_and_in_the_opset_asked_for(
    opset: int, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    loaded = onnx.load_from_string(
        to_onnx(model, tiny_schema, graph_name="logistic_regression", opset=opset)
    )
    assert loaded.graph.name == "logistic_regression"
    assert {item.domain: item.version for item in loaded.opset_import}[""] == opset


@pytest.mark.parametrize("scaler", ["StandardScaler", "RobustScaler", "MaxAbsScaler"])
def test_scalers_become_vectorised_arithmetic(
    scaler: str, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    # onnxruntime's Scaler kernel works value by value; the graph scales with Sub and Div.
    import sklearn.preprocessing
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression

    numeric = Pipeline(
        [("impute", SimpleImputer()), ("scale", getattr(sklearn.preprocessing, scaler)())]
    )
    preprocess = ColumnTransformer(
        [
            ("numeric", numeric, tiny_schema.numeric_features),
            (
                "categorical",
                sklearn.preprocessing.OneHotEncoder(handle_unknown="ignore"),
                tiny_schema.categorical_features,
            ),
        ]
    )
    model = Pipeline([("preprocess", preprocess), ("model", LogisticRegression())])
    model.fit(model_input(tiny_frame, tiny_schema), tiny_frame["label"])
    graph = default_graph(model, tiny_schema)
    operators = {node.op_type for node in onnx.load_from_string(graph).graph.node}
    assert "Scaler" not in operators and "Div" in operators
    parity = check_parity(graph, model, tiny_frame, tiny_schema, 1e-5)
    assert parity.max_abs_diff <= 1e-5 and parity.labels_equal
