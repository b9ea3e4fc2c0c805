"""Drift between the training reference and a production sample (pure functions).

Numeric features: the two-sample Kolmogorov-Smirnov test and the population stability
index (PSI) over quantile bins of the reference; a feature drifts when both agree
(KS p-value below the Bonferroni-corrected level and PSI at or above its threshold),
which keeps small samples from raising false alarms. Categorical features: the
chi-squared test of the category counts. Predictions: PSI and chi-squared of the
predicted-class shares. With ground-truth labels, the live metrics are compared with
the evaluation metrics. The statistics are scipy's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from tabml.config import DataSchema, DriftParams
from tabml.errors import InputError

# Keeps empty bins from making PSI infinite; small against any real share.
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    test: str
    statistic: float
    p_value: float
    psi: float | None
    drifted: bool
    reference_bins: list[float] = field(default_factory=list)
    reference_shares: list[float] = field(default_factory=list)
    sample_shares: list[float] = field(default_factory=list)
    bin_labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PredictionDrift:
    classes: list[str]
    reference_shares: list[float]
    sample_shares: list[float]
    psi: float
    p_value: float
    drifted: bool


@dataclass(frozen=True)
class LiveMetrics:
    rows: int
    metrics: dict[str, float]
    evaluation: dict[str, float]
    degraded: list[str]


@dataclass(frozen=True)
class DriftSummary:
    reference_rows: int
    sample_rows: int
    features: list[FeatureDrift]
    predictions: PredictionDrift
    live: LiveMetrics | None
    alpha: float

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / len(self.features)

    def reasons(self, params: DriftParams) -> list[str]:
        reasons = []
        if len(self.drifted_features) > params.max_drifted_features:
            reasons.append(
                f"{len(self.drifted_features)} of {len(self.features)} features "
                f"drifted: {', '.join(self.drifted_features)}"
            )
        if self.predictions.drifted:
            reasons.append(
                f"the predicted-class distribution shifted (PSI {self.predictions.psi:.3f})"
            )
        if self.live and self.live.degraded:
            reasons.append("live metrics fell below evaluation: " + ", ".join(self.live.degraded))
        return reasons


def psi(reference: NDArray[np.float64], sample: NDArray[np.float64]) -> float:
    """Population stability index between two share vectors over the same bins."""
    ref = np.clip(reference, PSI_FLOOR, None)
    cur = np.clip(sample, PSI_FLOOR, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _shares(counts: NDArray[Any]) -> NDArray[np.float64]:
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype=float)


def _presence(values: pd.Series) -> pd.Series:
    return values.isna().map({True: "missing", False: "present"})


def numeric_drift(
    name: str, reference: pd.Series, sample: pd.Series, params: DriftParams, alpha: float
) -> FeatureDrift:
    ref, cur = reference.dropna().to_numpy(float), sample.dropna().to_numpy(float)
    if not len(ref) or not len(cur):
        # A side with no values at all (a feature the schema lets be empty) has no
        # distribution for KS or quantile bins: compare how often the feature is present.
        presence = categorical_drift(name, _presence(reference), _presence(sample), alpha)
        return replace(presence, kind="numeric")
    ks = stats.ks_2samp(ref, cur)
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, params.psi_bins + 1))[1:-1])
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    ref_shares = _shares(np.histogram(ref, edges)[0])
    cur_shares = _shares(np.histogram(cur, edges)[0])
    value = psi(ref_shares, cur_shares)
    labels = [f"< {inner[0]:.4g}"] if len(inner) else ["all"]
    labels += [f"{lo:.4g} to {hi:.4g}" for lo, hi in pairwise(inner)]
    labels += [f">= {inner[-1]:.4g}"] if len(inner) else []
    return FeatureDrift(
        feature=name,
        kind="numeric",
        test="ks",
        statistic=float(ks.statistic),
        p_value=float(ks.pvalue),
        psi=value,
        drifted=bool(ks.pvalue < alpha and value >= params.psi_threshold),
        reference_bins=[float(e) for e in inner],
        reference_shares=ref_shares.tolist(),
        sample_shares=cur_shares.tolist(),
        bin_labels=labels,
    )


def categorical_drift(
    name: str, reference: pd.Series, sample: pd.Series, alpha: float
) -> FeatureDrift:
    categories = sorted(set(reference.dropna().astype(str)) | set(sample.dropna().astype(str)))
    ref_counts = reference.astype(str).value_counts().reindex(categories, fill_value=0)
    cur_counts = sample.astype(str).value_counts().reindex(categories, fill_value=0)
    table = np.vstack([ref_counts.to_numpy(), cur_counts.to_numpy()])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        statistic, p_value = 0.0, 1.0
    else:
        result = stats.chi2_contingency(table)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    ref_shares, cur_shares = _shares(ref_counts.to_numpy()), _shares(cur_counts.to_numpy())
    return FeatureDrift(
        feature=name,
        kind="categorical",
        test="chi2",
        statistic=statistic,
        p_value=p_value,
        psi=psi(ref_shares, cur_shares),
        drifted=p_value < alpha,
        reference_shares=ref_shares.tolist(),
        sample_shares=cur_shares.tolist(),
        bin_labels=categories,
    )


def prediction_drift(
    reference: NDArray[Any], sample: NDArray[Any], classes: list[str], params: DriftParams
) -> PredictionDrift:
    ref_counts = np.array([(reference == c).sum() for c in classes])
    cur_counts = np.array([(sample == c).sum() for c in classes])
    table = np.vstack([ref_counts, cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    p_value = 1.0 if table.shape[1] < 2 else float(stats.chi2_contingency(table).pvalue)
    ref_shares, cur_shares = _shares(ref_counts), _shares(cur_counts)
    value = psi(ref_shares, cur_shares)
    return PredictionDrift(
        classes,
        ref_shares.tolist(),
        cur_shares.tolist(),
        value,
        p_value,
        drifted=bool(value >= params.prediction_psi_threshold and p_value < params.p_value),
    )


def live_metrics(
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    classes: list[str],
    evaluation: dict[str, Any],
    params: DriftParams,
) -> LiveMetrics:
    from sklearn import metrics as skm

    binary = len(classes) == 2
    args: dict[str, Any] = (
        {"pos_label": classes[-1], "average": "binary"}
        if binary
        else {"average": "macro", "labels": classes}
    )
    live = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0, **args)),
    }
    reference = {name: float(evaluation[name]) for name in live if name in evaluation}
    degraded = [
        f"{name} {live[name]:.3f} against {reference[name]:.3f}"
        for name in reference
        if reference[name] - live[name] > params.metric_tolerance
    ]
    return LiveMetrics(len(y_true), live, reference, degraded)


def check_sample(
    sample: pd.DataFrame, schema: DataSchema, params: DriftParams, source: str
) -> pd.DataFrame:
    """The sample's feature columns, typed; every problem named, never a silent pass."""
    if sample.empty:
        raise InputError(f"{source}: the sample has no rows; nothing to compare")
    if len(sample) < params.min_sample_rows:
        raise InputError(
            f"{source}: {len(sample)} rows, fewer than drift.min_sample_rows = "
            f"{params.min_sample_rows}; too few to test for drift"
        )
    expected = set(schema.features)
    allowed = expected | {schema.target.name}
    missing = sorted(expected - set(sample.columns))
    extra = sorted(set(sample.columns) - allowed)
    if missing or extra:
        parts = ([f"missing columns {missing}"] if missing else []) + (
            [f"unexpected columns {extra}"] if extra else []
        )
        raise InputError(
            f"{source}: {'; '.join(parts)}; the model's features are {list(schema.features)}"
        )
    typed = sample[list(schema.features)].copy()
    for name in schema.numeric_features:
        numbers = pd.to_numeric(typed[name], errors="coerce")
        bad = typed[name][numbers.isna() & typed[name].notna()]
        if len(bad):
            raise InputError(
                f"{source}: column {name!r} must be numeric; {len(bad)} value(s) "
                f"are not, e.g. {bad.head(3).tolist()}"
            )
        typed[name] = numbers.astype(float)
    return typed


def compare(
    reference: pd.DataFrame,
    sample: pd.DataFrame,
    schema: DataSchema,
    reference_predictions: NDArray[Any],
    sample_predictions: NDArray[Any],
    params: DriftParams,
    evaluation: dict[str, Any],
    sample_labels: NDArray[Any] | None = None,
) -> DriftSummary:
    """Per-feature drift, prediction drift and, with labels, live metrics."""
    alpha = params.p_value / len(schema.features)  # Bonferroni across features
    features = [
        numeric_drift(name, reference[name], sample[name], params, alpha)
        if name in schema.numeric_features
        else categorical_drift(name, reference[name], sample[name], alpha)
        for name in schema.features
    ]
    classes = schema.target.classes
    predictions = prediction_drift(reference_predictions, sample_predictions, classes, params)
    live = (
        live_metrics(sample_labels, sample_predictions, classes, evaluation, params)
        if sample_labels is not None
        else None
    )
    return DriftSummary(len(reference), len(sample), features, predictions, live, alpha)


def summary_json(summary: DriftSummary, params: DriftParams) -> dict[str, Any]:
    """What a workflow or a person needs to act on, as plain JSON."""
    reasons = summary.reasons(params)
    return {
        "drift_detected": bool(reasons),
        "reasons": reasons,
        "drifted_features": summary.drifted_features,
        "drifted_share": round(summary.drifted_share, 4),
        "reference_rows": summary.reference_rows,
        "sample_rows": summary.sample_rows,
        "alpha": summary.alpha,
        "features": [
            {
                "feature": f.feature,
                "kind": f.kind,
                "test": f.test,
                "statistic": round(f.statistic, 6),
                "p_value": f.p_value,
                "psi": None if f.psi is None else round(f.psi, 6),
                "drifted": f.drifted,
            }
            for f in summary.features
        ],
        "predictions": {
            "classes": summary.predictions.classes,
            "reference_shares": [round(v, 6) for v in summary.predictions.reference_shares],
            "sample_shares": [round(v, 6) for v in summary.predictions.sample_shares],
            "psi": round(summary.predictions.psi, 6),
            "p_value": summary.predictions.p_value,
            "drifted": summary.predictions.drifted,
        },
        "live": None
        if summary.live is None
        else {
            "rows": summary.live.rows,
            "metrics": summary.live.metrics,
            "evaluation": summary.live.evaluation,
            "degraded": summary.live.degraded,
        },
    }
