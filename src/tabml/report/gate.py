"""The quality gate: does the challenger (a branch's model) hold up against the champion?

Pure functions over metric dictionaries; the rules come from the `gate` section of
params.yaml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tabml.config import GateParams, MetricRule

Status = Literal["better", "worse", "unchanged", "within tolerance", "new", "missing", "info"]


@dataclass(frozen=True)
class MetricComparison:
    name: str
    base: float | None
    new: float | None
    rule: MetricRule | None
    status: Status
    failed: bool

    @property
    def delta(self) -> float | None:
        if self.base is None or self.new is None:
            return None
        return self.new - self.base


@dataclass(frozen=True)
class Verdict:
    comparisons: list[MetricComparison]

    @property
    def failures(self) -> list[MetricComparison]:
        return [c for c in self.comparisons if c.failed]

    @property
    def passed(self) -> bool:
        return not self.failures

    def explain(self) -> list[str]:
        """One sentence per failed metric."""
        lines = []
        for failure in self.failures:
            rule = failure.rule
            assert rule is not None  # only gated metrics fail
            if failure.new is None:
                lines.append(f"{failure.name} is gated but missing from the new metrics")
            else:
                assert failure.base is not None and failure.delta is not None
                lines.append(
                    f"{failure.name} is {failure.new:.4f} against {failure.base:.4f}: "
                    f"worse by {abs(failure.delta):.4f}, more than the tolerance "
                    f"{rule.tolerance:g} ({rule.direction} is better)"
                )
        return lines


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def compare_metric(
    name: str, base: float | None, new: float | None, rule: MetricRule | None
) -> MetricComparison:
    if new is None:
        return MetricComparison(name, base, new, rule, "missing", failed=rule is not None)
    if base is None:
        return MetricComparison(name, base, new, rule, "new", failed=False)
    if rule is None:
        return MetricComparison(name, base, new, rule, "info", failed=False)
    # Positive `gain` means the challenger is better, whichever way the metric points.
    gain = (new - base) if rule.direction == "higher" else (base - new)
    if gain == 0:
        status: Status = "unchanged"
    elif gain > 0:
        status = "better"
    elif -gain <= rule.tolerance:
        status = "within tolerance"
    else:
        status = "worse"
    return MetricComparison(name, base, new, rule, status, failed=status == "worse")


def judge(base: dict[str, object], new: dict[str, object], gate: GateParams) -> Verdict:
    """Compare every metric either side has; gated ones first, in the gate's order."""
    names = list(gate.metrics) + sorted((set(base) | set(new)) - set(gate.metrics))
    comparisons = [
        compare_metric(
            name, _number(base.get(name)), _number(new.get(name)), gate.metrics.get(name)
        )
        for name in names
        if name in gate.metrics
        or _number(base.get(name)) is not None
        or _number(new.get(name)) is not None
    ]
    return Verdict(comparisons)
