"""evaluate: test-set metrics (DVC metrics), the data behind the DVC plots, each test
row's predicted class (which the model card reads), and the check that the ONNX graph
train converted answers as the pipeline does on the same rows (tabml.parity), so the
metrics hold for the model serving runs.

Binary problems score the positive class (the schema's last class); multiclass
problems average per-class scores as params.yaml says and draw micro-averaged
curves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import xlogy
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.pipeline import Pipeline

from tabml.config import DataSchema, EvaluateParams
from tabml.errors import InputError
from tabml.parity import check_scored_parity
from tabml.parity_report import build_report
from tabml.stages.train import model_input

DECIMALS = 6


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float | int]
    plots: dict[str, list[dict[str, Any]]]
    # Each test row's actual and predicted class, in order (model_card reads them).
    predictions: pd.DataFrame


def _round(value: float) -> float:
    return round(float(value), DECIMALS)


def _curve(
    axes: tuple[str, str], xs: NDArray[np.float64], ys: NDArray[np.float64], limit: int
) -> list[dict[str, float]]:
    """A curve's points as rows keyed by `axes`: at most `limit`, evenly spaced, always
    keeping the first and the last. Thinned before the rows are built: a precision-recall
    curve has a point per distinct score, two million on a 2M-row test split."""
    keep = np.arange(len(xs))
    if len(xs) > limit:
        keep = np.unique(np.linspace(0, len(xs) - 1, limit).round().astype(int))
    x_axis, y_axis = axes
    return [{x_axis: _round(x), y_axis: _round(y)} for x, y in zip(xs[keep], ys[keep], strict=True)]


def _class_codes(y: NDArray[Any], classes: list[str]) -> NDArray[np.intp]:
    """Each label's index in `classes`; InputError names a label that is not one."""
    codes = pd.Index(classes).get_indexer(pd.Index(y))
    if (codes < 0).any():
        unknown = str(y[int(np.argmax(codes < 0))])
        raise InputError(f"test label {unknown!r} is not one of the schema's classes {classes}")
    return codes


def classification_metrics(
    y_true: NDArray[Any], proba: NDArray[np.float64], classes: list[str], average: str
) -> dict[str, float | int]:
    """Threshold and ranking metrics; `proba` columns follow `classes`, and each row is
    predicted as the first of its highest probabilities.

    A binary problem's positive class is the last of `classes`."""
    truth = _class_codes(y_true, classes)
    return _metrics_of_indices(truth, proba.argmax(axis=1), proba, average)


def _metrics_of_indices(
    truth: NDArray[np.intp], predicted: NDArray[np.intp], proba: NDArray[np.float64], average: str
) -> dict[str, float | int]:
    """`classification_metrics` of each row's actual and predicted class as an index in
    the classes `proba`'s columns follow.

    scikit-learn sorts the labels it is given to find the classes, several times per
    metric: on a 2M-row test split sorting the label strings took 21 s of evaluate's 41
    to 48, against 1.9 s for these metrics on indices (docs/benchmarks.md). The scores
    are the same: every metric here treats labels as names, whatever they sort as."""
    labels = list(range(proba.shape[1]))
    binary = len(labels) == 2
    label_args: dict[str, Any] = (
        {"pos_label": labels[-1], "average": "binary"} if binary else {"average": average}
    )
    if binary:
        roc_auc = skm.roc_auc_score(truth == labels[-1], proba[:, -1])
    else:
        roc_auc = skm.roc_auc_score(truth, proba, multi_class="ovr", labels=labels, average=average)
    return {
        "accuracy": _round(skm.accuracy_score(truth, predicted)),
        "balanced_accuracy": _round(skm.balanced_accuracy_score(truth, predicted)),
        "precision": _round(skm.precision_score(truth, predicted, zero_division=0, **label_args)),
        "recall": _round(skm.recall_score(truth, predicted, zero_division=0, **label_args)),
        "f1": _round(skm.f1_score(truth, predicted, zero_division=0, **label_args)),
        "roc_auc": _round(roc_auc),
        "log_loss": _round(skm.log_loss(truth, proba, labels=labels)),
        "test_rows": len(truth),
    }


def _scores_for_curves(
    truth: NDArray[np.intp], proba: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Binary: the positive class (the last column). Multiclass: every (row, class) pair
    (micro average). `truth` is each row's class as an index in `proba`'s columns."""
    classes = proba.shape[1]
    if classes == 2:
        return truth == 1, proba[:, -1]
    onehot = truth[:, np.newaxis] == np.arange(classes)
    return onehot.ravel(), proba.ravel()


def curve_rows(
    y_true: NDArray[Any], proba: NDArray[np.float64], classes: list[str], params: EvaluateParams
) -> dict[str, list[dict[str, Any]]]:
    """ROC, precision-recall and calibration rows; `proba` columns follow `classes`."""
    return _curve_rows_of_indices(_class_codes(y_true, classes), proba, params)


def _curve_rows_of_indices(
    truth: NDArray[np.intp], proba: NDArray[np.float64], params: EvaluateParams
) -> dict[str, list[dict[str, Any]]]:
    positive, score = _scores_for_curves(truth, proba)
    fpr, tpr, _ = skm.roc_curve(positive, score)
    precision, recall, _ = skm.precision_recall_curve(positive, score)
    # Calibration of the positive class (binary) or of every class score (multiclass).
    observed, predicted = calibration_curve(positive, score, n_bins=params.calibration_bins)
    return {
        "roc": _curve(("fpr", "tpr"), fpr, tpr, params.curve_points),
        "precision_recall": _curve(
            ("recall", "precision"), recall[::-1], precision[::-1], params.curve_points
        ),
        "calibration": [
            {"mean_predicted": _round(p), "fraction_positive": _round(o)}
            for p, o in zip(predicted, observed, strict=True)
        ],
    }


def confusion_plot_rows(
    truth: NDArray[np.intp], predicted: NDArray[np.intp], classes: list[str]
) -> list[dict[str, Any]]:
    """How many test rows of each actual class (`truth`, indices in `classes`) were
    predicted as each class: one row per pair, zeros included, which the project's
    `confusion_counts` DVC template draws. Rows per pair rather than per test row, so
    the file does not grow with the test split but for its counts' digits (a row per
    test row was 110 MB on a 2M-row test split, tracked in git)."""
    counts = np.bincount(truth * len(classes) + predicted, minlength=len(classes) ** 2)
    pairs = [(actual, predicted) for actual in classes for predicted in classes]
    return [
        {"actual": actual, "predicted": predicted, "count": int(count)}
        for (actual, predicted), count in zip(pairs, counts, strict=True)
    ]


def prediction_frame(
    truth: NDArray[np.intp], predicted: NDArray[np.intp], classes: list[str]
) -> pd.DataFrame:
    """Each test row's actual and predicted class, in order, as categoricals of
    `classes`: in parquet, dictionary-encoded, a few bits a row (528 KB for two million
    rows of two random classes)."""
    categories = pd.Index(classes)
    return pd.DataFrame(
        {
            "actual": pd.Categorical.from_codes(truth, categories=categories),
            "predicted": pd.Categorical.from_codes(predicted, categories=categories),
        }
    )


def _log_loss(onehot: NDArray[np.float64], proba: NDArray[np.float64]) -> float:
    """Log loss as scikit-learn's `neg_log_loss` scorer computes it (negated back), for
    labels one-hot encoded in the model's class order: a binary model's probabilities
    enter as the last class's column alone, and every probability is clipped to
    [eps, 1 - eps]. scikit-learn's `log_loss` spends 2 ms a call checking and encoding
    the labels, which do not change between the shuffles."""
    if proba.shape[1] == 2:
        proba = np.stack([1 - proba[:, -1], proba[:, -1]], axis=1)
    eps = np.finfo(proba.dtype).eps
    loss = -np.sum(xlogy(onehot, np.clip(proba, eps, 1 - eps)), axis=1)
    return float(np.average(loss))


def _shuffled_columns(column: pd.Series, seed: int, repeats: int) -> list[pd.Series]:
    """The column as each of `repeats` shuffles leaves it, drawn as scikit-learn's
    `permutation_importance` draws them from the seed it gives every column: each
    shuffle permutes the previous one's result."""
    rng = np.random.RandomState(seed)
    order = np.arange(len(column))
    shuffled, columns = column, []
    for _ in range(repeats):
        rng.shuffle(order)
        shuffled = shuffled.iloc[order].set_axis(column.index)
        columns.append(shuffled)
    return columns


def permutation_drops(
    model: Pipeline, features: pd.DataFrame, y_true: NDArray[Any], params: EvaluateParams
) -> NDArray[np.float64]:
    """The rise in log loss when each feature is shuffled, one row per feature and one
    column per repeat; the figures of scikit-learn's `permutation_importance` with the
    `neg_log_loss` scorer and the same seed.

    A feature's shuffled copies are scored in one `predict_proba` call, not one call
    per copy, and scored by `_log_loss`: on the bundled data the importance work takes
    0.13 CPU seconds instead of scikit-learn's 0.64, most of which was per-call overhead.
    """
    onehot = (y_true[:, np.newaxis] == model.classes_[np.newaxis, :]).astype(np.float64)
    baseline = _log_loss(onehot, model.predict_proba(features))
    # permutation_importance's draw: one seed from random_state, shared by every column.
    column_seed = np.random.RandomState(params.seed).randint(np.iinfo(np.int32).max + 1)
    rows, repeats = len(features), params.importance_repeats
    drops = np.empty((features.shape[1], repeats))
    for i, name in enumerate(features.columns):
        copies = []
        for shuffled in _shuffled_columns(features[name], column_seed, repeats):
            copy = features.copy()
            copy[name] = shuffled
            copies.append(copy)
        proba = model.predict_proba(pd.concat(copies, ignore_index=True))
        losses = [_log_loss(onehot, proba[r * rows : (r + 1) * rows]) for r in range(repeats)]
        drops[i] = np.asarray(losses) - baseline
    return drops


def feature_importance(
    model: Pipeline, features: pd.DataFrame, y_true: NDArray[Any], params: EvaluateParams
) -> list[dict[str, Any]]:
    """Permutation importance (drop in log loss) on at most `importance_max_rows` rows."""
    if len(features) > params.importance_max_rows:
        rows = np.random.default_rng(params.seed).choice(
            len(features), params.importance_max_rows, replace=False
        )
        features, y_true = features.iloc[np.sort(rows)], y_true[np.sort(rows)]
    drops = permutation_drops(model, features, y_true, params)
    rows_out = [
        {"feature": name, "importance": _round(mean), "std": _round(std)}
        for name, mean, std in zip(
            features.columns, np.mean(drops, axis=1), np.std(drops, axis=1), strict=True
        )
    ]
    return sorted(rows_out, key=lambda row: (-row["importance"], row["feature"]))


def evaluate(
    model: Pipeline, test: pd.DataFrame, schema: DataSchema, params: EvaluateParams
) -> Evaluation:
    features = model_input(test, schema)
    return evaluate_scored(model, test, features, model.predict_proba(features), schema, params)


def evaluate_scored(
    model: Pipeline,
    test: pd.DataFrame,
    features: pd.DataFrame,
    proba: NDArray[np.float64],
    schema: DataSchema,
    params: EvaluateParams,
) -> Evaluation:
    """`evaluate` for test rows already turned into model input (`features`) and scored
    (`proba`, the pipeline's predict_proba of them, as run has them for the parity
    check)."""
    classes, model_classes = schema.target.classes, [str(c) for c in model.classes_]
    y_true = test[schema.target.name].astype(str).to_numpy()
    # The predicted class as the pipeline's predict and the graph's label pick it: the
    # first highest probability in the model's class order, which decides ties.
    schema_index = np.asarray([classes.index(c) for c in model_classes])
    predicted = schema_index[proba.argmax(axis=1)]
    # Order probability columns as the schema lists classes, so the positive class of
    # a binary problem is the schema's last class whatever the estimator's order.
    proba = proba[:, [model_classes.index(c) for c in classes]]
    truth = _class_codes(y_true, classes)
    plots = _curve_rows_of_indices(truth, proba, params)
    plots["confusion_matrix"] = confusion_plot_rows(truth, predicted, classes)
    plots["feature_importance"] = feature_importance(model, features, y_true, params)
    return Evaluation(
        _metrics_of_indices(truth, predicted, proba, params.average),
        plots,
        prediction_frame(truth, predicted, classes),
    )


def run(
    model_path: Path,
    test_path: Path,
    schema: DataSchema,
    params: EvaluateParams,
    metrics_out: Path,
    plots_dir: Path,
    *,
    graph_path: Path,
    parity_tolerance: float,
    parity_out: Path,
    predictions_out: Path,
) -> Evaluation:
    """Metrics, plots and per-row predictions of the pipeline on the test set, and the
    parity of its ONNX graph (`graph_path`) with it there: ParityError above
    `parity_tolerance`."""
    model: Pipeline = joblib.load(model_path)
    test = pd.read_parquet(test_path)
    graph = graph_path.read_bytes()
    # The test rows are turned into model input and their probabilities computed once,
    # for both the parity check and the metrics.
    features = model_input(test, schema)
    proba = model.predict_proba(features)
    parity = check_scored_parity(graph, model, features, proba, schema, parity_tolerance)
    result = evaluate_scored(model, test, features, proba, schema, params)
    metrics_out.parent.mkdir(parents=True, exist_ok=True)
    metrics_out.write_text(json.dumps(result.metrics, indent=2) + "\n", encoding="utf-8")
    plots_dir.mkdir(parents=True, exist_ok=True)
    predictions_out.parent.mkdir(parents=True, exist_ok=True)
    result.predictions.to_parquet(predictions_out, index=False)
    for name, rows in result.plots.items():
        (plots_dir / f"{name}.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    classes = [str(c) for c in model.classes_]
    report = build_report(parity, tolerance=parity_tolerance, classes=classes, graph=graph)
    parity_out.parent.mkdir(parents=True, exist_ok=True)
    parity_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return result
