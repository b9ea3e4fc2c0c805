"""export: the checked graph published as it is, and metadata that says what the model is."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dvc_data.hashfile.hash import file_md5 as dvc_file_md5

from tabml import DISTRIBUTION
from tabml.config import DataSchema, Params
from tabml.contract import LABEL_OUTPUT, PROBABILITIES_OUTPUT
from tabml.errors import PipelineError
from tabml.parity_report import Parity, build_report
from tabml.stages.export import (
    RECORDED_DISTRIBUTIONS,
    file_md5,
    label_counts,
    run,
    training_class_ratio,
)

GRAPH = b"the graph train wrote"


def write_report(folder: Path, graph: bytes, **changes: Any) -> None:
    """evaluate's report of a passed check of `graph` on 30 test rows, with `changes`."""
    parity = Parity(rows=30, max_abs_diff=2.14e-07, worst_row=0, labels_equal=True)
    report = build_report(parity, tolerance=1e-5, classes=["no", "yes"], graph=graph)
    (folder / "parity.json").write_text(json.dumps({**report, **changes}), encoding="utf-8")


def run_in(folder: Path, schema: DataSchema, params: Params) -> dict[str, Any]:
    """export's run on the inputs in `folder`, as dvc.yaml names them, into folder/out."""
    return run(
        graph_path=folder / "pipeline.onnx",
        parity_path=folder / "parity.json",
        test_path=folder / "test.parquet",
        raw_path=folder / "raw.csv",
        validated_path=folder / "validated.parquet",
        metrics_path=folder / "metrics.json",
        schema=schema,
        params=params,
        onnx_out=folder / "out" / "model.onnx",
        metadata_out=folder / "out" / "meta.json",
    )


def test_file_md5_is_the_hash_dvc_records(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\r\n1,2\n" * 1000)
    assert file_md5(path) == dvc_file_md5(path) == hashlib.md5(path.read_bytes()).hexdigest()


def test_run_writes_onnx_and_metadata(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    graph = b"the graph's bytes, published as they are"
    (tmp_path / "pipeline.onnx").write_bytes(graph)
    write_report(tmp_path, graph)
    # The split is a partition: the first 30 rows are the test set, the rest training's.
    tiny_frame.head(30).to_parquet(tmp_path / "test.parquet")
    tiny_frame.to_parquet(tmp_path / "validated.parquet")
    tiny_frame.to_csv(tmp_path / "raw.csv", index=False)
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.9}')
    metadata = run_in(tmp_path, tiny_schema, default_params)
    written = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert written == metadata
    assert (tmp_path / "out" / "model.onnx").read_bytes() == graph
    assert written["model"]["version"] == hashlib.md5(graph).hexdigest()
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
    assert written["parity"] == {
        "rows": 30,
        "max_abs_diff": 2.14e-07,
        "labels_equal": True,
        "tolerance": 1e-05,
    }
    # Recorded by distribution name, which need not be the package's import name.
    assert written["libraries"][DISTRIBUTION] == version(DISTRIBUTION)
    assert set(written["libraries"]) == set(RECORDED_DISTRIBUTIONS)


def test_training_class_ratio_is_the_whole_less_the_test_set() -> None:
    everything = {"a": 3, "b": 2, "c": 1, "1": 2}
    test = {"a": 1, "b": 1, "c": 1, "1": 1}
    ratio = training_class_ratio(everything, test, ["1", "a", "b", "c", "never"])
    assert ratio == {"1": 0.25, "a": 0.5, "b": 0.25, "c": 0.0, "never": 0.0}


def test_training_class_ratio_needs_a_training_row() -> None:
    with pytest.raises(PipelineError, match=r"no training rows \(2 validated rows, 2 test rows\)"):
        training_class_ratio({"a": 1, "b": 1}, {"a": 1, "b": 1}, ["a", "b"])


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["no", "yes", "no"], {"no": 2, "yes": 1}),
        ([1, 0, 1, 1], {"1": 3, "0": 1}),
        ([True, False, True, True], {"True": 3, "False": 1}),
    ],
)
def test_labels_are_counted_as_text_as_pandas_would_write_them(
    tmp_path: Path, labels: list[Any], expected: dict[str, int]
) -> None:
    frame = pd.DataFrame({"label": labels, "x": range(len(labels))})
    frame.to_parquet(tmp_path / "t.parquet")
    assert label_counts(tmp_path / "t.parquet", "label") == expected
    assert expected == frame["label"].astype(str).value_counts().to_dict()


@pytest.mark.parametrize(
    ("checked", "changes", "message"),
    [
        (b"the graph evaluate checked", {}, r"graph_md5 = '[0-9a-f]{32}', but the md5"),
        (GRAPH, {"tolerance": 1e-3}, r"tolerance = 0.001, but export.parity_tolerance is 1e-05"),
        (GRAPH, {"classes": ["no", "maybe"]}, r"classes = \['no', 'maybe'\], but"),
    ],
)
def test_a_report_of_another_graph_tolerance_or_classes_publishes_nothing(
    tmp_path: Path,
    tiny_frame: pd.DataFrame,
    tiny_schema: DataSchema,
    default_params: Params,
    checked: bytes,
    changes: dict[str, Any],
    message: str,
) -> None:
    (tmp_path / "pipeline.onnx").write_bytes(GRAPH)
    write_report(tmp_path, checked, **changes)
    tiny_frame.head(30).to_parquet(tmp_path / "test.parquet")
    tiny_frame.to_parquet(tmp_path / "validated.parquet")
    with pytest.raises(PipelineError, match=r"parity.json: " + message):
        run_in(tmp_path, tiny_schema, default_params)
    assert not (tmp_path / "out").exists()
