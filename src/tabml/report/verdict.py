"""The pull-request verdict: the report against the base revision, written as Markdown
for the pull request and, on request, as JSON for a workflow step to read.

`verdict_json` is the pure core; `run` builds the report, writes it and fails when the
quality gate does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabml.errors import PipelineError
from tabml.report.gate import Verdict
from tabml.report.render import render
from tabml.report.sources import ReportSources, build_report


class QualityGateError(PipelineError):
    """The challenger is worse than the champion beyond the gate's tolerances."""


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """Whether the gate passed, why not, and every metric's base, new value and status."""
    return {
        "passed": verdict.passed,
        "failures": verdict.explain(),
        "metrics": {
            c.name: {"base": c.base, "new": c.new, "status": c.status} for c in verdict.comparisons
        },
    }


def run(sources: ReportSources, *, out: Path, summary_out: Path | None = None) -> Verdict:
    """Write the report to `out` (and the verdict to `summary_out`), then raise
    QualityGateError if the gate failed: the pull request shows the report either way."""
    report = build_report(sources)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(report), encoding="utf-8")
    verdict = report.verdict
    if summary_out is not None:
        summary_out.parent.mkdir(parents=True, exist_ok=True)
        summary_out.write_text(json.dumps(verdict_json(verdict), indent=2) + "\n", encoding="utf-8")
    if not verdict.passed:
        raise QualityGateError(
            "quality gate failed (report in {}): {}".format(out, "; ".join(verdict.explain()))
        )
    return verdict
