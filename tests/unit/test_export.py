"""export: ONNX gives scikit-learn's answers, and the metadata says what the model is."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

import joblib
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from dvc_data.hashfile.hash import file_md5 as dvc_file_md5

from tabml import DISTRIBUTION
from tabml.config import DataSchema, Params, TrainParams
from tabml.contract import LABEL_OUTPUT, NUMERIC_COLUMNS_KEY, NUMERIC_INPUT, PROBABILITIES_OUTPUT
from tabml.errors import PipelineError
from tabml.stages.export import (
    RECORDED_DISTRIBUTIONS,
    ParityError,
    check_parity,
    file_md5,
    onnx_predict,
    pack_numeric_inputs,
    run,
    to_onnx,
    training_class_ratio,
)
from tabml.stages.train import fit, model_input
from tests.tools import run_tool

FAMILIES = ["logistic_regression", "random_forest", "gradient_boosting"]


@pytest.mark.parametrize("estimator", FAMILIES)
def test_onnx_matches_sklearn_for_every_family(
    estimator: str, tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator=estimator))  # type: ignore[arg-type]
    onnx_bytes = to_onnx(model, tiny_schema, default_params.export)
    parity = check_parity(onnx_bytes, model, tiny_frame, tiny_schema, 1e-5)
    assert parity.max_abs_diff <= 1e-5
    assert parity.labels_equal
    assert parity.rows == len(tiny_frame)


def test_onnx_handles_missing_and_unseen_values(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    odd = pd.DataFrame({"size": [np.nan, 10.0], "count": [3, 4], "colour": ["purple", None]})
    labels, proba = onnx_predict(
        to_onnx(model, tiny_schema, default_params.export), odd, tiny_schema
    )
    prepared = model_input(odd, tiny_schema)
    np.testing.assert_allclose(proba, model.predict_proba(prepared), atol=1e-5)
    assert list(labels) == list(model.predict(prepared))


@pytest.mark.parametrize("estimator", FAMILIES)
def test_a_feature_empty_in_every_row_still_exports(
    estimator: str, tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    # A schema may allow a feature to be missing everywhere (max_null_fraction 1.0); the
    # graph must still take every feature the schema lists, and agree with scikit-learn.
    empty = tiny_frame.assign(size=np.nan)
    model = fit(empty, tiny_schema, TrainParams(estimator=estimator))  # type: ignore[arg-type]
    onnx_bytes = to_onnx(model, tiny_schema, default_params.export)
    parity = check_parity(onnx_bytes, model, tiny_frame, tiny_schema, 1e-5)
    assert parity.max_abs_diff <= 1e-5 and parity.labels_equal


def test_the_graph_takes_numeric_features_as_one_input(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    graph = onnx.load_from_string(to_onnx(model, tiny_schema, default_params.export))
    inputs = {item.name: item.type.tensor_type for item in graph.graph.input}
    assert list(inputs) == [NUMERIC_INPUT, *tiny_schema.categorical_features]
    assert [dim.dim_value for dim in inputs[NUMERIC_INPUT].shape.dim] == [0, 2]
    props = {prop.key: prop.value for prop in graph.metadata_props}
    assert json.loads(props[NUMERIC_COLUMNS_KEY]) == ["size", "count"]
    # skl2onnx's Concat of the numeric columns became an Identity; no Split was needed.
    assert "Split" not in {node.op_type for node in graph.graph.node}


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


def test_parity_failure_names_the_difference(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    onnx_bytes = to_onnx(model, tiny_schema, default_params.export)
    # float32 inference cannot agree with float64 to 1e-15: the check must notice.
    with pytest.raises(
        ParityError,
        match=r"differ by .* on test row \d+, above "
        r"export.parity_tolerance = 1e-15",
    ):
        check_parity(onnx_bytes, model, tiny_frame, tiny_schema, 1e-15)


def test_file_md5_is_the_hash_dvc_records(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\r\n1,2\n" * 1000)
    assert file_md5(path) == dvc_file_md5(path) == hashlib.md5(path.read_bytes()).hexdigest()


def test_run_writes_onnx_and_metadata(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    joblib.dump(model, tmp_path / "model.joblib")
    # The split is a partition: the first 30 rows are the test set, the rest training's.
    tiny_frame.head(30).to_parquet(tmp_path / "test.parquet")
    tiny_frame.to_parquet(tmp_path / "validated.parquet")
    tiny_frame.to_csv(tmp_path / "raw.csv", index=False)
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.9}')
    metadata = run(
        model_path=tmp_path / "model.joblib",
        test_path=tmp_path / "test.parquet",
        raw_path=tmp_path / "raw.csv",
        validated_path=tmp_path / "validated.parquet",
        metrics_path=tmp_path / "metrics.json",
        schema=tiny_schema,
        params=default_params,
        onnx_out=tmp_path / "out" / "model.onnx",
        metadata_out=tmp_path / "out" / "meta.json",
    )
    written = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert written == metadata
    onnx_bytes = (tmp_path / "out" / "model.onnx").read_bytes()
    assert written["model"]["version"] == hashlib.md5(onnx_bytes).hexdigest()
    assert written["model"]["outputs"] == {
        "label": LABEL_OUTPUT,
        "probabilities": PROBABILITIES_OUTPUT,
    }
    assert written["data"] == {"version": file_md5(tmp_path / "raw.csv"), "rows": 120}
    assert [f["name"] for f in written["features"]] == ["size", "count", "colour"]
    assert [f["onnx_type"] for f in written["features"]] == ["float32", "float32", "string"]
    training = tiny_frame["label"].iloc[30:].value_counts(normalize=True)
    assert written["target"] == {
        "name": "label",
        "classes": ["no", "yes"],
        "training_class_ratio": {
            "no": round(training["no"], 6),
            "yes": round(training["yes"], 6),
        },
    }
    assert written["metrics"] == {"accuracy": 0.9}
    assert written["params"]["train"]["estimator"] == "logistic_regression"
    # Only facts derived from the stage's inputs: no commit, time or host.
    assert set(written) == {
        "model",
        "data",
        "features",
        "target",
        "params",
        "metrics",
        "parity",
        "libraries",
    }
    assert written["parity"]["max_abs_diff"] <= 1e-5
    # Recorded by distribution name, which need not be the package's import name.
    assert written["libraries"][DISTRIBUTION] == version(DISTRIBUTION)
    assert set(written["libraries"]) == set(RECORDED_DISTRIBUTIONS)


def test_training_class_ratio_is_the_whole_less_the_test_set() -> None:
    everything = pd.Series(["a", "a", "a", "b", "b", "c", 1, 1])
    test = pd.Series(["a", "b", "c", 1])
    ratio = training_class_ratio(everything, test, ["1", "a", "b", "c", "never"])
    assert ratio == {"1": 0.25, "a": 0.5, "b": 0.25, "c": 0.0, "never": 0.0}


def test_training_class_ratio_needs_a_training_row() -> None:
    labels = pd.Series(["a", "b"])
    with pytest.raises(PipelineError, match="no training rows"):
        training_class_ratio(labels, labels, ["a", "b"])


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
        "from tabml.config import ExportParams, load_schema\n"
        "from tabml.stages.export import to_onnx\n"
        "model = joblib.load(sys.argv[1]); schema = load_schema(sys.argv[2])\n"
        "print(hashlib.md5(to_onnx(model, schema, ExportParams())).hexdigest())\n"
    )
    digests = {
        run_tool(
            [sys.executable, "-c", script, tmp_path / "model.joblib", tmp_path / "schema.json"],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout.strip()
        for seed in range(6)
    }
    assert len(digests) == 1, digests
