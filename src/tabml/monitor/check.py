"""The drift check: a production sample against the training reference, judged by the
model's own predictions on both, written as JSON and HTML for a workflow and a person.

`check` is the pure core (frames and a fitted model in, a summary out); `run` reads the
files, writes the reports and fails on drift when asked to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tabml.config import DataSchema, DriftParams
from tabml.errors import PipelineError
from tabml.monitor.drift import DriftSummary, check_sample, compare, summary_json
from tabml.monitor.sample import Sample
from tabml.tables import check_file

_PIPELINE_HINT = "run `dvc repro`, or `dvc pull` the pipeline's outputs, first"


class DriftDetectedError(PipelineError):
    """The production sample drifted past the thresholds in params.yaml."""


@dataclass(frozen=True)
class DriftCheck:
    summary: DriftSummary
    result: dict[str, Any]  # summary_json: what the JSON report holds

    def describe(self) -> str:
        if self.result["drift_detected"]:
            return "drift detected: " + "; ".join(self.result["reasons"])
        return "no drift"


def _predict(model: Any, features: pd.DataFrame, schema: DataSchema) -> NDArray[Any]:
    from tabml.stages.train import model_input

    return np.asarray(model.predict(model_input(features, schema))).astype(str)


def check(
    reference: pd.DataFrame,
    sample: Sample,
    schema: DataSchema,
    model: Any,
    evaluation: dict[str, Any],
    params: DriftParams,
    source: str,
) -> DriftCheck:
    """Compare `sample` (named `source` in errors) with `reference`; the model predicts
    the reference, and the sample too unless it carries its logged predictions."""
    features = check_sample(sample.features, schema, params, source)
    predictions = sample.predictions
    if predictions is None:
        predictions = _predict(model, features, schema)
    summary = compare(
        reference,
        features,
        schema,
        _predict(model, reference, schema),
        predictions.astype(str),
        params,
        evaluation,
        sample.labels,
    )
    return DriftCheck(summary, summary_json(summary, params))


def run(
    *,
    sample_path: Path,
    reference_path: Path,
    model_path: Path,
    schema: DataSchema,
    metrics_path: Path,
    params: DriftParams,
    json_out: Path,
    html_out: Path,
    fail_on_drift: bool = False,
) -> DriftCheck:
    """Write both reports, then raise DriftDetectedError on drift if `fail_on_drift`:
    a workflow that stops on drift still has the reports to file and attach."""
    import joblib

    from tabml.monitor.html import render_html
    from tabml.monitor.sample import read_sample

    sample = read_sample(sample_path, schema.target.name)
    # The pipeline's outputs: a missing one means the pipeline has not run here (or its
    # outputs were not pulled), which the message says rather than a traceback.
    for flag, path in (
        ("--reference", reference_path),
        ("--model", model_path),
        ("--metrics", metrics_path),
    ):
        check_file(path, flag, hint=_PIPELINE_HINT)
    outcome = check(
        pd.read_parquet(reference_path),
        sample,
        schema,
        joblib.load(model_path),
        json.loads(metrics_path.read_text(encoding="utf-8")),
        params,
        str(sample_path),
    )
    for out in (json_out, html_out):
        out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(outcome.result, indent=2) + "\n", encoding="utf-8")
    html_out.write_text(render_html(outcome.summary, params, str(sample_path)), encoding="utf-8")
    if fail_on_drift and outcome.result["drift_detected"]:
        raise DriftDetectedError(outcome.describe())
    return outcome
