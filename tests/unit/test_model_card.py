"""model_card: every section holds real numbers from the model and the data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabml.config import DataSchema, ModelCardParams, Params, TrainParams
from tabml.errors import InputError
from tabml.stages import model_card
from tabml.stages.model_card import (
    bootstrap_metrics,
    build_card,
    confusion_counts,
    confusion_scores,
    fairness_report,
    predicted_classes,
    render_card,
    slice_groups,
)
from tabml.stages.train import fit, model_input
from tests.lineage import read_card

METADATA: dict[str, Any] = {
    "model": {"version": "m" * 32},
    "data": {"version": "d" * 32, "rows": 120},
    "metrics": {"accuracy": 0.912345678, "f1": 0.9, "test_rows": 24},
}
IMPORTANCE = [{"feature": "size", "importance": 0.3, "std": 0.01}]


def card_params(default_params: Params, **card: Any) -> Params:
    return default_params.model_copy(
        update={"model_card": ModelCardParams.model_validate({"bootstrap_samples": 50, **card})}
    )


def predicted(model: Any, test: pd.DataFrame, schema: DataSchema) -> Any:
    """Each test row's predicted class, as evaluate's predictions give it."""
    return model.predict(model_input(test, schema)).astype(str)


def labels(proba: Any, classes: list[str]) -> Any:
    """The most probable class of each row."""
    return np.asarray(classes)[proba.argmax(axis=1)]


def tiny_card(
    model: Any,
    frame: pd.DataFrame,
    schema: DataSchema,
    params: Params,
    metadata: dict[str, Any] = METADATA,
) -> Any:
    """The card for `model`, trained and tested on `frame` (the tiny fixture)."""
    return build_card(
        predicted=predicted(model, frame, schema),
        train=frame,
        test=frame,
        schema=schema,
        params=params,
        metadata=metadata,
        importance=IMPORTANCE,
    )


def test_card_has_every_section_with_numbers(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    params = card_params(
        default_params,
        slices=["colour", "size"],
        sensitive_attribute="colour",
        limitations=["Tiny data."],
    )
    card = tiny_card(model, tiny_frame, tiny_schema, params)
    accuracy = card.metrics["accuracy"]
    assert accuracy.low <= accuracy.value <= accuracy.high
    assert accuracy.high - accuracy.low > 0
    assert {s.group for s in card.slices if s.column == "colour"} == {"blue", "green", "red"}
    assert len([s for s in card.slices if s.column == "size"]) == 3
    assert sum(s.rows for s in card.slices if s.column == "size") == len(tiny_frame)
    assert card.fairness is not None
    assert 0 <= card.fairness.demographic_parity_difference <= 1
    rates = [g["selection_rate"] for g in card.fairness.by_group]
    assert card.fairness.demographic_parity_difference == pytest.approx(
        max(rates) - min(rates), abs=1e-3
    )
    markdown = render_card(card)
    for heading in (
        "## Intended use",
        "## Training data",
        "## Metrics",
        "## Metrics by slice",
        "## Fairness",
        "## Feature importance",
        "## Limitations",
        "## Lineage",
        "## Params",
    ):
        assert heading in markdown
    assert "Tiny data." in markdown
    assert "`" + "d" * 32 + "`" in markdown
    assert "| size | 0.3 | 0.01 |" in markdown


def test_card_changes_when_params_change(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    def card_for(c: float) -> str:
        params = default_params.model_copy(
            update={
                "train": TrainParams.model_validate(
                    {"estimator": "logistic_regression", "logistic_regression": {"C": c}}
                )
            }
        )
        params = card_params(params)
        model = fit(tiny_frame, tiny_schema, params.train)
        return render_card(tiny_card(model, tiny_frame, tiny_schema, params))

    assert card_for(1.0) != card_for(0.001)


def test_unknown_sensitive_attribute_is_named(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    params = card_params(default_params, sensitive_attribute="gender")
    with pytest.raises(
        InputError,
        match=r"model_card.sensitive_attribute: 'gender' is not a "
        r"feature",
    ):
        tiny_card(model, tiny_frame, tiny_schema, params)


def test_unknown_slice_column_is_named(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    params = card_params(default_params, slices=["size", "region"], sensitive_attribute=None)
    with pytest.raises(
        InputError,
        match=r"model_card.slices: 'region' is not a feature of the schema; "
        r"features are \['size', 'count', 'colour'\]",
    ):
        tiny_card(model, tiny_frame, tiny_schema, params)


def test_bootstrap_is_seeded_and_narrows_with_more_rows() -> None:
    rng = np.random.default_rng(1)
    params = ModelCardParams(bootstrap_samples=200)

    def width(rows: int) -> float:
        y = rng.choice(["a", "b"], rows)
        p = np.where(y == "b", 0.7, 0.3) + rng.normal(0, 0.25, rows)
        proba = np.column_stack([1 - p, p])
        interval = bootstrap_metrics(y, labels(proba, ["a", "b"]), ["a", "b"], params)["accuracy"]
        again = bootstrap_metrics(y, labels(proba, ["a", "b"]), ["a", "b"], params)["accuracy"]
        assert interval == again
        return interval.high - interval.low

    assert width(2000) < width(100)


def test_numeric_slices_are_ordered_ranges() -> None:
    from tabml.config import NumericFeature

    column = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, np.nan])
    groups = slice_groups(column, NumericFeature(dtype="float"), 3)
    assert list(groups.cat.categories) == ["1 to 2.667", "2.667 to 4.333", "4.333 to 6", "missing"]


def test_card_states_its_lineage_for_a_machine(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, default_params.train)
    params = card_params(default_params, intended_use="Lineage test.")
    metadata = {**METADATA, "params": params.model_settings()}
    card = tiny_card(model, tiny_frame, tiny_schema, params, metadata)
    stated = read_card(render_card(card))
    assert stated == {
        "model": {"name": params.export.model_name, "version": "m" * 32},
        "data": {"version": "d" * 32, "rows": 120},
        # The evaluate stage's metrics as metadata.json has them: not rounded.
        "metrics": {"accuracy": 0.912345678, "f1": 0.9, "test_rows": 24},
        # The model's params; the card's own settings stay in its Params section.
        "params": params.model_settings(),
    }
    assert "model_card" not in stated["params"]
    assert '"intended_use": "Lineage test."' in render_card(card)


def test_card_refuses_metadata_exported_with_other_params(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, default_params.train)
    exported = default_params.model_settings()
    exported["split"] = {**exported["split"], "seed": 7}
    metadata = {**METADATA, "params": exported}
    with pytest.raises(InputError, match=r"other params than params.yaml in sections \['split'\]"):
        tiny_card(model, tiny_frame, tiny_schema, card_params(default_params), metadata)


@pytest.mark.parametrize("classes", [["a", "b"], ["a", "b", "c"]])
def test_confusion_scores_match_scikit_learn(classes: list[str]) -> None:
    from sklearn import metrics as skm

    rng = np.random.default_rng(3)
    # A class never predicted and one never present exercise zero_division=0.
    truth = rng.choice(classes, 60)
    pred = rng.choice(classes[:-1] if len(classes) > 2 else classes, 60)
    args: dict[str, Any] = (
        {"pos_label": classes[-1], "average": "binary"}
        if len(classes) == 2
        else {"average": "macro", "labels": classes}
    )
    codes = {c: i for i, c in enumerate(classes)}
    counts = confusion_counts(
        np.array([codes[c] for c in truth]), np.array([codes[c] for c in pred]), len(classes)
    )
    scores = confusion_scores(counts)
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(truth, pred))
    for name, metric in [
        ("f1", skm.f1_score),
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
    ]:
        assert scores[name] == pytest.approx(metric(truth, pred, zero_division=0, **args)), name


def test_fairness_is_fairlearns(tiny_schema: DataSchema) -> None:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        selection_rate,
    )
    from sklearn import metrics as skm

    rng = np.random.default_rng(5)
    test = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], 90)})
    truth = rng.choice(["no", "yes"], 90)
    truth[test["colour"].to_numpy() == "blue"] = "no"  # a group without positives
    pred = rng.choice(["no", "yes"], 90)
    params = ModelCardParams(sensitive_attribute="colour")
    report = fairness_report(test, truth, pred, tiny_schema, params)
    assert report is not None
    groups = slice_groups(test["colour"], tiny_schema.features["colour"], params.slice_bins)
    t, p, g = (truth == "yes").astype(int), (pred == "yes").astype(int), groups.to_numpy()
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": lambda a, b: skm.recall_score(a, b, zero_division=0),
            "accuracy": skm.accuracy_score,
        },
        y_true=t,
        y_pred=p,
        sensitive_features=g,
    )
    expected_groups = [
        {
            "group": str(group),
            **{name: round(float(value), 4) for name, value in frame.by_group.loc[group].items()},
            "rows": int((groups == group).sum()),
        }
        for group in groups.cat.categories
    ]
    assert report.by_group == expected_groups
    assert report.demographic_parity_difference == round(
        float(demographic_parity_difference(t, p, sensitive_features=g)), 4
    )
    assert report.equalized_odds_difference == round(
        float(equalized_odds_difference(t, p, sensitive_features=g)), 4
    )


def test_predictions_of_another_test_split_are_refused(tiny_frame: pd.DataFrame) -> None:
    predictions = pd.DataFrame({"actual": tiny_frame["label"].astype(str), "predicted": "yes"})
    assert list(predicted_classes(predictions, tiny_frame, "label")) == ["yes"] * 120
    with pytest.raises(InputError, match=r"predictions: 60 rows whose actual classes are not"):
        predicted_classes(predictions[:60], tiny_frame, "label")
    flipped = predictions.copy()
    flipped.loc[0, "actual"] = "no" if flipped.loc[0, "actual"] == "yes" else "yes"
    with pytest.raises(InputError, match=r"not the 120 test rows' labels; rerun the evaluate"):
        predicted_classes(flipped, tiny_frame, "label")
    with pytest.raises(InputError, match=r"predictions: no 'predicted' column; rerun the eval"):
        predicted_classes(predictions[["actual"]], tiny_frame, "label")


def test_bootstrap_is_deterministic_whatever_its_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    y = rng.choice(["a", "b", "c"], 300)
    proba = rng.dirichlet([1, 1, 1], 300)
    params = ModelCardParams(bootstrap_samples=120)
    pred = labels(proba, ["a", "b", "c"])
    whole = bootstrap_metrics(y, pred, ["a", "b", "c"], params)
    monkeypatch.setattr(model_card, "BOOTSTRAP_CHUNK_CELLS", 1000)  # 3 replicates a chunk
    assert bootstrap_metrics(y, pred, ["a", "b", "c"], params) == whole
    for interval in whole.values():
        assert interval.low <= interval.value <= interval.high
        assert interval.low < interval.high


def test_bootstrap_refuses_a_label_the_schema_does_not_list() -> None:
    y = np.array(["a", "b", "z"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    with pytest.raises(InputError, match=r"labels \['z'\] are not among .*\['a', 'b'\]"):
        bootstrap_metrics(
            y, labels(proba, ["a", "b"]), ["a", "b"], ModelCardParams(bootstrap_samples=50)
        )


def test_card_evaluates_at_most_max_rows_test_rows(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, default_params: Params
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    test = pd.concat([tiny_frame] * 3, ignore_index=True)  # 360 rows
    params = card_params(default_params, slices=["colour"], max_rows=100)

    def card() -> Any:
        return build_card(
            predicted=predicted(model, test, tiny_schema),
            train=tiny_frame,
            test=test,
            schema=tiny_schema,
            params=params,
            metadata=METADATA,
            importance=IMPORTANCE,
        )

    first = card()
    assert (first.test_rows, first.evaluated_rows) == (360, 100)
    assert sum(row.rows for row in first.slices) == 100
    assert first.fairness is None
    assert "100 held-out rows, a seeded sample of the 360 test rows" in render_card(first)
    assert card() == first

    whole = tiny_card(model, tiny_frame, tiny_schema, card_params(default_params, max_rows=120))
    assert whole.evaluated_rows == whole.test_rows == 120
    assert "Evaluated on 120 held-out rows;" in render_card(whole)
