"""evaluate: metrics that mean what they say, and plot data DVC can draw."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from tabml.config import DataSchema, EvaluateParams, TrainParams, parse_schema
from tabml.errors import InputError
from tabml.onnx_graph import to_onnx
from tabml.parity_report import ParityError, read_report
from tabml.stages.evaluate import (
    classification_metrics,
    curve_rows,
    evaluate,
    evaluate_scored,
    permutation_drops,
    run,
)
from tabml.stages.train import fit, model_input

PARAMS = EvaluateParams(importance_repeats=2)


def test_perfect_binary_predictions() -> None:
    y = np.array(["no", "yes", "yes", "no"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.7, 0.3]])
    metrics = classification_metrics(y, proba, ["no", "yes"], "macro")
    assert metrics["accuracy"] == metrics["f1"] == metrics["roc_auc"] == 1.0
    assert 0 < metrics["log_loss"] < 0.4
    assert metrics["test_rows"] == 4


def test_binary_scores_the_last_class_as_positive() -> None:
    y = np.array(["no", "yes", "yes", "no"])
    # Predicts "yes" once, correctly: precision 1, recall 1/2 for the positive class.
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    metrics = classification_metrics(y, proba, ["no", "yes"], "macro")
    assert (metrics["precision"], metrics["recall"]) == (1.0, 0.5)


def test_multiclass_metrics_average() -> None:
    y = np.array(["a", "b", "c", "a"])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.6, 0.2, 0.2], [0.5, 0.3, 0.2]])
    metrics = classification_metrics(y, proba, ["a", "b", "c"], "macro")
    assert metrics["accuracy"] == 0.75
    # Recall per class: a 1, b 1, c 0 -> macro 2/3.
    assert metrics["recall"] == pytest.approx(2 / 3, abs=1e-6)


def _metrics_on_names(
    y: np.ndarray, proba: np.ndarray, classes: list[str], average: str
) -> dict[str, float]:
    """The metrics as scikit-learn computes them on the label names themselves."""
    from sklearn import metrics as skm

    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    binary = len(classes) == 2
    args: dict[str, object] = (
        {"pos_label": classes[-1], "average": "binary"} if binary else {"average": average}
    )
    order = np.argsort(classes)
    names, by_name = [classes[i] for i in order], proba[:, order]
    auc = (
        skm.roc_auc_score(y == classes[-1], proba[:, -1])
        if binary
        else skm.roc_auc_score(y, by_name, multi_class="ovr", labels=names, average=average)
    )
    return {
        "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted, zero_division=0, **args),
        "recall": skm.recall_score(y, predicted, zero_division=0, **args),
        "f1": skm.f1_score(y, predicted, zero_division=0, **args),
        "roc_auc": auc,
        "log_loss": skm.log_loss(y, by_name, labels=names),
    }


@pytest.mark.parametrize("average", ["macro", "weighted", "micro"])
@pytest.mark.parametrize(
    "classes", [["yes", "no"], ["no", "yes"], ["zeta", "alpha", "mid"], ["a", "b", "c", "d"]]
)
def test_metrics_are_scikit_learns_on_the_label_names(classes: list[str], average: str) -> None:
    """Scored as class indices, the metrics are those of the names, in any class order,
    with a class the model never predicts."""
    rng = np.random.default_rng(len(classes))
    y = rng.choice(np.asarray(classes), 300)
    proba = rng.dirichlet(np.ones(len(classes)), 300)
    proba[:, 1] = 0  # the second class is never predicted
    proba /= proba.sum(axis=1, keepdims=True)
    metrics = classification_metrics(y, proba, classes, average)
    expected = _metrics_on_names(y, proba, classes, average)
    assert {name: metrics[name] for name in expected} == pytest.approx(
        {name: round(value, 6) for name, value in expected.items()}, abs=1.5e-6
    )
    assert metrics["test_rows"] == 300


def test_a_label_outside_the_classes_is_named() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(InputError, match=r"test label 'maybe' is not one of .*\['no', 'yes'\]"):
        classification_metrics(np.array(["no", "maybe"]), proba, ["no", "yes"], "macro")


def test_curves_are_bounded_and_thinned() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(["no", "yes"], 2000)
    score = np.clip((y == "yes") * 0.3 + rng.uniform(0, 0.7, 2000), 0, 1)
    proba = np.column_stack([1 - score, score])
    rows = curve_rows(y, proba, ["no", "yes"], EvaluateParams(curve_points=50))
    assert len(rows["roc"]) <= 50
    assert len(rows["precision_recall"]) <= 50
    assert rows["roc"][0] == {"fpr": 0.0, "tpr": 0.0}
    assert rows["roc"][-1] == {"fpr": 1.0, "tpr": 1.0}
    assert len(rows["calibration"]) <= 10
    for row in rows["calibration"]:
        assert 0 <= row["mean_predicted"] <= 1
        assert 0 <= row["fraction_positive"] <= 1


def test_evaluate_and_run_write_metrics_and_plots(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    result = evaluate(model, tiny_frame, tiny_schema, PARAMS)
    assert set(result.metrics) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    importance = result.plots["feature_importance"]
    assert {row["feature"] for row in importance} == {"size", "count", "colour"}
    assert importance == sorted(importance, key=lambda r: -r["importance"])
    assert importance[0]["importance"] > 0

    joblib.dump(model, tmp_path / "model.joblib")
    (tmp_path / "pipeline.onnx").write_bytes(to_onnx(model, tiny_schema, graph_name="m", opset=17))
    tiny_frame.to_parquet(tmp_path / "test.parquet")
    run(
        tmp_path / "model.joblib",
        tmp_path / "test.parquet",
        tiny_schema,
        PARAMS,
        tmp_path / "metrics.json",
        tmp_path / "plots",
        graph_path=tmp_path / "pipeline.onnx",
        parity_tolerance=1e-5,
        parity_out=tmp_path / "reports" / "parity.json",
        predictions_out=tmp_path / "predictions" / "test.parquet",
    )
    written = pd.read_parquet(tmp_path / "predictions" / "test.parquet")
    pd.testing.assert_frame_equal(written, result.predictions)
    assert list(written["actual"].astype(str)) == list(tiny_frame["label"].astype(str))
    assert json.loads((tmp_path / "metrics.json").read_text()) == result.metrics
    # What evaluate writes is what export accepts for this graph, data and tolerance.
    parity = read_report(
        tmp_path / "reports" / "parity.json",
        graph=(tmp_path / "pipeline.onnx").read_bytes(),
        test_rows=len(tiny_frame),
        tolerance=1e-5,
        schema_classes=tiny_schema.target.classes,
    )
    assert parity["labels_equal"] and 0 <= parity["max_abs_diff"] <= 1e-5
    # The graph's probability columns, as scikit-learn orders them.
    assert parity["classes"] == [str(c) for c in model.classes_]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "calibration.json",
        "confusion_matrix.json",
        "feature_importance.json",
        "precision_recall.json",
        "roc.json",
    ]


def test_multiclass_evaluation_uses_schema_class_order(tiny_frame: pd.DataFrame) -> None:
    frame = tiny_frame.copy()
    frame["label"] = np.select([frame["size"] < 33, frame["size"] < 66], ["low", "mid"], "high")
    schema = parse_schema(
        {
            "target": {"name": "label", "classes": ["low", "mid", "high"]},
            "features": {"size": {"dtype": "float"}, "count": {"dtype": "int"}},
        }
    )
    model = fit(frame, schema, TrainParams(estimator="random_forest"))
    result = evaluate(model, frame, schema, PARAMS)
    assert result.metrics["accuracy"] > 0.9
    confusion = result.plots["confusion_matrix"]
    # Every pair of classes once, in the schema's order, and the counts those of the rows.
    assert [(row["actual"], row["predicted"]) for row in confusion] == [
        (actual, predicted)
        for actual in ["low", "mid", "high"]
        for predicted in ["low", "mid", "high"]
    ]
    pairs = result.predictions.astype(str).value_counts()
    assert {(row["actual"], row["predicted"]): row["count"] for row in confusion} == {
        (actual, predicted): int(pairs.get((actual, predicted), 0))
        for actual in ["low", "mid", "high"]
        for predicted in ["low", "mid", "high"]
    }
    assert sum(row["count"] for row in confusion) == len(frame)
    assert list(result.predictions["predicted"].cat.categories) == ["low", "mid", "high"]


class _EvenOdds:
    """A fitted classifier's stand-in that gives every row even odds, as a forest of
    an even number of trees can."""

    classes_ = np.array(["a", "b"])

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return np.full((len(features), 2), 0.5)


def test_a_tie_is_predicted_as_the_model_predicts_it() -> None:
    """With the schema's classes in another order than the model's, a tie goes to the
    model's first class, as its predict and the graph's label give it, in the metrics,
    the confusion counts and the model card's predictions alike."""
    schema = parse_schema(
        {
            "target": {"name": "label", "classes": ["b", "a"]},
            "features": {"size": {"dtype": "float"}},
        }
    )
    test = pd.DataFrame({"size": np.arange(4.0), "label": ["a", "a", "a", "b"]})
    model: Any = _EvenOdds()
    features = model_input(test, schema)
    result = evaluate_scored(model, test, features, model.predict_proba(features), schema, PARAMS)
    assert list(result.predictions["predicted"].astype(str)) == ["a"] * 4
    assert result.metrics["accuracy"] == 0.75
    counts = {
        (row["actual"], row["predicted"]): row["count"] for row in result.plots["confusion_matrix"]
    }
    assert counts == {("b", "b"): 0, ("b", "a"): 1, ("a", "b"): 0, ("a", "a"): 3}


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest"])
@pytest.mark.parametrize("classes", [["no", "yes"], ["low", "mid", "high"]])
def test_permutation_drops_are_scikit_learns_permutation_importance(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, estimator: str, classes: list[str]
) -> None:
    from sklearn.inspection import permutation_importance

    frame = tiny_frame.copy()
    if len(classes) == 3:
        frame["label"] = np.select([frame["size"] < 33, frame["size"] < 66], classes[:2], "high")
    schema = parse_schema(
        {**tiny_schema.model_dump(mode="json"), "target": {"name": "label", "classes": classes}}
    )
    model = fit(frame, schema, TrainParams(estimator=estimator))
    features, y_true = model_input(frame, schema), frame["label"].astype(str).to_numpy()
    params = EvaluateParams(importance_repeats=3, seed=7)
    expected = permutation_importance(
        model, features, y_true, scoring="neg_log_loss", n_repeats=3, random_state=7
    )
    drops = permutation_drops(model, features, y_true, params)
    np.testing.assert_array_equal(drops, expected.importances)


def test_a_graph_that_answers_otherwise_stops_evaluate_before_it_writes(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    """The graph of another fit (other hyperparameters) is not the evaluated model's."""
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    other = fit(
        tiny_frame,
        tiny_schema,
        TrainParams(estimator="logistic_regression", logistic_regression={"C": 0.001}),
    )
    joblib.dump(model, tmp_path / "model.joblib")
    (tmp_path / "pipeline.onnx").write_bytes(to_onnx(other, tiny_schema, graph_name="m", opset=17))
    tiny_frame.to_parquet(tmp_path / "test.parquet")
    with pytest.raises(ParityError, match=r"above export.parity_tolerance = 1e-05"):
        run(
            tmp_path / "model.joblib",
            tmp_path / "test.parquet",
            tiny_schema,
            PARAMS,
            tmp_path / "out" / "metrics.json",
            tmp_path / "out" / "plots",
            graph_path=tmp_path / "pipeline.onnx",
            parity_tolerance=1e-5,
            parity_out=tmp_path / "out" / "parity.json",
            predictions_out=tmp_path / "out" / "predictions.parquet",
        )
    assert not (tmp_path / "out").exists()
