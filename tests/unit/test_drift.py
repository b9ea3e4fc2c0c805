"""drift: a sample like the reference passes; shifted features and class balance are named."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from tabml.cli import main
from tabml.config import DataSchema, DriftParams, SplitParams, TrainParams, load_schema
from tabml.errors import InputError
from tabml.monitor.drift import DriftSummary, check_sample, compare, numeric_drift, summary_json
from tabml.monitor.html import LABEL_CHARS, abbreviations, bars, render_html
from tabml.monitor.sample import read_sample
from tabml.stages.ingest import bundled_frame
from tabml.stages.split import split_frame
from tabml.stages.train import fit, model_input

PARAMS = DriftParams()
EVALUATION = {"accuracy": 0.96, "f1": 0.95}


@pytest.fixture(scope="module")
def cancer(repo_root: Path) -> tuple[pd.DataFrame, pd.DataFrame, DataSchema, Pipeline]:
    schema = load_schema(repo_root / "schemas/breast_cancer.yaml")
    train, test = split_frame(bundled_frame("breast_cancer"), "diagnosis", SplitParams())
    return train, test, schema, fit(train, schema, TrainParams(estimator="logistic_regression"))


def run_drift(
    cancer: tuple[pd.DataFrame, pd.DataFrame, DataSchema, Pipeline],
    sample: pd.DataFrame,
    params: DriftParams = PARAMS,
    labels: Any = None,
) -> DriftSummary:
    train, _, schema, model = cancer
    features = check_sample(
        sample.drop(columns="diagnosis", errors="ignore"), schema, params, "sample"
    )
    return compare(
        train,
        features,
        schema,
        model.predict(model_input(train, schema)),
        model.predict(model_input(features, schema)),
        params,
        EVALUATION,
        labels,
    )


def test_sample_from_the_test_split_shows_no_drift(cancer: Any) -> None:
    summary = run_drift(cancer, cancer[1])
    assert summary.drifted_features == []
    assert not summary.predictions.drifted
    assert summary.reasons(PARAMS) == []
    assert summary_json(summary, PARAMS)["drift_detected"] is False


def test_one_shifted_feature_is_named(cancer: Any) -> None:
    shifted = cancer[1].copy()
    shifted["mean_texture"] += shifted["mean_texture"].std()
    summary = run_drift(cancer, shifted)
    assert summary.drifted_features == ["mean_texture"]
    [reason] = summary.reasons(PARAMS)
    assert "1 of 30 features drifted: mean_texture" in reason


def test_changed_class_balance_is_flagged(cancer: Any) -> None:
    test = cancer[1]
    malignant = test[test["diagnosis"] == "malignant"]
    benign = test[test["diagnosis"] == "benign"].head(5)
    summary = run_drift(cancer, pd.concat([malignant, benign]))
    assert summary.predictions.drifted
    assert summary.predictions.sample_shares[1] > 0.8
    assert "mean_radius" in summary.drifted_features


def test_thresholds_come_from_params(cancer: Any) -> None:
    shifted = cancer[1].copy()
    shifted["mean_texture"] += shifted["mean_texture"].std()
    lenient = DriftParams(psi_threshold=50.0)
    assert run_drift(cancer, shifted, lenient).drifted_features == []
    tolerant = DriftParams(max_drifted_features=1)
    assert run_drift(cancer, shifted, tolerant).reasons(tolerant) == []


def test_labels_give_live_metrics(cancer: Any) -> None:
    test = cancer[1]
    flipped = np.where(test["diagnosis"] == "benign", "malignant", "benign")
    summary = run_drift(cancer, test, labels=flipped)
    assert summary.live is not None
    assert summary.live.metrics["accuracy"] < 0.1
    assert any("accuracy" in d for d in summary.live.degraded)
    assert any("live metrics fell below" in r for r in summary.reasons(PARAMS))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.iloc[0:0], "the sample has no rows"),
        (lambda s: s.head(10), "10 rows, fewer than drift.min_sample_rows = 30"),
        (lambda s: s.drop(columns=["mean_radius"]), "missing columns ['mean_radius']"),
        (lambda s: s.assign(patient_id=1), "unexpected columns ['patient_id']"),
        (
            lambda s: s.astype({"mean_area": object}).assign(mean_area=["big"] * len(s)),
            "column 'mean_area' must be numeric",
        ),
    ],
)
def test_bad_samples_are_errors_not_a_false_no_drift(
    cancer: Any, change: Any, expected: str
) -> None:
    sample = change(cancer[1].drop(columns="diagnosis"))
    with pytest.raises(InputError, match=re.escape(expected)):
        check_sample(sample, cancer[2], PARAMS, "sample")


def test_logged_predictions_are_read(tmp_path: Path, cancer: Any) -> None:
    test, schema = cancer[1], cancer[2]
    log = tmp_path / "predictions.jsonl"
    lines = [
        json.dumps(
            {
                "timestamp": "2026-11-23T12:00:00Z",
                "model_version": "v1",
                "features": row[list(schema.features)].to_dict(),
                "prediction": {"label": row["diagnosis"], "probabilities": {}},
                "actual": row["diagnosis"],
            }
        )
        for _, row in test.iterrows()
    ]
    log.write_text("\n".join(lines) + "\n")
    sample = read_sample(log, "diagnosis")
    assert sample.features.shape == (len(test), 30)
    assert sample.predictions is not None
    assert list(sample.labels) == list(test["diagnosis"])  # type: ignore[arg-type]

    log.write_text(lines[0] + "\n{broken\n")
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        read_sample(log, "diagnosis")
    log.write_text('{"x": 1}\n')
    with pytest.raises(InputError, match='line 1 has no "features" object'):
        read_sample(log, "diagnosis")


def test_html_report_shows_the_verdict_and_a_chart_per_feature(cancer: Any) -> None:
    shifted = cancer[1].copy()
    shifted["mean_texture"] += shifted["mean_texture"].std()
    page = render_html(run_drift(cancer, shifted), PARAMS, "sample.csv")
    assert "Drift detected: 1 of 30 features drifted: mean_texture" in page
    assert page.count("<svg") == 31  # predictions + one per feature
    assert "<script" not in page


def test_long_chart_labels_keep_start_and_end_and_stay_distinct() -> None:
    alike = [f"Samsung Galaxy S23 Ultra 5G {gb} GB Phantom Black" for gb in (256, 512)]
    labels = ["< 4.801e+04", "pharmacies-and-drug-stores-phone-order", *alike]
    shown = abbreviations(labels)
    assert shown[0] == "< 4.801e+04"
    assert shown[1] == "pharmacies-and-…ores-phone-order" and len(shown[1]) == LABEL_CHARS
    assert shown[2:] == alike, "shortened, the two would read the same"


def test_a_shortened_chart_label_carries_its_full_text_as_a_tooltip() -> None:
    label = "travel-agencies-and-tour-operators-in-store"
    chart = bars([label, "fuel"], [0.5, 0.5], [0.25, 0.75], "merchant")
    assert f"<title>{label}</title>travel-agencies…erators-in-store</text>" in chart
    assert ">fuel</text>" in chart and "<title>fuel: 75.0%</title>" in chart


def test_a_feature_empty_on_one_side_compares_presence() -> None:
    values = pd.Series(np.linspace(0.0, 1.0, 200))
    empty = pd.Series([np.nan] * 200)
    both_empty = numeric_drift("x", empty, empty, PARAMS, 0.01)
    assert not both_empty.drifted and both_empty.p_value == 1.0
    assert both_empty.kind == "numeric" and both_empty.bin_labels == ["missing"]
    appeared = numeric_drift("x", empty, values, PARAMS, 0.01)
    assert appeared.drifted, "a feature that was always empty now has values"
    assert appeared.bin_labels == ["missing", "present"]
    assert appeared.reference_shares == [1.0, 0.0] and appeared.sample_shares == [0.0, 1.0]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_csv_or_parquet_sample_is_read_with_and_without_labels(
    tmp_path: Path, cancer: Any, suffix: str
) -> None:
    test = cancer[1]
    for labelled in (True, False):
        frame = test if labelled else test.drop(columns="diagnosis")
        path = tmp_path / f"sample{suffix}"
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        sample = read_sample(path, "diagnosis")
        assert list(sample.features.columns) == list(cancer[2].features)
        assert sample.features.shape == (len(test), 30)
        assert np.allclose(sample.features["mean_radius"], test["mean_radius"])
        assert sample.predictions is None
        if labelled:
            assert sample.labels is not None
            assert list(sample.labels) == list(test["diagnosis"])
        else:
            assert sample.labels is None


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("absent.csv", None, "no such file"),
        ("sample.txt", b"a,b\n1,2\n", "must be .jsonl (logged predictions), .csv or .parquet"),
        ("sample.parquet", b"not parquet at all", "must be a readable Parquet file"),
        ("sample.csv", b'a,b\n1,"2\n', "must be a readable CSV file"),
        ("sample.csv", b"\xff\xfe\x00a,b\n\x80\x81,2\n", "must be a readable CSV file"),
        ("log.jsonl", b'{"features": {}}\n\xff{"x"', "must be UTF-8 text (logged predictions)"),
    ],
)
def test_an_unreadable_sample_file_is_named(
    tmp_path: Path, name: str, content: bytes | None, expected: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_sample(path, "diagnosis")
    message = str(caught.value)
    assert message.startswith(f"--sample {str(path)!r}: ")
    assert expected in message


@pytest.fixture
def drift_files(
    tmp_path: Path, repo_root: Path, cancer: Any
) -> tuple[list[str], pd.DataFrame, Path]:
    """The arguments `tabml drift` needs apart from --sample, the test split to make a
    sample from, and the folder the files are in."""
    import joblib

    train, test, _, model = cancer
    train.to_parquet(tmp_path / "train.parquet", index=False)
    joblib.dump(model, tmp_path / "model.joblib")
    (tmp_path / "metrics.json").write_text(json.dumps(EVALUATION))
    arguments = [
        "--params",
        str(repo_root / "params.yaml"),
        "drift",
        "--reference",
        str(tmp_path / "train.parquet"),
        "--model",
        str(tmp_path / "model.joblib"),
        "--schema",
        str(repo_root / "schemas/breast_cancer.yaml"),
        "--metrics",
        str(tmp_path / "metrics.json"),
        "--json-out",
        str(tmp_path / "drift.json"),
        "--html-out",
        str(tmp_path / "drift.html"),
    ]
    return arguments, test, tmp_path


def test_fail_on_drift_exits_1_naming_the_drift_and_0_without_it(
    drift_files: tuple[list[str], pd.DataFrame, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    arguments, test, folder = drift_files
    steady, shifted = folder / "steady.csv", folder / "shifted.csv"
    test.to_csv(steady, index=False)
    test.assign(mean_texture=test["mean_texture"] + test["mean_texture"].std()).to_csv(
        shifted, index=False
    )

    assert main([*arguments, "--sample", str(steady), "--fail-on-drift"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tabml drift: no drift (")
    assert json.loads((folder / "drift.json").read_text())["drift_detected"] is False

    assert main([*arguments, "--sample", str(shifted), "--fail-on-drift"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "tabml drift: error: drift detected: 1 of 30 features drifted: mean_texture\n"
    )
    assert "Traceback" not in captured.err
    # The reports are written before the exit, for the workflow to file and attach them.
    assert json.loads((folder / "drift.json").read_text())["drift_detected"] is True

    # Without the flag, drift is reported and the command still succeeds.
    assert main([*arguments, "--sample", str(shifted)]) == 0
    assert capsys.readouterr().out.startswith(
        "tabml drift: drift detected: 1 of 30 features drifted: mean_texture ("
    )
