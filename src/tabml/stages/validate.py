"""validate: check the raw CSV against the declared schema and quality rules.

Rules come from the schema file (columns, dtypes, ranges, allowed labels, null rates)
and from params.yaml (minimum row count, duplicate rows, extra columns). The checks
are pandera's; this module only builds the pandera schema, reads the file without
hiding its problems, and turns pandera's failure cases into a report a person can act
on: the column, the rule, how many rows break it and a few examples with their line.

A file is first checked a chunk of rows at a time, writing the typed rows as it goes, so
memory stays that of one chunk however long the file: the per-row rules run on each
chunk, and the rules about the whole table (row count, rows per class, null rates,
duplicate rows) on totals gathered across chunks. When any rule breaks, the file is
read and checked whole, so that the report, its counts, examples and line numbers are
the ones a single check of the whole table gives.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.parquet as pq
from pandera.errors import SchemaErrors

from tabml.config import CategoricalFeature, DataSchema, NumericFeature, ValidateParams
from tabml.errors import PipelineError

# A data row's index i sits on line i + 2 of the CSV file: line 1 is the header.
HEADER_LINES = 2
# Rows read and checked at a time: at 31 numeric columns, about 300 MB of working memory.
CHUNK_ROWS = 250_000
# Rows per written row group: pyarrow's default for a table written whole (pandas'
# to_parquet), so the file written chunk by chunk has the same layout and bytes.
ROW_GROUP_ROWS = 1024 * 1024


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


def _null_fraction_checks(spec: NumericFeature | CategoricalFeature) -> list[pa.Check]:
    """The column's null-rate rule: a rule about the whole column, not about each row."""
    if not 0.0 < spec.max_null_fraction < 1.0:
        return []
    limit = spec.max_null_fraction
    return [
        pa.Check(
            lambda s, limit=limit: bool(s.isna().mean() <= limit),
            ignore_na=False,
            name=f"max_null_fraction({limit})",
        )
    ]


def _column(spec: NumericFeature | CategoricalFeature, checks: list[pa.Check]) -> pa.Column:
    """The column's dtype and per-row rules, after the `checks` given."""
    checks = list(checks)
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


def _target_column(schema: DataSchema) -> pa.Column:
    return pa.Column(
        str, checks=[pa.Check.isin(schema.target.classes)], nullable=False, coerce=True
    )


def build_pandera_schema(schema: DataSchema, rules: ValidateParams) -> pa.DataFrameSchema:
    columns = {
        name: _column(spec, _null_fraction_checks(spec)) for name, spec in schema.features.items()
    }
    columns[schema.target.name] = _target_column(schema)
    min_rows = rules.min_rows
    return pa.DataFrameSchema(
        columns,
        checks=[pa.Check(lambda df: len(df) >= min_rows, name=f"min_rows({min_rows})")],
        strict=True if rules.extra_columns == "fail" else "filter",
        unique=None if rules.allow_duplicate_rows else list(columns),
        report_duplicates="exclude_first",
        ordered=False,
    )


def build_row_schema(schema: DataSchema, rules: ValidateParams) -> pa.DataFrameSchema:
    """build_pandera_schema without the rules about the whole table (row count, null
    rates, duplicate rows): what a chunk of rows can be checked against on its own."""
    columns = {name: _column(spec, []) for name, spec in schema.features.items()}
    columns[schema.target.name] = _target_column(schema)
    return pa.DataFrameSchema(
        columns,
        strict=True if rules.extra_columns == "fail" else "filter",
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
    try:
        failures = header_failures(path, delimiter)
        frame = pd.DataFrame() if failures else read_raw_csv(path, delimiter)
    except UnicodeDecodeError as error:
        failures = [Failure(None, "utf8_text", 0, [Example(None, f"byte {error.start}")])]
    except pd.errors.ParserError as error:
        # pandas' first line names the problem and where ("EOF inside string starting at
        # row 3"); a file it cannot split into rows has no rows to check.
        reason = str(error).strip().splitlines()[0]
        failures = [Failure(None, "csv_parses", 0, [Example(None, reason)])]
    if failures:
        return pd.DataFrame(), ValidationReport(str(path), 0, [], failures)
    return validate_frame(frame, schema, rules, source=str(path))


@dataclass
class _Totals:
    """What the whole-table rules need, summed over the chunks checked so far."""

    rows: int = 0
    columns: list[str] = field(default_factory=list)
    labels: Counter[str] = field(default_factory=Counter)
    nulls: Counter[str] = field(default_factory=Counter)
    row_hashes: list[Any] = field(default_factory=list)

    def add(self, raw: pd.DataFrame, typed: pd.DataFrame, schema: DataSchema) -> None:
        if not self.columns:
            self.columns = [str(c) for c in raw.columns]
        self.rows += len(raw)
        # Labels as pandera coerces them (str), as label_failures counts them.
        self.labels.update(raw[schema.target.name].dropna().astype(str).tolist())
        for name in schema.features:
            self.nulls[name] += int(typed[name].isna().sum())
        self.row_hashes.append(row_hashes(typed))

    def hold(self, schema: DataSchema, rules: ValidateParams) -> bool:
        """Whether every whole-table rule holds (a hash collision only says no)."""
        if self.rows < rules.min_rows:
            return False
        if any(self.labels[name] < rules.min_rows_per_class for name in schema.target.classes):
            return False
        for name, spec in schema.features.items():
            if 0.0 < spec.max_null_fraction < 1.0 and (
                self.nulls[name] / self.rows > spec.max_null_fraction
            ):
                return False
        if rules.allow_duplicate_rows:
            return True
        hashes = np.concatenate(self.row_hashes)
        return len(np.unique(hashes)) == len(hashes)


def row_hashes(typed: pd.DataFrame) -> Any:
    """One 64-bit hash per row; equal rows (as duplicated() compares them, -0.0 equal to
    0.0) hash equally."""
    canonical = typed.copy()
    for name in canonical.columns:
        if pd.api.types.is_float_dtype(canonical[name].dtype):
            canonical[name] = canonical[name] + 0.0  # -0.0 + 0.0 is 0.0
    return pd.util.hash_pandas_object(canonical, index=False).to_numpy()


class _ParquetRows:
    """Typed chunks appended to a Parquet file in row groups of ROW_GROUP_ROWS rows, as
    pandas' to_parquet writes a whole frame; `add` says False when a chunk's column
    types differ from the first chunk's (the whole file then decides)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.writer: Any = None
        self.pending: list[Any] = []
        self.pending_rows = 0

    def add(self, typed: pd.DataFrame) -> bool:
        table = pa_arrow.Table.from_pandas(typed, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.out, table.schema)
        elif not table.schema.equals(self.writer.schema, check_metadata=True):
            return False
        self.pending.append(table)
        self.pending_rows += len(table)
        while self.pending_rows >= ROW_GROUP_ROWS:
            self._write(ROW_GROUP_ROWS)
        return True

    def _write(self, rows: int) -> None:
        table = pa_arrow.concat_tables(self.pending)
        self.writer.write_table(table.slice(0, rows), row_group_size=ROW_GROUP_ROWS)
        rest = table.slice(rows)
        self.pending, self.pending_rows = ([rest] if len(rest) else []), len(rest)

    def close(self) -> None:
        if self.writer is None:
            return
        if self.pending_rows:
            self._write(self.pending_rows)
        self.writer.close()


def validate_in_chunks(
    path: Path, schema: DataSchema, rules: ValidateParams, out: Path, *, delimiter: str = ","
) -> ValidationReport | None:
    """Check the CSV at `path` CHUNK_ROWS rows at a time, writing the typed rows to the
    Parquet file `out`; the (passed) report when every rule holds, None when any rule
    breaks or the chunks cannot decide (then `out` may be partly written)."""
    if header_failures(path, delimiter):
        return None
    row_schema = build_row_schema(schema, rules)
    order = [*schema.features, schema.target.name]
    totals = _Totals()
    written = _ParquetRows(out)
    try:
        with pd.read_csv(
            path, sep=delimiter, skip_blank_lines=True, chunksize=CHUNK_ROWS
        ) as reader:
            for chunk in reader:
                if schema.target.name not in chunk.columns or repeated_header_rows(chunk, 1):
                    return None
                try:
                    typed = row_schema.validate(chunk, lazy=True)[order]
                except SchemaErrors:
                    return None
                totals.add(chunk, typed, schema)
                if not written.add(typed):
                    return None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError):
        return None  # the whole-file read reports it as it always has
    finally:
        written.close()
    if not totals.columns or not totals.hold(schema, rules):
        return None
    return ValidationReport(str(path), totals.rows, totals.columns, [])


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
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    result = validate_in_chunks(raw, schema, rules, partial, delimiter=delimiter)
    if result is None:
        # A rule broke (or the chunks could not decide): the whole file, checked at
        # once, gives the report with its exact counts, examples and lines.
        partial.unlink(missing_ok=True)
        typed, result = validate_file(raw, schema, rules, delimiter=delimiter)
        if result.passed:
            typed.to_parquet(partial, index=False)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    if not result.passed:
        partial.unlink(missing_ok=True)
        raise DataValidationError(result)
    partial.replace(out)
    schema_out.write_text(json.dumps(resolved_schema(schema), indent=2) + "\n", encoding="utf-8")
    return result
