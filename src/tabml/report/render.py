"""The pull-request report as markdown: `render(report) -> str`, pure and deterministic.

Charts are mermaid blocks, which GitHub draws inline, so no image has to leave the
runner; the full DVC plots travel as a workflow artifact that the report links to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tabml.report.gate import MetricComparison, Verdict

# Metrics drawn in the chart: those on a 0-1 scale where higher is better.
CHARTED = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc")
ROC_GRID = [i / 10 for i in range(11)]
ICONS = {
    "better": "🟢",
    "worse": "🔴",
    "unchanged": "⚪",
    "within tolerance": "🟡",
    "new": "🆕",
    "missing": "❗",
    "info": "",
}


@dataclass(frozen=True)
class ParamChange:
    key: str
    base: Any
    new: Any


@dataclass(frozen=True)
class Report:
    base_ref: str
    new_ref: str
    verdict: Verdict
    param_changes: list[ParamChange]
    gate_changes: list[ParamChange] = field(default_factory=list)
    base_roc: list[dict[str, float]] | None = None
    new_roc: list[dict[str, float]] | None = None
    artifact_url: str | None = None


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def diff_params(base: dict[str, Any], new: dict[str, Any]) -> list[ParamChange]:
    """Every dotted key whose value differs, was added or was removed, sorted."""
    flat_base, flat_new = flatten(base), flatten(new)
    missing = object()
    changes = []
    for key in sorted(set(flat_base) | set(flat_new)):
        old, now = flat_base.get(key, missing), flat_new.get(key, missing)
        if old != now:
            changes.append(
                ParamChange(key, None if old is missing else old, None if now is missing else now)
            )
    return changes


def _value(value: float | None) -> str:
    if value is None:
        return "—"
    return str(int(value)) if value.is_integer() and abs(value) >= 1 else f"{value:.4f}"


def _delta(comparison: MetricComparison) -> str:
    delta = comparison.delta
    if delta is None:
        return "—"
    return "0" if delta == 0 else f"{delta:+.4f}"


def _gate_cell(comparison: MetricComparison) -> str:
    rule = comparison.rule
    icon = ICONS[comparison.status]
    if rule is None:
        return (
            f"{icon} {comparison.status}, not gated".strip()
            if comparison.status != "info"
            else "not gated"
        )
    return f"{icon} {comparison.status} ({rule.direction} is better, tolerance {rule.tolerance:g})"


def _code(value: Any) -> str:
    return "—" if value is None else f"`{value}`"


def _interpolate(curve: list[dict[str, float]], x: float) -> float:
    """The curve's tpr at fpr `x` (step-wise: the best tpr reached by then)."""
    reached = [point["tpr"] for point in curve if point["fpr"] <= x]
    return max(reached) if reached else 0.0


def _metrics_chart(comparisons: list[MetricComparison]) -> list[str]:
    charted = [c for c in comparisons if c.name in CHARTED and c.new is not None]
    if not charted:
        return []
    names = ", ".join(f'"{c.name}"' for c in charted)
    lines = [
        "```mermaid",
        "xychart-beta",
        '  title "Metrics: bars = base, line = this branch"',
        f"  x-axis [{names}]",
        '  y-axis "score" 0 --> 1',
    ]
    if any(c.base is not None for c in charted):
        lines.append(f"  bar [{', '.join(f'{c.base or 0:.4f}' for c in charted)}]")
    lines.append(f"  line [{', '.join(f'{c.new:.4f}' for c in charted)}]")
    return [*lines, "```"]


def _roc_chart(
    base: list[dict[str, float]] | None, new: list[dict[str, float]] | None
) -> list[str]:
    if not new:
        return []
    grid = ", ".join(f'"{x:.1f}"' for x in ROC_GRID)
    lines = [
        "```mermaid",
        "xychart-beta",
        '  title "ROC: true positive rate by false positive rate (bars = base, line = this '
        'branch)"',
        f'  x-axis "false positive rate" [{grid}]',
        '  y-axis "true positive rate" 0 --> 1',
    ]
    if base:
        lines.append(f"  bar [{', '.join(f'{_interpolate(base, x):.4f}' for x in ROC_GRID)}]")
    lines.append(f"  line [{', '.join(f'{_interpolate(new, x):.4f}' for x in ROC_GRID)}]")
    return [*lines, "```"]


def render(report: Report) -> str:
    verdict = report.verdict
    headline = "✅ quality gate passed" if verdict.passed else "❌ quality gate failed"
    lines = [
        f"## Model report: {headline}",
        "",
        f"Challenger `{report.new_ref}` against champion `{report.base_ref}`.",
        "",
    ]
    if all(c.base is None for c in verdict.comparisons):
        lines += [f"`{report.base_ref}` has no metrics yet: there is no champion to beat.", ""]
    if not verdict.passed:
        lines += [f"- {line}" for line in verdict.explain()] + [""]

    lines += [
        "### Metrics",
        "",
        "| metric | base | this branch | Δ | gate |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {c.name} | {_value(c.base)} | {_value(c.new)} | {_delta(c)} | {_gate_cell(c)} |"
        for c in verdict.comparisons
    ]
    lines.append("")

    lines += ["### Params", ""]
    if report.param_changes:
        lines += ["| param | base | this branch |", "|---|---|---|"]
        lines += [f"| {p.key} | {_code(p.base)} | {_code(p.new)} |" for p in report.param_changes]
    else:
        lines.append("No params changed.")
    lines.append("")
    if report.gate_changes:
        lines += [
            "> [!WARNING]",
            "> This branch changes the gate's own rules; they apply once it is merged. "
            "The gate above used the base branch's rules.",
            "",
        ]

    charts = [_metrics_chart(verdict.comparisons), _roc_chart(report.base_roc, report.new_roc)]
    drawn = [chart for chart in charts if chart]
    if drawn:
        lines += ["### Charts", ""]
        for chart in drawn:
            lines += [*chart, ""]
    if report.artifact_url:
        lines += [
            "### Plots",
            "",
            f"ROC, precision-recall, calibration, confusion matrix and feature importance "
            f"for both branches: [download the `dvc plots diff` page]({report.artifact_url}).",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"
