"""The parity report: what evaluate's check of the ONNX graph against the scikit-learn
pipeline found, in the one format evaluate writes (reports/parity.json) and export reads.

It imports nothing heavy, so export reads it without scikit-learn, onnxruntime or pandas.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabml.errors import PipelineError

# The report's significant digits for the largest difference: float32 inference differs
# in its last digits from one CPU to another, and the report is kept in git.
DIFF_DIGITS = 3
# Each key of the report and the type its value has.
KEYS: dict[str, type | tuple[type, ...]] = {
    "graph_md5": str,
    "rows": int,
    "max_abs_diff": (int, float),
    "labels_equal": bool,
    "tolerance": (int, float),
    "classes": list,
}


class ParityError(PipelineError):
    """ONNX and scikit-learn disagree on the test set by more than the tolerance."""


@dataclass(frozen=True)
class Parity:
    rows: int
    max_abs_diff: float
    worst_row: int
    labels_equal: bool


def significant(difference: float) -> float:
    """`difference` to DIFF_DIGITS significant digits: the figure the check judges and
    the report keeps, so that export judges a report exactly as evaluate judged it."""
    return float(f"{difference:.{DIFF_DIGITS}g}")


def within(difference: float, tolerance: float) -> bool:
    """Whether a largest difference passes; NaN (a graph that gives NaN) never does."""
    return difference <= tolerance


def graph_md5(graph: bytes) -> str:
    return hashlib.md5(graph, usedforsecurity=False).hexdigest()


def build_report(
    parity: Parity, *, tolerance: float, classes: list[str], graph: bytes
) -> dict[str, Any]:
    """The report of `parity`, the check of the graph `graph`; `classes` are the
    probability columns of both the pipeline and the graph, in order."""
    return {
        "graph_md5": graph_md5(graph),
        "rows": parity.rows,
        "max_abs_diff": parity.max_abs_diff,
        "labels_equal": parity.labels_equal,
        "tolerance": tolerance,
        "classes": classes,
    }


def _check_types(report: Any, source: str) -> None:
    if not isinstance(report, dict):
        raise PipelineError(f"{source}: a parity report is a JSON object, not {report!r}")
    unknown = sorted(set(report) - set(KEYS))
    if unknown:
        raise PipelineError(f"{source}: {unknown[0]} is not a key of a parity report {list(KEYS)}")
    for key, kind in KEYS.items():
        if key not in report:
            raise PipelineError(f"{source}: {key} is missing; a parity report has {list(KEYS)}")
        value = report[key]
        # bool is an int to isinstance; a count or a difference is never true or false.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            rule = kind.__name__ if isinstance(kind, type) else "a number"
            raise PipelineError(
                f"{source}: {key} = {value!r}, but a parity report's {key} is {rule}"
            )


def checked_report(
    report: Any,
    source: str,
    *,
    graph: bytes,
    test_rows: int,
    tolerance: float,
    schema_classes: list[str],
) -> dict[str, Any]:
    """`report` (read from `source`), checked to be a passed check of the graph `graph`
    on the `test_rows`-row test set, at `tolerance`, of classes the schema names."""
    _check_types(report, source)
    checked: dict[str, Any] = report
    facts = (
        ("graph_md5", graph_md5(graph), "the md5 of the graph to publish"),
        ("rows", test_rows, "the test set's row count"),
        ("tolerance", tolerance, "export.parity_tolerance"),
    )
    for key, expected, what in facts:
        if checked[key] != expected:
            raise PipelineError(
                f"{source}: {key} = {checked[key]!r}, but {what} is {expected!r}: the report "
                "is of another graph, data or tolerance (run evaluate again)"
            )
    classes = checked["classes"]
    names = all(isinstance(name, str) for name in classes)
    if not names or len(set(classes)) != len(classes) or set(classes) != set(schema_classes):
        raise PipelineError(
            f"{source}: classes = {classes!r}, but a parity report's classes are the "
            f"schema's classes {schema_classes!r}, each once"
        )
    if checked["max_abs_diff"] < 0:
        raise PipelineError(
            f"{source}: max_abs_diff = {checked['max_abs_diff']!r}, but a largest absolute "
            "difference is at least 0"
        )
    if not within(checked["max_abs_diff"], checked["tolerance"]):
        raise PipelineError(
            f"{source}: max_abs_diff = {checked['max_abs_diff']:g}, above its tolerance "
            f"{checked['tolerance']:g}: the graph failed its check and is not published"
        )
    return checked


def read_report(
    path: Path, *, graph: bytes, test_rows: int, tolerance: float, schema_classes: list[str]
) -> dict[str, Any]:
    """The report in the file `path`, checked as `checked_report` checks it."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: no parity report (evaluate writes it)") from None
    except OSError as error:
        raise PipelineError(f"{path}: the parity report cannot be read ({error})") from None
    except ValueError as error:
        raise PipelineError(f"{path}: a parity report is JSON, and this is not ({error})") from None
    return checked_report(
        report,
        str(path),
        graph=graph,
        test_rows=test_rows,
        tolerance=tolerance,
        schema_classes=schema_classes,
    )
