"""Prediction log: sampled JSON lines that `tabml drift` reads back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from tabml.config import load_schema
from tabml.monitor.sample import read_sample
from tabml.serve.model import NUMERIC_INPUT
from tabml.serve.prediction_log import PredictionLog

CLASSES = ["benign", "malignant"]
NUMERIC = ["size", "weight"]


def feed_of(rows: int) -> dict[str, np.ndarray]:
    """The model's input: numeric features as the columns of one array, categoricals apart."""
    return {
        NUMERIC_INPUT: np.column_stack(
            [np.arange(rows, dtype=np.float32), np.full(rows, 2.5, np.float32)]
        ),
        "colour": np.array(["red"] * rows, dtype=object).reshape(-1, 1),
    }


def test_every_row_at_rate_one(tmp_path: Path) -> None:
    sink = io.BytesIO()
    log = PredictionLog(sink, 1.0, "v1", CLASSES, NUMERIC)
    proba = np.array([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]], dtype=np.float32)
    feed = feed_of(3)
    feed[NUMERIC_INPUT][1, 0] = np.nan
    assert log.record(feed, ["malignant", "benign", "benign"], proba) == 3
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [line["prediction"]["label"] for line in lines] == ["malignant", "benign", "benign"]
    assert lines[0]["features"] == {"size": 0.0, "weight": 2.5, "colour": "red"}
    assert lines[1]["features"]["size"] is None  # a missing number is logged as null
    assert lines[0]["prediction"]["probabilities"] == {"benign": 0.25, "malignant": 0.75}
    assert lines[0]["model_version"] == "v1"
    assert lines[0]["timestamp"].endswith("+00:00")


def test_lines_are_json_whatever_the_names_and_values_hold() -> None:
    """Keys are encoded once into a template; names with quotes, percent signs or
    non-ASCII, and labels outside the class list, must still give valid JSON lines."""
    sink = io.BytesIO()
    names = ['50% "odd" name', "größe"]
    log = PredictionLog(sink, 1.0, 'v"1', ["a%s", "b"], names)
    feed = {
        NUMERIC_INPUT: np.array([[1.5, np.nan], [-2.0, 3.25e-7]], dtype=np.float32),
        'colour "x"': np.array(['red, "dark"', "%s"], dtype=object).reshape(-1, 1),
    }
    proba = np.array([[0.5, 0.5], [0.125, 0.875]], dtype=np.float32)
    assert log.record(feed, ["a%s", "unlisted"], proba) == 2
    first, second = (json.loads(line) for line in sink.getvalue().splitlines())
    assert first["features"] == {names[0]: 1.5, names[1]: None, 'colour "x"': 'red, "dark"'}
    assert second["features"] == {names[0]: -2.0, names[1]: 3.25e-7, 'colour "x"': "%s"}
    assert first["model_version"] == 'v"1'
    assert first["prediction"] == {"label": "a%s", "probabilities": {"a%s": 0.5, "b": 0.5}}
    assert second["prediction"]["label"] == "unlisted"
    assert second["prediction"]["probabilities"] == {"a%s": 0.125, "b": 0.875}


def test_a_model_without_numeric_features() -> None:
    sink = io.BytesIO()
    log = PredictionLog(sink, 1.0, "v1", CLASSES, [])
    feed = {"colour": np.array(["red", "blue"], dtype=object).reshape(-1, 1)}
    log.record(feed, ["benign", "malignant"], np.full((2, 2), 0.5, np.float32))
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [line["features"] for line in lines] == [{"colour": "red"}, {"colour": "blue"}]


def test_sampling_rate_is_honoured_and_seeded() -> None:
    def logged(seed: int) -> int:
        log = PredictionLog(io.BytesIO(), 0.1, "v1", CLASSES, NUMERIC, seed=seed)
        proba = np.tile(np.array([[0.5, 0.5]], dtype=np.float32), (10_000, 1))
        return log.record(feed_of(10_000), ["benign"] * 10_000, proba)

    assert logged(1) == logged(1)
    assert 850 < logged(2) < 1150

    def logged_one_by_one(seed: int) -> int:
        log = PredictionLog(io.BytesIO(), 0.1, "v1", CLASSES, NUMERIC, seed=seed)
        proba = np.array([[0.5, 0.5]], dtype=np.float32)
        return sum(log.record(feed_of(1), ["benign"], proba) for _ in range(10_000))

    assert logged_one_by_one(1) == logged_one_by_one(1)
    assert 850 < logged_one_by_one(2) < 1150
    off = PredictionLog(io.BytesIO(), 0.0, "v1", CLASSES, NUMERIC)
    assert off.record(feed_of(5), ["benign"] * 5, np.zeros((5, 2), np.float32)) == 0
    with pytest.raises(ValueError, match=r"sample_rate = 1\.5: must be between 0 and 1"):
        PredictionLog(io.BytesIO(), 1.5, "v1", CLASSES, NUMERIC)


def test_drift_reads_the_log_back(tmp_path: Path, repo_root: Path) -> None:
    schema = load_schema(repo_root / "schemas/breast_cancer.yaml")
    rng = np.random.default_rng(0)
    names = list(schema.features)
    feed = {NUMERIC_INPUT: rng.uniform(1, 2, (40, len(names))).astype(np.float32)}
    path = tmp_path / "predictions.jsonl"
    with path.open("wb") as sink:
        log = PredictionLog(sink, 1.0, "v1", CLASSES, names)
        log.record(feed, ["benign"] * 40, np.full((40, 2), 0.5, np.float32))
        log.close()
    sample = read_sample(path, schema.target.name)
    assert list(sample.features.columns) == list(schema.features)
    assert len(sample.features) == 40
    assert sample.predictions is not None
    assert set(sample.predictions) == {"benign"}
