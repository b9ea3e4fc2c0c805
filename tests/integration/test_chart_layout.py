"""The drift report's charts are legible in a real browser: headless Chromium lays out the
report that the drift code writes for a sample that shifts several features, at a desktop
and at a narrow width, and in every chart no two labels' boxes overlap, no label covers a
bar, none sticks out of its chart's viewport, and every bin is named (in full, or
abbreviated with its full text as a tooltip). No chart leaves the window either.

The model card is Markdown tables only; this project draws no chart in it.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabml.config import DataSchema, DriftParams, TrainParams, parse_schema
from tabml.monitor.drift import DriftSummary, check_sample, compare
from tabml.monitor.html import render_html
from tabml.stages.train import fit, model_input
from tests.availability import require_tool
from tests.browser import Chart, Layout, measure, outside, overlap, overlaps

pytestmark = pytest.mark.slow

PARAMS = DriftParams()
ROWS = 600
# Long names, as product and merchant taxonomies have them; some longer than any chart
# could show whole.
MERCHANT_CATEGORIES = [
    f"{kind}-{channel}"
    for kind in (
        "electronics-and-home-appliances",
        "groceries",
        "travel-agencies-and-tour-operators",
        "fuel",
        "restaurants",
        "pharmacies-and-drug-stores",
        "clothing",
        "digital-goods-and-subscriptions",
    )
    for channel in ("online", "in-store", "phone-order")
]
COUNTRIES = [
    "DE",
    "Côte d'Ivoire",
    "United Kingdom of Great Britain and Northern Ireland",
    "NL",
    "PL",
]
# Long labels alike at both ends: shortened they would read the same, so they stay whole.
DEVICES = [
    f"Samsung Galaxy S23 Ultra 5G {storage} GB Phantom Black" for storage in (128, 256, 512)
] + ["Pixel 8", "iPhone 15 Pro Max (A3106, Dual SIM)"]
CLASSES = ["approved", "declined", "sent-to-manual-review"]


def _schema() -> DataSchema:
    return parse_schema(
        {
            "target": {"name": "outcome", "classes": CLASSES},
            "features": {
                # Large values: quantile bins read "8.512e+04 to 9.233e+04".
                "annual_income_eur": {"dtype": "float"},
                # Tiny values: "-1.234e-05 to 2.345e-06".
                "sensor_drift_ratio": {"dtype": "float"},
                "transaction_amount": {"dtype": "float"},
                "customer_age": {"dtype": "int"},
                "merchant_category": {"dtype": "category", "allowed": MERCHANT_CATEGORIES},
                "country": {"dtype": "category", "allowed": COUNTRIES},
                "device_model": {"dtype": "category", "allowed": DEVICES},
            },
        }
    )


def _frame(rng: np.random.Generator, *, shifted: bool) -> pd.DataFrame:
    scale = 1.6 if shifted else 1.0
    merchant_weights = np.linspace(1.0, 3.0, len(MERCHANT_CATEGORIES))
    if shifted:
        merchant_weights = merchant_weights[::-1] ** 2
    frame = pd.DataFrame(
        {
            "annual_income_eur": rng.lognormal(11.3, 0.4, ROWS) * scale,
            "sensor_drift_ratio": rng.normal(2e-5 if shifted else 0.0, 1.5e-5, ROWS),
            "transaction_amount": rng.gamma(2.0, 61.7, ROWS),
            "customer_age": rng.integers(18, 90, ROWS),
            "merchant_category": rng.choice(
                MERCHANT_CATEGORIES, ROWS, p=merchant_weights / merchant_weights.sum()
            ),
            "device_model": rng.choice(
                DEVICES, ROWS, p=[0.5, 0.2, 0.1, 0.1, 0.1] if shifted else None
            ),
            "country": rng.choice(
                COUNTRIES, ROWS, p=[0.1, 0.1, 0.6, 0.1, 0.1] if shifted else None
            ),
        }
    )
    score = frame["annual_income_eur"].rank(pct=True) - frame["transaction_amount"].rank(pct=True)
    frame["outcome"] = np.select([score > 0.25, score < -0.25], CLASSES[:2], CLASSES[2])
    return frame


@pytest.fixture(scope="module")
def drift_summary() -> DriftSummary:
    """The drift code's own comparison of a shifted sample with its reference."""
    rng = np.random.default_rng(7)
    schema = _schema()
    reference, sample = _frame(rng, shifted=False), _frame(rng, shifted=True)
    model = fit(reference, schema, TrainParams(estimator="logistic_regression"))
    features = check_sample(sample.drop(columns="outcome"), schema, PARAMS, "sample.csv")
    return compare(
        reference,
        features,
        schema,
        np.asarray(model.predict(model_input(reference, schema))).astype(str),
        np.asarray(model.predict(model_input(features, schema))).astype(str),
        PARAMS,
        {},
    )


def layout_problems(layout: Layout) -> list[str]:
    """Every way the charts fail to be legible, each naming the chart, labels and pixels."""
    problems = []
    if layout.page_width > layout.viewport_width + 0.5:
        problems.append(
            f"the page is {layout.page_width:.0f} px wide in a {layout.viewport_width:.0f} "
            "px window"
        )
    for chart in layout.charts:
        problems += _chart_problems(chart, layout.viewport_width)
    return problems


def _chart_problems(chart: Chart, viewport_width: float) -> list[str]:
    problems = []
    if chart.box[2] > viewport_width + 0.5:
        problems.append(f"{chart.name}: the chart ends at x={chart.box[2]:.0f}, past the window")
    for a, b in combinations(chart.labels, 2):
        if overlaps(a.box, b.box):
            width, height = overlap(a.box, b.box)
            problems.append(
                f"{chart.name}: labels {a.shown!r} and {b.shown!r} overlap by "
                f"{width:.1f} x {height:.1f} px"
            )
    shown = [label.shown for label in chart.labels]
    repeated = sorted({text for text in shown if shown.count(text) > 1})
    if repeated:
        problems.append(f"{chart.name}: labels drawn more than once read the same: {repeated}")
    for label in chart.labels:
        beyond = outside(label.box, chart.box)
        if beyond > 0.5:
            problems.append(
                f"{chart.name}: label {label.shown!r} sticks {beyond:.1f} px out of its chart"
            )
        if any(overlaps(label.box, bar) for bar in chart.bars):
            problems.append(f"{chart.name}: label {label.shown!r} covers a bar")
    return problems


def _named_bins(summary: DriftSummary) -> dict[str, list[str]]:
    """What each chart (by its accessible name) must label: every bin or class."""
    named = {"Predicted-class shares": summary.predictions.classes}
    named.update({f.feature: f.bin_labels for f in summary.features})
    return named


def test_the_fixture_sample_drifts_in_several_features_with_long_labels(
    drift_summary: DriftSummary,
) -> None:
    assert len(drift_summary.drifted_features) >= 4, drift_summary.drifted_features
    labels = [label for f in drift_summary.features for label in f.bin_labels]
    assert max(len(label) for label in labels) > 40
    assert max(len(f.bin_labels) for f in drift_summary.features) >= 20


@pytest.mark.parametrize("width", [1280, 800])
def test_drift_report_charts_are_legible_in_chromium(
    drift_summary: DriftSummary, tmp_path: Path, width: int
) -> None:
    chromium = require_tool("chromium")
    page = render_html(drift_summary, PARAMS, "sample.csv")
    layout = measure(chromium, page, width, tmp_path)

    named = _named_bins(drift_summary)
    assert sorted(chart.name for chart in layout.charts) == sorted(named)
    problems = layout_problems(layout)
    assert not problems, f"{len(problems)} layout problems at {width} px:\n" + "\n".join(problems)
    for chart in layout.charts:
        assert [label.full for label in chart.labels] == named[chart.name], chart.name
