"""The numeric rule: what a value of a numeric feature must be for the model to take it.

A value is a plain number (null only where the training data allowed one), finite,
within float32's range (the model takes float32: larger magnitudes would reach it as
infinity), a whole number within ±2^53 for an int feature, and, under the "reject"
policy (TABML_OUT_OF_RANGE), within the feature's schema range (`min`, `max` in
metadata.json, the range the validate stage holds training data to).

The rule is stated here once, in two forms that share its bounds and texts:
`NumericRule.check_column` goes value by value and names every problem; the
whole-batch checks (`rows_hold`, `columns_hold`, `row_holds`) only say whether a batch
passes, and a batch that does not goes to `check_column`. Whole-batch checks compare
in float64, as parsed (a value just past the float32 maximum would round to it); the
bounds lie within float32's range, and NaN and infinity fail the comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tabml.serve.model import FeatureSpec
from tabml.serve.problems import Problem, show

FLOAT32_MAX = float(np.finfo(np.float32).max)
# Whole numbers a JSON parser keeps exact as a double; larger "ints" are floats in disguise.
INT_LIMIT = 2**53
NUMBER_TYPES = frozenset({int, float})

FINITE_RULE = "must be a finite number"
FLOAT32_RULE = f"must be within the float32 range (|x| <= {FLOAT32_MAX:.6g})"
WHOLE_RULE = "must be a whole number"
INT_LIMIT_RULE = f"a whole number within ±{INT_LIMIT} (2^53)"
NULL_RULE = "must be a number, not null (the model was trained without nulls here)"

# [rows, numeric features]: True where a value lies outside its feature's schema range;
# None when none does (always, under the "reject" policy).
Outside = NDArray[np.bool_] | None


def bounds(feature: FeatureSpec) -> tuple[float, float]:
    """The range a numeric feature's values must lie in: its schema range, within the
    float32 range the model takes."""
    lower = -FLOAT32_MAX if feature.min is None else max(feature.min, -FLOAT32_MAX)
    upper = FLOAT32_MAX if feature.max is None else min(feature.max, FLOAT32_MAX)
    return lower, upper


def int_bounds(lower: float, upper: float) -> tuple[float, float]:
    """`lower` and `upper` narrowed to the whole numbers a JSON parser keeps exact."""
    return max(lower, -INT_LIMIT), min(upper, INT_LIMIT)


def range_rule(feature: FeatureSpec) -> str:
    """The rule a value outside `feature`'s schema range breaks, naming the range."""
    if feature.min is not None and feature.max is not None:
        limit = f"must be within [{show(feature.min)}, {show(feature.max)}]"
    elif feature.min is not None:
        limit = f"must be at least {show(feature.min)}"
    else:
        limit = f"must be at most {show(feature.max)}"
    return f"{limit}, the feature's range in the model's data schema"


def numbers(flat: list[Any], shape: tuple[int, int]) -> NDArray[np.float64] | None:
    """`flat` as a float64 array of `shape` when every value is a plain number."""
    if not set(map(type, flat)) <= NUMBER_TYPES:
        return None
    try:
        return np.fromiter(flat, dtype=np.float64, count=len(flat)).reshape(shape)
    except OverflowError:  # an integer literal beyond the float64 range
        return None


def whole_at(values: Sequence[float], columns: Sequence[int]) -> bool:
    """Whether one row's finite floats at `columns` are whole numbers a JSON parser keeps
    exact: Python's checks of a few values cost far less than numpy calls."""
    return not columns or all(
        values[column].is_integer() and abs(values[column]) <= INT_LIMIT for column in columns
    )


def whole(ints: NDArray[np.float64]) -> bool:
    """Whether every value (each one finite) is a whole number a JSON parser keeps exact."""
    return bool(((ints == np.round(ints)) & (np.abs(ints) <= INT_LIMIT)).all())


def _broken_rule(
    number: float, lower: float, upper: float, range_rule: str | None, *, integral: bool
) -> str | None:
    """The rule a plain number breaks, or None; `range_rule` is None where the schema
    range does not hold (no range, or the "count" policy)."""
    if not math.isfinite(number):
        return FINITE_RULE
    if abs(number) > FLOAT32_MAX:
        return FLOAT32_RULE
    if integral and number != round(number):
        return WHOLE_RULE
    if integral and abs(number) > INT_LIMIT:
        return INT_LIMIT_RULE
    if range_rule is not None and not lower <= number <= upper:
        return range_rule
    return None


class NumericRule:
    """The numeric rule for one model's numeric features, in metadata order."""

    def __init__(self, numeric: Sequence[FeatureSpec], *, reject_out_of_range: bool) -> None:
        self.numeric = list(numeric)
        self.position = {feature.name: index for index, feature in enumerate(self.numeric)}
        self.reject_out_of_range = reject_out_of_range
        self.int_columns = [
            index for index, feature in enumerate(self.numeric) if feature.dtype == "int"
        ]
        # Each numeric feature's schema range, within float32's: the whole-batch checks
        # hold every value to it in the one comparison that also keeps values within
        # float32.
        self.bounds = [bounds(feature) for feature in self.numeric]
        self._lower = np.array([lower for lower, _ in self.bounds], dtype=np.float64)
        self._upper = np.array([upper for _, upper in self.bounds], dtype=np.float64)
        # The rule an out-of-range value breaks, for features whose schema gives a range.
        self.range_rules = {
            feature.name: range_rule(feature)
            for feature in self.numeric
            if feature.min is not None or feature.max is not None
        }

    # --- whole batches: pass or not -------------------------------------------------

    def rows_hold(self, wide: NDArray[np.float64]) -> bool:
        """Whether every value of the [rows, features] `wide` keeps the rule."""
        return bool(((wide >= self._lower) & (wide <= self._upper)).all()) and (
            not self.int_columns or whole(wide[:, self.int_columns])
        )

    def columns_hold(self, block: NDArray[np.float64], integral: Sequence[int]) -> bool:
        """`rows_hold` for a [features, rows] block whose rows `integral` must be whole.
        One minimum and one maximum per feature, along its contiguous rows, cost about
        what one comparison of the block costs (np.min propagates NaN, which then fails
        the comparison)."""
        within = bool(
            (block.min(axis=1) >= self._lower).all() and (block.max(axis=1) <= self._upper).all()
        )
        return within and (not integral or whole(block[integral]))

    def row_holds(self, values: Sequence[float]) -> bool:
        """`rows_hold` for one row of finite floats already held within `bounds` (as
        parsed)."""
        return whole_at(values, self.int_columns)

    def outside(self, wide: NDArray[np.float64]) -> Outside:
        """Where the values of checked numeric rows lie outside their schema ranges
        (nulls, NaN here, do not); None when none do, as under the "reject" policy,
        whose checks have refused any such value already."""
        if self.reject_out_of_range:
            return None
        outside = (wide < self._lower) | (wide > self._upper)
        return outside if outside.any() else None

    # --- value by value: every problem named --------------------------------------

    def check_column(
        self,
        feature: FeatureSpec,
        column: list[Any],
        locate: Callable[[int], str],
        problems: list[Problem],
        *,
        integral: bool,
    ) -> list[float]:
        """Value-by-value checks of one numeric column; returns it with nulls as NaN."""
        checked: list[float] = []
        rule = self.range_rules.get(feature.name) if self.reject_out_of_range else None
        lower, upper = self.bounds[self.position[feature.name]]
        for index, value in enumerate(column):
            if value is None:
                if feature.nullable:
                    checked.append(math.nan)
                else:
                    problems.append(Problem(locate(index), NULL_RULE, None))
                continue
            if type(value) not in NUMBER_TYPES:
                problems.append(
                    Problem(
                        locate(index),
                        f"must be a number ({feature.dtype}), not {_article(_kind(value))}",
                        value,
                    )
                )
                continue
            try:
                number = float(value)
            except OverflowError:  # an integer literal beyond the float64 range
                number = math.inf
            broken = _broken_rule(number, lower, upper, rule, integral=integral)
            if broken is None:
                checked.append(number)
            else:
                problems.append(
                    Problem(
                        locate(index),
                        broken,
                        value,
                        out_of_range=feature.name if broken is rule else None,
                    )
                )
        return checked


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _article(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind
