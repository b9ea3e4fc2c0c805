"""validate: check the raw CSV against the declared schema and quality rules.

Rules come from the schema file (columns, dtypes, ranges, allowed labels, null rates)
and from params.yaml (minimum row count, duplicate rows, extra columns). The checks
are pandera's; this module only builds the pandera schema, reads the file without
hiding its problems, and turns pandera's failure cases into a report a person can act
on: the column, the rule, how many rows break it and a few examples with their line.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from tabml.config import CategoricalFeature, DataSchema, NumericFeature, ValidateParams
from tabml.errors import PipelineError

# A data row's index i sits on line i + 2 of the CSV file: line 1 is the header.
HEADER_LINES = 2


@dataclass(frozen=True)
class Example:
    line: int | None
    value: Any


@dataclass(frozen=True)
class Failure:
    column: str | None
    rule: str
    bad_rows: int
    examples: list[Example] = field(default_factory=list)

    def describe(self) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        shown = "; ".join(
            f"line {e.line}: {e.value!r}" if e.line is not None else repr(e.value)
            for e in self.examples
        )
        return f"{where}, rule {self.rule}: {self.bad_rows} bad row(s)" + (
            f", e.g. {shown}" if shown else ""
        )


@dataclass(frozen=True)
class ValidationReport:
    source: str
    rows: int
    columns: list[str]
    failures: list[Failure]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, **asdict(self)}

    def describe(self) -> str:
        if self.passed:
            return f"{self.source}: {self.rows} rows passed validation"
        lines = [f"{self.source}: validation failed, {len(self.failures)} rule(s) broken"]
        lines += [f"  - {failure.describe()}" for failure in self.failures]
        return "\n".join(lines)


class DataValidationError(PipelineError):
    """The dataset broke at least one rule; the message lists every broken rule."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.describe())
        self.report = report


# --------------------------------------------------------------------------- reading


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value if isinstance(value, int | float | str | bool) else str(value)


def header_failures(path: Path, delimiter: str = ",") -> list[Failure]:
    """Problems that pandas would hide when reading: no header, repeated column names."""
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle, delimiter=delimiter), None)
    if not header:
        return [Failure(None, "file_not_empty", 0, [Example(1, "no header row")])]
    repeated = sorted(name for name, count in Counter(header).items() if count > 1)
    return [
        Failure(name, "unique_column_name", 0, [Example(1, f"{header.count(name)} columns")])
        for name in repeated
    ]


def repeated_header_rows(frame: pd.DataFrame, max_examples: int) -> list[Failure]:
    """Rows whose every cell equals its column's name: a header pasted into the data."""
    if frame.empty or any(pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes):
        # pandas reads a column as numbers only when every cell is one, so a column
        # holding its own name is never numeric: no row can repeat the header.
        return []
    first = frame.columns[0]
    # Compare whole rows only where the first cell matches: one column, not every cell.
    candidates = frame[frame[first].astype("string") == str(first)]
    matches = (
        candidates.astype("string").eq(pd.Series(frame.columns, index=frame.columns)).all(axis=1)
    )
    lines = [int(i) + HEADER_LINES for i in candidates.index[matches]]
    if not lines:
        return []
    examples = [Example(line, "header repeated") for line in lines[:max_examples]]
    return [Failure(None, "header_not_repeated_in_data", len(lines), examples)]


def read_raw_csv(path: Path, delimiter: str = ",") -> pd.DataFrame:
    return pd.read_csv(path, sep=delimiter, skip_blank_lines=True)


# --------------------------------------------------------------------------- schema


def _column(spec: NumericFeature | CategoricalFeature) -> pa.Column:
    checks: list[pa.Check] = []
    if 0.0 < spec.max_null_fraction < 1.0:
        limit = spec.max_null_fraction
        checks.append(
            pa.Check(
                lambda s, limit=limit: bool(s.isna().mean() <= limit),
                ignore_na=False,
                name=f"max_null_fraction({limit})",
            )
        )
    nullable = spec.max_null_fraction > 0.0
    if isinstance(spec, CategoricalFeature):
        checks.append(pa.Check.isin(spec.allowed))
        return pa.Column(str, checks=checks, nullable=nullable, coerce=True)
    if spec.min is not None and spec.max is not None:
        checks.append(pa.Check.in_range(spec.min, spec.max))
    elif spec.min is not None:
        checks.append(pa.Check.ge(spec.min))
    elif spec.max is not None:
        checks.append(pa.Check.le(spec.max))
    dtype = "float64" if spec.dtype == "float" else ("Int64" if nullable else "int64")
    return pa.Column(dtype, checks=checks, nullable=nullable, coerce=True)


def build_pandera_schema(schema: DataSchema, rules: ValidateParams) -> pa.DataFrameSchema:
    columns = {name: _column(spec) for name, spec in schema.features.items()}
    columns[schema.target.name] = pa.Column(
        str, checks=[pa.Check.isin(schema.target.classes)], nullable=False, coerce=True
    )
    min_rows = rules.min_rows
    return pa.DataFrameSchema(
        columns,
        checks=[pa.Check(lambda df: len(df) >= min_rows, name=f"min_rows({min_rows})")],
        strict=True if rules.extra_columns == "fail" else "filter",
        unique=None if rules.allow_duplicate_rows else list(columns),
        report_duplicates="exclude_first",
        ordered=False,
    )


def _failures_from_cases(cases: pd.DataFrame, rows: int, max_examples: int) -> list[Failure]:
    """Group pandera's failure cases by (column, check) into one Failure each."""
    cases = cases.copy()
    cases["column"] = cases["column"].astype("object").where(cases["column"].notna(), None)
    uncoercible = set(cases.loc[cases["check"].str.startswith("coerce_dtype"), "column"])
    failures: list[Failure] = []
    duplicate_lines: set[int] = set()
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        column = None if column is None or column != column else str(column)
        check = str(check)
        if column in uncoercible and not check.startswith("coerce_dtype"):
            # Range and dtype checks on a column that could not be typed only repeat
            # the coercion failure in a less useful form.
            continue
        if check == "multiple_fields_uniqueness":
            duplicate_lines.update(int(i) + HEADER_LINES for i in group["index"].dropna())
            continue
        if check == "column_in_schema":
            for value in group["failure_case"]:
                failures.append(Failure(str(value), "column_in_schema", rows, []))
            continue
        if check == "column_in_dataframe":
            for value in group["failure_case"]:
                failures.append(Failure(str(value), "column_in_dataframe", rows, []))
            continue
        located = group[group["index"].notna()]
        examples = [
            Example(int(row["index"]) + HEADER_LINES, _json_value(row["failure_case"]))
            for _, row in located.head(max_examples).iterrows()
        ]
        bad_rows = len(located) if len(located) else rows
        failures.append(Failure(column, check, bad_rows, examples))
    missing_columns = any(f.rule == "column_in_dataframe" for f in failures)
    # With a column missing, rows that agree on the columns left are not duplicates.
    if duplicate_lines and not missing_columns:
        lines = sorted(duplicate_lines)
        failures.append(
            Failure(
                None,
                "no_duplicate_rows",
                len(lines),
                [Example(line, "duplicate of an earlier row") for line in lines[:max_examples]],
            )
        )
    return failures


def label_failures(frame: pd.DataFrame, schema: DataSchema, rules: ValidateParams) -> list[Failure]:
    """Classes the schema lists that the data lacks, or has too few rows of to learn from.

    pandera checks each label on its own (listed, not empty); these rules are about the
    column as a whole, which a model needs: every class present (so at least two), and
    each often enough that the split leaves it in both train and test.
    """
    target = schema.target.name
    if target not in frame.columns:
        return []  # pandera names the missing column
    # Labels as pandera coerces them (str), so that 1 in the file matches class "1".
    counts = frame[target].dropna().astype(str).value_counts()
    failures = []
    for name in schema.target.classes:
        rows = int(counts.get(name, 0))
        if rows == 0:
            example = Example(None, f"class {name!r} has no rows; remove it from the schema")
            failures.append(Failure(target, "class_present", 0, [example]))
        elif rows < rules.min_rows_per_class:
            example = Example(
                None, f"class {name!r} has {rows} row(s), fewer than {rules.min_rows_per_class}"
            )
            rule = f"min_rows_per_class({rules.min_rows_per_class})"
            failures.append(Failure(target, rule, rows, [example]))
    return failures


# --------------------------------------------------------------------------- core


def validate_frame(
    frame: pd.DataFrame, schema: DataSchema, rules: ValidateParams, source: str = "<frame>"
) -> tuple[pd.DataFrame, ValidationReport]:
    """Type and check `frame`; return the typed frame (features then target) and a report."""
    columns = [str(c) for c in frame.columns]
    failures = repeated_header_rows(frame, rules.max_examples)
    if failures:
        return frame, ValidationReport(source, len(frame), columns, failures)
    labels = label_failures(frame, schema, rules)
    try:
        typed = build_pandera_schema(schema, rules).validate(frame, lazy=True)
    except SchemaErrors as errors:
        failures = _failures_from_cases(errors.failure_cases, len(frame), rules.max_examples)
        return frame, ValidationReport(source, len(frame), columns, failures + labels)
    if labels:
        return frame, ValidationReport(source, len(frame), columns, labels)
    ordered = typed[[*schema.features, schema.target.name]].reset_index(drop=True)
    return ordered, ValidationReport(source, len(frame), columns, [])


def validate_file(
    path: Path, schema: DataSchema, rules: ValidateParams, *, delimiter: str = ","
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read the CSV at `path`, whose fields `delimiter` separates, and validate it."""
    failures = header_failures(path, delimiter)
    if failures:
        return pd.DataFrame(), ValidationReport(str(path), 0, [], failures)
    return validate_frame(read_raw_csv(path, delimiter), schema, rules, source=str(path))


def resolved_schema(schema: DataSchema) -> dict[str, Any]:
    """The feature schema that training, export and serving share, as plain JSON."""
    return schema.model_dump(mode="json")


def run(
    raw: Path,
    schema: DataSchema,
    rules: ValidateParams,
    out: Path,
    report: Path,
    schema_out: Path,
    *,
    delimiter: str = ",",
) -> ValidationReport:
    """Entry point: validate `raw`, always write the report, write data only on success.
    `delimiter` is data.delimiter: ingest keeps a CSV source's separator."""
    typed, result = validate_file(raw, schema, rules, delimiter=delimiter)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    if not result.passed:
        raise DataValidationError(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    typed.to_parquet(out, index=False)
    schema_out.write_text(json.dumps(resolved_schema(schema), indent=2) + "\n", encoding="utf-8")
    return result
