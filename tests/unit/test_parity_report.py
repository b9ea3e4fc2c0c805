"""The parity report: what evaluate writes is what export accepts, and nothing else is."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tabml.errors import PipelineError
from tabml.parity_report import (
    Parity,
    build_report,
    checked_report,
    read_report,
    significant,
    within,
)

GRAPH = b"the graph's bytes"
PARITY = Parity(rows=30, max_abs_diff=2.14e-07, worst_row=4, labels_equal=True)
EXPECTED: dict[str, Any] = {
    "graph": GRAPH,
    "test_rows": 30,
    "tolerance": 1e-5,
    "schema_classes": ["no", "yes"],
}


def report(**changes: Any) -> dict[str, Any]:
    built = build_report(PARITY, tolerance=1e-5, classes=["no", "yes"], graph=GRAPH)
    return {**built, **changes}


def test_the_report_names_the_graph_it_checked() -> None:
    assert report() == {
        "graph_md5": hashlib.md5(GRAPH).hexdigest(),
        "rows": 30,
        "max_abs_diff": 2.14e-07,
        "labels_equal": True,
        "tolerance": 1e-5,
        "classes": ["no", "yes"],
    }


def test_what_evaluate_writes_export_reads(tmp_path: Path) -> None:
    (tmp_path / "parity.json").write_text(json.dumps(report()))
    assert read_report(tmp_path / "parity.json", **EXPECTED) == report()


def test_nan_is_never_within_the_tolerance() -> None:
    assert within(1e-6, 1e-5) and not within(2e-5, 1e-5)
    assert not within(float("nan"), 1e-5)


def test_the_difference_is_judged_and_kept_to_three_significant_digits() -> None:
    assert significant(2.1434567e-07) == 2.14e-07
    assert significant(1.00049e-05) == 1e-05  # within a 1e-5 tolerance, as the report says
    assert significant(0.0) == 0.0


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([1, 2], r"a parity report is a JSON object, not \[1, 2\]"),
        ({**report(), "rows": None}, r"rows = None, but a parity report's rows is int"),
        ({**report(), "rows": True}, r"rows = True, but a parity report's rows is int"),
        (
            {**report(), "max_abs_diff": "0"},
            r"max_abs_diff = '0', but a parity report's max_abs_diff is a number",
        ),
        ({**report(), "classes": "no"}, r"classes = 'no', but a parity report's classes is list"),
        (
            {key: value for key, value in report().items() if key != "labels_equal"},
            r"labels_equal is missing; a parity report has \['graph_md5', 'rows'",
        ),
        (
            report(graph_md5="0" * 32),
            r"graph_md5 = '0{32}', but the md5 of the graph to publish is '[0-9a-f]{32}': "
            r"the report is of another graph, data or tolerance \(run evaluate again\)",
        ),
        (report(rows=31), r"rows = 31, but the test set's row count is 30"),
        (report(tolerance=1e-3), r"tolerance = 0.001, but export.parity_tolerance is 1e-05"),
        (report(classes=["no", "no"]), r"classes = \['no', 'no'\], but a parity report's"),
        (
            report(classes=["no", "maybe"]),
            r"classes = \['no', 'maybe'\], but a parity report's classes are the schema's "
            r"classes \['no', 'yes'\], each once",
        ),
        (report(classes=["no", 1]), r"classes = \['no', 1\], but"),
        (report(classes=[]), r"classes = \[\], but"),
        (report(classes=["no"]), r"classes = \['no'\], but"),
        (report(extra=1), r"extra is not a key of a parity report \['graph_md5'"),
        (
            report(max_abs_diff=-1),
            r"max_abs_diff = -1, but a largest absolute difference is at least 0",
        ),
        (
            report(max_abs_diff=0.5),
            r"max_abs_diff = 0.5, above its tolerance 1e-05: the graph failed its check",
        ),
        (report(max_abs_diff=float("nan")), r"max_abs_diff = nan, above its tolerance"),
    ],
)
def test_a_report_that_does_not_fit_is_named(given: Any, message: str) -> None:
    with pytest.raises(PipelineError, match=r"^reports/parity.json: " + message):
        checked_report(given, "reports/parity.json", **EXPECTED)


def test_a_report_that_is_missing_or_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "parity.json"
    with pytest.raises(
        PipelineError, match=r"parity.json: no parity report \(evaluate writes it\)"
    ):
        read_report(path, **EXPECTED)
    path.write_text("{ not json", encoding="utf-8")
    with pytest.raises(
        PipelineError, match=r"parity.json: a parity report is JSON, and this is not"
    ):
        read_report(path, **EXPECTED)
