"""The drift check's core and its `run` on tiny files, and where `tabml drift` finds the
reference when no --reference is given."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.pipeline import Pipeline

from tabml.cli import SPLIT_OUTPUTS, main
from tabml.config import DataSchema, DriftParams, TrainParams
from tabml.errors import InputError
from tabml.monitor.check import DriftCheck, DriftDetectedError, check, run
from tabml.monitor.sample import Sample
from tabml.stages.train import fit

PARAMS = DriftParams(min_sample_rows=20)
EVALUATION = {"accuracy": 0.9, "f1": 0.9}


@pytest.fixture
def fitted(tiny_frame: pd.DataFrame, tiny_schema: DataSchema) -> Pipeline:
    return fit(tiny_frame.iloc[:80], tiny_schema, TrainParams(estimator="logistic_regression"))


@pytest.fixture
def files(tmp_path: Path, tiny_frame: pd.DataFrame, fitted: Pipeline) -> dict[str, Path]:
    """The reference (the first 80 rows), the model and its evaluation metrics."""
    paths = {
        "reference_path": tmp_path / "reference.parquet",
        "model_path": tmp_path / "model.joblib",
        "metrics_path": tmp_path / "metrics.json",
    }
    tiny_frame.iloc[:80].to_parquet(paths["reference_path"], index=False)
    joblib.dump(fitted, paths["model_path"])
    paths["metrics_path"].write_text(json.dumps(EVALUATION))
    return paths


def test_logged_predictions_are_judged_instead_of_the_models(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, fitted: Pipeline
) -> None:
    features = tiny_frame.iloc[80:].drop(columns="label")

    def judged(sample: Sample) -> DriftCheck:
        return check(
            tiny_frame.iloc[:80], sample, tiny_schema, fitted, EVALUATION, PARAMS, "sample"
        )

    predicted = judged(Sample(features, None, None))
    logged = judged(Sample(features, np.full(len(features), "yes"), None))
    assert predicted.summary.predictions.sample_shares != [0.0, 1.0]
    assert logged.summary.predictions.sample_shares == [0.0, 1.0]
    assert logged.result["drift_detected"] is True
    assert "predicted-class distribution shifted" in logged.describe()
    assert logged.summary.live is None


def test_run_writes_both_reports_and_fails_on_drift_only_when_asked(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema, files: dict[str, Path]
) -> None:
    rest = tiny_frame.iloc[80:]
    steady, shifted = tmp_path / "steady.csv", tmp_path / "shifted.csv"
    rest.to_csv(steady, index=False)
    rest.assign(size=rest["size"] + 200).to_csv(shifted, index=False)
    json_out, html_out = tmp_path / "out/drift.json", tmp_path / "out/drift.html"
    arguments = {**files, "schema": tiny_schema, "params": PARAMS}

    outcome = run(sample_path=steady, json_out=json_out, html_out=html_out, **arguments)
    assert outcome.describe() == "no drift"
    assert json.loads(json_out.read_text()) == outcome.result
    assert outcome.summary.live is not None  # the sample carries its labels

    outcome = run(sample_path=shifted, json_out=json_out, html_out=html_out, **arguments)
    assert outcome.describe().startswith("drift detected: 1 of 3 features drifted: size")

    json_out.unlink()
    html_out.unlink()
    with pytest.raises(DriftDetectedError, match=r"^drift detected: 1 of 3 features drifted"):
        run(
            sample_path=shifted,
            json_out=json_out,
            html_out=html_out,
            fail_on_drift=True,
            **arguments,
        )
    assert json.loads(json_out.read_text())["drift_detected"] is True
    assert str(shifted) in html_out.read_text()


def test_split_outputs_are_the_ones_dvc_yaml_wires(repo_root: Path) -> None:
    dvc = yaml.safe_load((repo_root / "dvc.yaml").read_text())
    assert sorted(dvc["stages"]["split"]["outs"]) == sorted(SPLIT_OUTPUTS.values())
    assert set(SPLIT_OUTPUTS) == {"train", "test"}  # drift.reference's choices


def test_drift_reads_the_split_that_drift_reference_names(
    tmp_path: Path,
    repo_root: Path,
    tiny_frame: pd.DataFrame,
    tiny_schema: DataSchema,
    files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["drift"] = {"reference": "test", "min_sample_rows": 20}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(tiny_schema.model_dump(mode="json")))
    (tmp_path / "data/split").mkdir(parents=True)
    tiny_frame.iloc[:60].to_parquet(tmp_path / SPLIT_OUTPUTS["train"], index=False)
    tiny_frame.iloc[:80].to_parquet(tmp_path / SPLIT_OUTPUTS["test"], index=False)
    tiny_frame.iloc[80:].to_csv(tmp_path / "sample.csv", index=False)
    monkeypatch.chdir(tmp_path)
    arguments = [
        "drift",
        "--sample",
        "sample.csv",
        "--model",
        str(files["model_path"]),
        "--schema",
        "schema.yaml",
        "--metrics",
        str(files["metrics_path"]),
    ]

    assert main(arguments) == 0
    assert json.loads((tmp_path / "reports/drift.json").read_text())["reference_rows"] == 80


@pytest.mark.parametrize("missing", ["reference_path", "model_path", "metrics_path"])
def test_run_names_a_missing_pipeline_output_and_what_to_do(
    tmp_path: Path,
    tiny_frame: pd.DataFrame,
    tiny_schema: DataSchema,
    files: dict[str, Path],
    missing: str,
) -> None:
    sample = tmp_path / "sample.csv"
    tiny_frame.iloc[80:].to_csv(sample, index=False)
    absent = tmp_path / "absent" / "file"
    arguments = {**files, missing: absent, "schema": tiny_schema, "params": PARAMS}
    flag = "--" + missing.removesuffix("_path")
    json_out = tmp_path / "out/drift.json"

    with pytest.raises(InputError) as raised:
        run(sample_path=sample, json_out=json_out, html_out=tmp_path / "d.html", **arguments)
    assert str(raised.value) == (
        f"{flag} {str(absent)!r}: no such file; "
        "run `dvc repro`, or `dvc pull` the pipeline's outputs, first"
    )
    assert not json_out.exists()
