"""REST rows: POST /predict's body checked against the feature schema and turned into
the onnxruntime feed (`records_response` writes the response).

The feed is one [rows, numeric features] float32 array and one column per categorical
feature. A numeric value must keep the numeric rule (`numbers`), which holds it to its
feature's schema range: a value outside is refused by default, or, under the "count"
policy (TABML_OUT_OF_RANGE), accepted and reported with the decoded rows.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Iterable, Sequence
from itertools import chain, starmap
from typing import Annotated, Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from tabml.contract import MISSING_CATEGORY, NUMERIC_INPUT, OutOfRange
from tabml.serve.body_readers import row_reader
from tabml.serve.model import FeatureSpec
from tabml.serve.numbers import NumericRule, Outside, numbers
from tabml.serve.problems import MAX_PROBLEMS, Problem, RequestError

Feed = dict[str, NDArray[Any]]


class RowDecoder:
    """Checks request bodies against the feature schema and builds the onnxruntime feed."""

    def __init__(
        self, features: Sequence[FeatureSpec], max_rows: int, *, out_of_range: OutOfRange
    ) -> None:
        self.features = list(features)
        self.by_name = {feature.name: feature for feature in self.features}
        self.names = frozenset(self.by_name)
        self.numeric = [feature for feature in self.features if feature.numeric]
        self.numeric_names = [feature.name for feature in self.numeric]
        self.categorical = [feature for feature in self.features if not feature.numeric]
        self.allowed = {
            feature.name: frozenset(feature.allowed or ()) for feature in self.categorical
        }
        self.max_rows = max_rows
        self.rule = NumericRule(self.numeric, reject_out_of_range=out_of_range == "reject")
        # itemgetter fetches a row's numeric values in one C call.
        self._getter: Callable[[dict[str, Any]], Any] = (
            operator.itemgetter(*self.numeric_names) if self.numeric else _no_values
        )
        self._plain_rows = _plain_rows_decoder(self.numeric, self.categorical, self.rule.bounds)
        # The C reader of batches of plain numeric rows (`body_readers`); None where it
        # does not apply or was not built.
        self._read_rows = row_reader(self.features)
        # One row's numbers as native float64 bytes, the layout of a float64 array's row.
        self._pack_row = struct.Struct(f"={len(self.numeric)}d").pack

    # --- POST /predict, the common case: plain rows, parsed and typed in one pass ------

    def decode_plain_records(self, body: bytes) -> tuple[Feed, int, bool] | None:
        """The feed, the row count and whether the body was one object, for a body of
        rows that hold exactly the features, as plain numbers within their schema
        ranges and known categories, with no nulls; None for anything else (and for
        invalid JSON), which the caller sends to `decode_records`, whose checks name
        every problem (or, under the "count" policy, accept and report values outside
        their ranges).

        msgspec parses the JSON straight into typed rows, so the common case skips
        building a dict per row and checking each value's type in Python. A batch of
        numeric rows goes first to the C reader (`body_readers`), which reads the
        numbers without a Python float each; a single row stays with msgspec, which holds
        its numbers to their bounds as it parses them, in a third of the time numpy's
        checks of one row take."""
        if self._read_rows is not None and body[:1] == b"[":
            read = self._read_rows(body, self.max_rows)
            if read is not None:
                packed, count, _ = read
                wide = np.frombuffer(packed, dtype=np.float64).reshape(count, -1)
                if not self.rule.rows_hold(wide):
                    return None
                return {NUMERIC_INPUT: wide.astype(np.float32)}, count, False
        try:
            parsed = self._plain_rows.decode(body)
        except msgspec.DecodeError:  # also raised for JSON that breaks the row types
            return None
        single = not isinstance(parsed, list)
        rows: list[Any] = [parsed] if single else parsed
        if not 0 < len(rows) <= self.max_rows:
            return None
        feed: Feed = {}
        width = len(self.numeric)
        if width and single:
            # One row: its numbers were held within their bounds as they were parsed.
            one = msgspec.structs.astuple(parsed)[:width]
            if not self.rule.row_holds(one):
                return None
            feed[NUMERIC_INPUT] = np.array([one], dtype=np.float32)
        elif width:
            values: Iterable[tuple[Any, ...]] = map(msgspec.structs.astuple, rows)
            if self.categorical:  # numbers come first in each row, then the categories
                values = (row[:width] for row in values)
            # Each row packed as float64 bytes by one C call, the rows joined: 2.3 times
            # as fast as numpy reading the floats one by one (np.fromiter), 228 against
            # 523 µs for 1,000 rows of 30 (docs/benchmarks.md).
            packed = b"".join(starmap(self._pack_row, values))
            wide = np.frombuffer(packed, dtype=np.float64).reshape(-1, width)
            if not self.rule.rows_hold(wide):
                return None
            feed[NUMERIC_INPUT] = wide.astype(np.float32)
        for position, feature in enumerate(self.categorical):
            field = _plain_field(width + position)
            column = [getattr(row, field) for row in rows]
            if not self.allowed[feature.name].issuperset(column):
                return None
            feed[feature.name] = np.array(column, dtype=object).reshape(-1, 1)
        return feed, len(rows), single

    # --- POST /predict: one JSON object, or an array of them -----------------------

    def decode_records(self, payload: Any) -> tuple[Feed, int, Outside]:
        """The feed, the row count and where values lie outside their schema ranges."""
        if isinstance(payload, dict):
            rows: list[Any] = [payload]
            prefix: Callable[[int], str] = _no_prefix
        elif isinstance(payload, list):
            if not payload:
                raise RequestError.one(422, "body", "a batch needs at least one row", value=[])
            if len(payload) > self.max_rows:
                raise RequestError.one(
                    422,
                    "body",
                    f"a batch holds at most {self.max_rows} rows "
                    f"(TABML_MAX_BATCH_ROWS), this one has {len(payload)}",
                    has_value=False,
                )
            rows = payload
            prefix = _index_prefix
        else:
            raise RequestError.one(
                422,
                "body",
                "must be a JSON object keyed by feature name (one row) or an "
                "array of such objects (a batch)",
                value=payload,
            )
        # Fast path: rows of the right length whose keys all look up are exactly the
        # features; anything else is described row by row.
        width = len(self.by_name)
        if not all(type(row) is dict and len(row) == width for row in rows):
            raise RequestError(422, self._shape_problems(rows, prefix))
        try:
            matrix = [self._numeric_values(row) for row in rows] if self.numeric else []
            categorical = {
                feature.name: [row[feature.name] for row in rows] for feature in self.categorical
            }
        except KeyError:
            raise RequestError(422, self._shape_problems(rows, prefix)) from None
        problems: list[Problem] = []
        feed: Feed = {}
        outside: Outside = None
        if self.numeric:
            try:
                outside = self._numeric_feed(matrix, prefix, feed)
            except RequestError as error:
                problems.extend(error.problems)
        for feature in self.categorical:
            try:
                feed[feature.name] = self.categorical_column(
                    feature, categorical[feature.name], locator(prefix, feature.name)
                )
            except RequestError as error:
                problems.extend(error.problems)
        if problems:
            raise RequestError(422, problems)
        return feed, len(rows), outside

    def _shape_problems(self, rows: list[Any], prefix: Callable[[int], str]) -> list[Problem]:
        problems: list[Problem] = []
        for index, row in enumerate(rows):
            if type(row) is not dict:
                problems.append(
                    Problem(
                        prefix(index).rstrip(".") or "body",
                        "must be an object keyed by feature name",
                        row,
                    )
                )
            elif row.keys() != self.names:
                self._key_problems(row, prefix(index), problems)
            if len(problems) > MAX_PROBLEMS:
                break
        return problems

    def _key_problems(self, row: dict[str, Any], prefix: str, problems: list[Problem]) -> None:
        for name in self.by_name:
            if name not in row:
                problems.append(
                    Problem(f"{prefix}{name}", "required feature is missing", has_value=False)
                )
        for name in row:
            if name not in self.by_name:
                problems.append(
                    Problem(
                        f"{prefix}{name}",
                        "not a feature of this model (GET /metadata lists the features)",
                        row[name],
                    )
                )

    def _numeric_feed(
        self,
        matrix: list[tuple[Any, ...]],
        prefix: Callable[[int], str],
        feed: Feed,
    ) -> Outside:
        # Fast path: one type scan and one array for every numeric value in the batch;
        # anything unusual (a null, a string, a value outside its range) takes the slow
        # path, which checks value by value and names each problem.
        flat = list(chain.from_iterable(matrix))
        wide = numbers(flat, (-1, len(self.numeric)))
        outside: Outside = None
        if wide is not None and self.rule.rows_hold(wide):
            values = wide.astype(np.float32)
        else:
            problems: list[Problem] = []
            columns = []
            for position, feature in enumerate(self.numeric):
                column = [row[position] for row in matrix]
                columns.append(
                    self.rule.check_column(
                        feature,
                        column,
                        locator(prefix, feature.name),
                        problems,
                        integral=feature.dtype == "int",
                    )
                )
            if problems:
                raise RequestError(422, problems)
            wide = np.array(columns, dtype=np.float64).T
            outside = self.rule.outside(wide)
            values = wide.astype(np.float32)
        feed[NUMERIC_INPUT] = np.ascontiguousarray(values)
        return outside

    def _numeric_values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        values = self._getter(row)
        return values if len(self.numeric_names) > 1 else (values,)

    def categorical_column(
        self, feature: FeatureSpec, column: list[Any], locate: Callable[[int], str]
    ) -> NDArray[Any]:
        allowed = self.allowed[feature.name]
        problems: list[Problem] = []
        values: list[str] = []
        for index, value in enumerate(column):
            if type(value) is str and value in allowed:
                values.append(value)
            elif value is None and feature.nullable:
                # The pipeline imputes missing categories, marked as in training.
                values.append(MISSING_CATEGORY)
            else:
                problems.append(
                    Problem(
                        locate(index),
                        f"must be one of {sorted(allowed)}"
                        + ("" if not feature.nullable else " or null"),
                        value,
                    )
                )
        if problems:
            raise RequestError(422, problems)
        return np.array(values, dtype=object).reshape(-1, 1)

    def reject_non_finite(
        self,
        feed: Feed,
        probabilities: NDArray[np.float32],
        status: int,
        locate_row: Callable[[int], str],
    ) -> None:
        """Refuse rows whose probabilities overflowed: finite inputs far outside the
        schema range (accepted under the "count" policy, or of a feature the schema
        gives no range) can drive a linear model's logits past the float32 range."""
        finite = np.isfinite(probabilities)
        if finite.all():
            return
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        problems = []
        numeric = feed.get(NUMERIC_INPUT)
        for row in bad_rows[: MAX_PROBLEMS + 1].tolist():
            outside = [
                feature.name
                for position, feature in enumerate(self.numeric)
                if numeric is not None
                and (feature.min is not None and feature.max is not None)
                and not feature.min <= float(numeric[row, position]) <= feature.max
            ]
            problems.append(
                Problem(
                    locate_row(row),
                    "the model's probabilities are not finite for this row; features outside "
                    f"their schema range: {', '.join(outside) or 'none'}",
                    has_value=False,
                )
            )
        raise RequestError(status, problems)


def _plain_field(position: int) -> str:
    # Struct attributes need not be valid feature names; the JSON keys are renamed.
    return f"f{position}"


def _plain_rows_decoder(
    numeric: Sequence[FeatureSpec],
    categorical: Sequence[FeatureSpec],
    bounds: Sequence[tuple[float, float]],
) -> msgspec.json.Decoder[Any]:
    """A JSON decoder for one row object or an array of them, holding exactly the
    features: numbers for numeric ones, strings for categorical ones, no nulls.

    A single row's numbers are held within `bounds` (one pair per numeric feature) as
    they are parsed: msgspec's field constraints cost a tenth of what a Python min/max
    over a 30-number row does. A batch's are not: at some 4 ns a value the constraints
    cost several times what one numpy comparison of the whole batch does."""
    names = [feature.name for feature in [*numeric, *categorical]]

    def row_type(name: str, numbers: list[Any]) -> Any:
        return msgspec.defstruct(
            name,
            [
                (_plain_field(position), kind)
                for position, kind in enumerate([*numbers, *[str] * len(categorical)])
            ],
            rename={_plain_field(position): name for position, name in enumerate(names)},
            forbid_unknown_fields=True,
            gc=False,
        )

    bounded = [Annotated[float, msgspec.Meta(ge=lower, le=upper)] for lower, upper in bounds]
    row = row_type("PlainRow", bounded)
    batch_row = row_type("PlainBatchRow", [float] * len(numeric))
    return msgspec.json.Decoder(row | list[batch_row])  # type: ignore[valid-type]


def locator(prefix: Callable[[int], str], name: str) -> Callable[[int], str]:
    """Where value `index` of one column sits in the request, for error messages."""

    def locate(index: int) -> str:
        return f"{prefix(index)}{name}"

    return locate


def _no_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return ()


def _no_prefix(index: int) -> str:
    return ""


def _index_prefix(index: int) -> str:
    return f"[{index}]."
