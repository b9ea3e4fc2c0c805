"""model_card: a versioned Markdown model card with the numbers behind every claim.

Sections: intended use, training data (version and summary statistics), params,
test metrics with bootstrap confidence intervals, metrics per slice, fairness across
a sensitive attribute, permutation importance (the evaluate stage's, on at
most evaluate.importance_max_rows rows), known limitations, lineage
(model and data versions and the test metrics, as metadata.json records them, in a
JSON block that a machine reads back) and params.
The card data is also written as JSON so that it can be diffed and served.
The model's predictions are the evaluate stage's (a parquet file of each test row's
actual and predicted class): the card never loads the model, as scikit-learn's import
alone costs about a CPU-second.
Metrics, intervals, slices and fairness use at most model_card.max_rows test rows, a
seeded sample of a larger test split, so the card's cost is bounded on any data size.
Like the metadata, the card depends on the stage's declared inputs only: no commit, date
or host, so the same inputs give the same card on any commit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tabml.config import DataSchema, ModelCardParams, NumericFeature, Params
from tabml.errors import InputError
from tabml.lineage import CARD_SECTION, LINEAGE_HEADING, PARAMS_HEADING

DECIMALS = 4
# Bootstrap replicates are drawn in chunks whose index matrix holds at most this many
# row indices (32 MB of int64), so memory stays flat however many replicates are asked.
BOOTSTRAP_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class SliceRow:
    column: str
    group: str
    rows: int
    accuracy: float
    f1: float | None


@dataclass(frozen=True)
class Fairness:
    attribute: str
    positive_class: str
    demographic_parity_difference: float
    equalized_odds_difference: float
    by_group: list[dict[str, Any]]


@dataclass(frozen=True)
class ModelCard:
    name: str
    model_version: str
    data_version: str
    data_rows: int
    estimator: str
    hyperparameters: dict[str, Any]
    intended_use: str
    classes: list[str]
    train_rows: int
    test_rows: int
    # Test rows behind metrics, slices and fairness: all of them up to model_card.max_rows.
    evaluated_rows: int
    class_balance: dict[str, float]
    feature_summary: list[dict[str, Any]]
    metrics: dict[str, Interval]
    confidence: float
    slices: list[SliceRow]
    fairness: Fairness | None
    importance: list[dict[str, Any]]
    limitations: list[str]
    params: dict[str, Any]
    # The evaluate stage's test metrics as metadata.json carries them, unrounded.
    test_metrics: dict[str, Any]


def _r(value: float | NDArray[np.float64]) -> float:
    """A score rounded for the card; a 0-d array (one confusion matrix's score) too."""
    return round(float(value), DECIMALS)


def _divide(numerator: NDArray[Any], denominator: NDArray[Any]) -> NDArray[np.float64]:
    """numerator / denominator, and 0 where the denominator is 0 (scikit-learn's
    zero_division=0)."""
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def confusion_scores(counts: NDArray[np.int64]) -> dict[str, NDArray[np.float64]]:
    """Accuracy, F1, precision and recall of confusion matrices `counts[..., true, pred]`,
    all at once, as scikit-learn scores them with zero_division=0: binary problems
    (2 classes) score the last class, multiclass ones average the classes (macro)."""
    hits = np.diagonal(counts, axis1=-2, axis2=-1)
    predicted, actual = counts.sum(axis=-2), counts.sum(axis=-1)
    per_class = {
        "f1": _divide(2 * hits, predicted + actual),
        "precision": _divide(hits, predicted),
        "recall": _divide(hits, actual),
    }
    binary = counts.shape[-1] == 2
    return {
        "accuracy": _divide(hits.sum(axis=-1), actual.sum(axis=-1)),
        **{
            name: scores[..., -1] if binary else scores.mean(axis=-1)
            for name, scores in per_class.items()
        },
    }


def class_codes(labels: NDArray[Any], classes: list[str]) -> NDArray[np.int64]:
    """Each label's position in `classes`; a label the schema does not list is an error."""
    codes = pd.Index(classes).get_indexer(pd.Index(labels)).astype(np.int64)
    if (codes < 0).any():
        unknown = sorted({str(label) for label in labels[codes < 0]})
        raise InputError(f"labels {unknown} are not among the schema's classes {classes}")
    return codes


def confusion_counts(
    truth: NDArray[np.int64], pred: NDArray[np.int64], n_classes: int
) -> NDArray[np.int64]:
    cells = truth * n_classes + pred
    return np.bincount(cells, minlength=n_classes**2).reshape(n_classes, n_classes)


def bootstrap_counts(
    cells: NDArray[np.int64], n_classes: int, params: ModelCardParams
) -> NDArray[np.int64]:
    """One confusion matrix per bootstrap replicate, `[replicate, true, pred]`.

    Each chunk of replicates is a seeded index matrix of resampled rows; offsetting each
    replicate's cells lets one bincount count them all. The generator's stream does not
    depend on the chunking, so the result is the same for any BOOTSTRAP_CHUNK_CELLS.
    """
    rows, size = len(cells), n_classes**2
    rng = np.random.default_rng(params.seed)
    chunk = max(1, BOOTSTRAP_CHUNK_CELLS // max(rows, 1))
    counts = []
    for start in range(0, params.bootstrap_samples, chunk):
        replicates = min(chunk, params.bootstrap_samples - start)
        index = rng.integers(0, rows, (replicates, rows))
        offsets = np.arange(replicates)[:, None] * size
        flat = np.bincount((cells[index] + offsets).ravel(), minlength=replicates * size)
        counts.append(flat.reshape(replicates, n_classes, n_classes))
    return np.concatenate(counts)


def bootstrap_metrics(
    y_true: NDArray[Any], y_pred: NDArray[Any], classes: list[str], params: ModelCardParams
) -> dict[str, Interval]:
    """Point estimates with percentile bootstrap intervals over resampled test rows."""
    truth, pred = class_codes(y_true, classes), class_codes(y_pred, classes)
    point = confusion_scores(confusion_counts(truth, pred, len(classes)))
    samples = confusion_scores(bootstrap_counts(truth * len(classes) + pred, len(classes), params))
    tail = (1 - params.confidence) / 2 * 100
    return {
        name: Interval(
            _r(point[name]),
            _r(np.percentile(samples[name], tail)),
            _r(np.percentile(samples[name], 100 - tail)),
        )
        for name in point
    }


def slice_groups(column: pd.Series, spec: Any, bins: int) -> pd.Series:
    """Group labels in a natural order: categories as they are, numbers cut into `bins`
    quantile ranges ("6.98 to 12.3"), gaps as "missing"."""
    if isinstance(spec, NumericFeature):
        codes, edges = pd.qcut(column, q=bins, labels=False, retbins=True, duplicates="drop")
        names = [f"{edges[i]:.4g} to {edges[i + 1]:.4g}" for i in range(len(edges) - 1)]
        labels = codes.map(lambda code: names[int(code)] if code == code else "missing")
        order = [*names, "missing"]
    else:
        labels = column.astype(object).where(column.notna(), "missing").astype(str)
        order = [*sorted(set(labels) - {"missing"}), "missing"]
    present = [name for name in order if name in set(labels)]
    return pd.Series(pd.Categorical(labels, categories=present, ordered=True), index=column.index)


def slice_metrics(
    test: pd.DataFrame,
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    schema: DataSchema,
    params: ModelCardParams,
) -> list[SliceRow]:
    rows: list[SliceRow] = []
    classes = schema.target.classes
    truth_codes, pred_codes = class_codes(y_true, classes), class_codes(y_pred, classes)
    for column in params.slices:
        groups = slice_groups(test[column], schema.features[column], params.slice_bins)
        for group in groups.cat.categories:
            mask = (groups == group).to_numpy()
            truth = truth_codes[mask]
            scores = confusion_scores(confusion_counts(truth, pred_codes[mask], len(classes)))
            has_all = len(set(truth)) == len(classes)
            rows.append(
                SliceRow(
                    column,
                    str(group),
                    int(mask.sum()),
                    _r(scores["accuracy"]),
                    _r(scores["f1"]) if has_all else None,
                )
            )
    return rows


def _rates(
    truth: NDArray[np.bool_], pred: NDArray[np.bool_], groups: pd.Series
) -> dict[str, NDArray[Any]]:
    """Per group (in category order): its rows, how often the positive class is
    predicted, the true and false positive rates (0 where a group has no positive, or
    negative, rows: fairlearn's and scikit-learn's zero_division=0) and accuracy."""
    codes, size = groups.cat.codes.to_numpy(), len(groups.cat.categories)

    def count(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        return np.bincount(codes[mask], minlength=size)

    rows = count(np.ones(len(codes), dtype=bool))
    return {
        "selection_rate": _divide(count(pred), rows),
        "true_positive_rate": _divide(count(pred & truth), count(truth)),
        "false_positive_rate": _divide(count(pred & ~truth), count(~truth)),
        "accuracy": _divide(count(pred == truth), rows),
        "rows": rows,
    }


def _spread(values: NDArray[np.float64]) -> float:
    return float(values.max() - values.min())


def fairness_report(
    test: pd.DataFrame,
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    schema: DataSchema,
    params: ModelCardParams,
) -> Fairness | None:
    """Demographic-parity and equalized-odds differences for the positive class, as
    fairlearn defines them (the largest gap between groups in selection rate; in true or
    false positive rate, whichever is larger), counted here with numpy: fairlearn
    imports scikit-learn, a second of CPU in a stage that needs nothing else from it.

    Multiclass problems are judged one class against the rest, for the schema's last
    class, as for binary ones.
    """
    attribute = params.sensitive_attribute
    if attribute is None:
        return None
    groups = slice_groups(test[attribute], schema.features[attribute], params.slice_bins)
    positive = schema.target.classes[-1]
    rates = _rates(np.asarray(y_true == positive), np.asarray(y_pred == positive), groups)
    shown = ("selection_rate", "true_positive_rate", "accuracy")
    by_group = [
        {
            "group": str(group),
            **{name: _r(rates[name][i]) for name in shown},
            "rows": int(rates["rows"][i]),
        }
        for i, group in enumerate(groups.cat.categories)
    ]
    return Fairness(
        attribute=attribute,
        positive_class=positive,
        demographic_parity_difference=_r(_spread(rates["selection_rate"])),
        equalized_odds_difference=_r(
            max(_spread(rates["true_positive_rate"]), _spread(rates["false_positive_rate"]))
        ),
        by_group=by_group,
    )


def feature_summary(train: pd.DataFrame, schema: DataSchema) -> list[dict[str, Any]]:
    summary = []
    for name in schema.features:
        column = train[name]
        row: dict[str, Any] = {"feature": name, "null_share": _r(column.isna().mean())}
        if name in schema.numeric_features:
            row.update(
                mean=_r(column.mean()),
                std=_r(column.std()),
                min=_r(column.min()),
                max=_r(column.max()),
            )
        else:
            row["top"] = str(column.mode(dropna=True).iloc[0]) if column.notna().any() else None
            row["distinct"] = int(column.nunique())
        summary.append(row)
    return summary


def check_columns(params: ModelCardParams, schema: DataSchema) -> None:
    named = [("model_card.slices", c) for c in params.slices]
    if params.sensitive_attribute is not None:
        named.append(("model_card.sensitive_attribute", params.sensitive_attribute))
    for key, column in named:
        if column not in schema.features:
            raise InputError(
                f"{key}: {column!r} is not a feature of the schema; "
                f"features are {list(schema.features)}"
            )


def check_params(params: Params, metadata: dict[str, Any]) -> None:
    """The model in metadata.json was built with the params this card reports."""
    recorded = metadata.get("params")
    if recorded is None:
        return
    current = params.model_settings()
    differ = sorted(
        k for k in recorded.keys() | current.keys() if recorded.get(k) != current.get(k)
    )
    if differ:
        raise InputError(
            f"metadata.json records other params than params.yaml in sections {differ}: "
            "the exported model is out of date; run `dvc repro`"
        )


def predicted_classes(predictions: pd.DataFrame, test: pd.DataFrame, target: str) -> NDArray[Any]:
    """Each test row's predicted class, from evaluate's predictions (the actual and the
    predicted class of every test row, in order), once their actual classes show that
    they belong to this test split."""
    missing = [name for name in ("actual", "predicted") if name not in predictions.columns]
    if missing:
        raise InputError(
            f"predictions: no {' or '.join(repr(name) for name in missing)} column; "
            "rerun the evaluate stage"
        )
    actual = test[target].astype(str).to_numpy()
    if len(predictions) != len(actual) or not np.array_equal(
        predictions["actual"].astype(str).to_numpy(), actual
    ):
        raise InputError(
            f"predictions: {len(predictions)} rows whose actual classes are not the "
            f"{len(actual)} test rows' labels; rerun the evaluate stage"
        )
    return predictions["predicted"].astype(str).to_numpy(dtype=object)


def sample_rows(test: pd.DataFrame, params: ModelCardParams) -> pd.DataFrame:
    """All test rows up to params.max_rows; above it, a seeded sample of that many, in
    their original order."""
    if len(test) <= params.max_rows:
        return test
    rows = np.random.default_rng(params.seed).choice(len(test), params.max_rows, replace=False)
    return test.iloc[np.sort(rows)].reset_index(drop=True)


def evaluated_on(evaluated: int, test_rows: int) -> str:
    if evaluated == test_rows:
        return f"{test_rows} held-out rows"
    return (
        f"{evaluated} held-out rows, a seeded sample of the {test_rows} test rows "
        "(model_card.max_rows)"
    )


def build_card(
    *,
    predicted: NDArray[Any],
    train: pd.DataFrame,
    test: pd.DataFrame,
    schema: DataSchema,
    params: Params,
    metadata: dict[str, Any],
    importance: list[dict[str, Any]],
) -> ModelCard:
    card_params = params.model_card
    check_columns(card_params, schema)
    check_params(params, metadata)
    classes = schema.target.classes
    if len(predicted) != len(test):
        raise InputError(f"{len(predicted)} predicted classes for {len(test)} test rows")
    test_rows = len(test)
    # The same seeded rows of both: the sample depends on the row count alone.
    test = sample_rows(test, card_params)
    sampled = sample_rows(pd.DataFrame({"predicted": predicted}), card_params)
    y_pred = sampled["predicted"].to_numpy()
    y_true = test[schema.target.name].astype(str).to_numpy()
    balance = train[schema.target.name].astype(str).value_counts(normalize=True)
    return ModelCard(
        name=params.export.model_name,
        model_version=metadata["model"]["version"],
        data_version=metadata["data"]["version"],
        data_rows=metadata["data"]["rows"],
        estimator=params.train.estimator,
        hyperparameters=params.train.hyperparameters(),
        intended_use=card_params.intended_use,
        classes=classes,
        train_rows=len(train),
        test_rows=test_rows,
        evaluated_rows=len(test),
        class_balance={c: _r(balance.get(c, 0.0)) for c in classes},
        feature_summary=feature_summary(train, schema),
        metrics=bootstrap_metrics(y_true, y_pred, classes, card_params),
        confidence=card_params.confidence,
        slices=slice_metrics(test, y_true, y_pred, schema, card_params),
        fairness=fairness_report(test, y_true, y_pred, schema, card_params),
        importance=importance,
        limitations=[
            *card_params.limitations,
            f"Evaluated on {evaluated_on(len(test), test_rows)}; intervals are "
            f"{card_params.confidence:.0%} bootstrap intervals over those rows.",
            "Trained on the feature ranges summarised above; inputs outside them are "
            "extrapolation.",
        ],
        params={**params.model_settings(), CARD_SECTION: card_params.model_dump(mode="json")},
        test_metrics=metadata["metrics"],
    )


def _cell(value: Any) -> str:
    return "—" if value is None else str(value)


def render_lineage(card: ModelCard) -> list[str]:
    """Where the model came from, as metadata.json records it, in a block a machine reads
    back (tests/lineage.py) and checks against GET /metadata and the image labels."""
    lineage = {
        "model": {"name": card.name, "version": card.model_version},
        "data": {"version": card.data_version, "rows": card.data_rows},
        "metrics": card.test_metrics,
    }
    return [
        LINEAGE_HEADING,
        "",
        "The model and data this card describes, and the evaluate stage's test metrics, "
        "as the model's metadata.json records them. A serving container reports the same "
        "at `GET /metadata` and in its `io.tabml.*` image labels, and the commit it was "
        "built from in `org.opencontainers.image.revision`; the params follow below.",
        "",
        "```json",
        json.dumps(lineage, indent=2),
        "```",
    ]


def render_card(card: ModelCard) -> str:
    """The model card as Markdown (pure)."""
    lines = [
        f"# Model card: {card.name}",
        "",
        f"- Model version: `{card.model_version}` (md5 of model.onnx)",
        f"- Data version: `{card.data_version}` (DVC md5 of the raw data)",
        f"- Estimator: {card.estimator} with "
        + ", ".join(f"{k}={v}" for k, v in card.hyperparameters.items()),
        f"- Classes: {', '.join(card.classes)} (positive class: {card.classes[-1]})",
        "",
        "## Intended use",
        "",
        card.intended_use,
        "",
        "## Training data",
        "",
        f"{card.train_rows} training rows and {card.test_rows} test rows. Class balance in "
        "training: "
        + ", ".join(f"{c} {share:.1%}" for c, share in card.class_balance.items())
        + ".",
        "",
        "| feature | mean | std | min | max | top | distinct | null share |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in card.feature_summary:
        lines.append(
            "| "
            + " | ".join(
                _cell(row.get(k))
                for k in ("feature", "mean", "std", "min", "max", "top", "distinct", "null_share")
            )
            + " |"
        )
    level = f"{card.confidence:.0%}"
    lines += [
        "",
        "## Metrics",
        "",
        f"On the test set, with {level} bootstrap intervals:",
        "",
        f"| metric | value | {level} interval |",
        "|---|---:|---|",
    ]
    lines += [f"| {name} | {i.value} | {i.low} to {i.high} |" for name, i in card.metrics.items()]
    lines += ["", "## Metrics by slice", ""]
    if card.slices:
        lines += ["| column | group | rows | accuracy | f1 |", "|---|---|---:|---:|---:|"]
        lines += [
            f"| {s.column} | {s.group} | {s.rows} | {s.accuracy} | {_cell(s.f1)} |"
            for s in card.slices
        ]
    else:
        lines.append("No slices configured (`model_card.slices` in params.yaml).")
    lines += ["", "## Fairness", ""]
    if card.fairness:
        f = card.fairness
        lines += [
            f"Across groups of `{f.attribute}`, for the positive class `{f.positive_class}`:",
            "",
            f"- Demographic-parity difference: {f.demographic_parity_difference}",
            f"- Equalized-odds difference: {f.equalized_odds_difference}",
            "",
            "| group | rows | selection rate | true positive rate | accuracy |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {g['group']} | {g['rows']} | {g['selection_rate']} | "
            f"{g['true_positive_rate']} | {g['accuracy']} |"
            for g in f.by_group
        ]
    else:
        lines.append("No sensitive attribute configured (`model_card.sensitive_attribute`).")
    lines += [
        "",
        "## Feature importance",
        "",
        "Permutation importance on the test set (drop in log loss when a feature is shuffled):",
        "",
        "| feature | importance | std |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['feature']} | {r['importance']} | {r['std']} |" for r in card.importance]
    lines += [
        "",
        "## Limitations",
        "",
        *[f"- {item}" for item in card.limitations],
        "",
        *render_lineage(card),
        "",
        PARAMS_HEADING,
        "",
        "The settings the model was built with, and the card's own (`model_card`):",
        "",
        "",
        "```json",
        json.dumps(card.params, indent=2),
        "```",
    ]
    return "\n".join(lines) + "\n"


def run(
    *,
    predictions_path: Path,
    train_path: Path,
    test_path: Path,
    schema: DataSchema,
    params: Params,
    metadata_path: Path,
    importance_path: Path,
    card_out: Path,
    json_out: Path,
) -> ModelCard:
    from tabml.tables import read_by_column

    test = read_by_column(test_path)
    card = build_card(
        predicted=predicted_classes(pd.read_parquet(predictions_path), test, schema.target.name),
        train=read_by_column(train_path),
        test=test,
        schema=schema,
        params=params,
        metadata=json.loads(metadata_path.read_text(encoding="utf-8")),
        importance=json.loads(importance_path.read_text(encoding="utf-8")),
    )
    card_out.parent.mkdir(parents=True, exist_ok=True)
    card_out.write_text(render_card(card), encoding="utf-8")
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(asdict(card), indent=2) + "\n", encoding="utf-8")
    return card
