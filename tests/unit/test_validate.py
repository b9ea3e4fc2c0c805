"""validate: every broken rule is named with its column, count of bad rows and examples."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tabml.config import DataSchema, ValidateParams
from tabml.stages import validate
from tabml.stages.validate import DataValidationError, run, validate_file, validate_frame

RULES = ValidateParams(schema="unused.yaml", min_rows=5)


def write_csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "raw.csv"
    frame.to_csv(path, index=False)
    return path


def failures_by_rule(
    frame: pd.DataFrame, schema: DataSchema, rules: ValidateParams = RULES
) -> dict[tuple[str | None, str], int]:
    _, report = validate_frame(frame, schema, rules)
    return {(f.column, f.rule): f.bad_rows for f in report.failures}


def test_clean_frame_passes_and_is_typed(tiny_frame: pd.DataFrame, tiny_schema: DataSchema) -> None:
    typed, report = validate_frame(tiny_frame, tiny_schema, RULES)
    assert report.passed
    assert list(typed.columns) == ["size", "count", "colour", "label"]
    assert typed["size"].dtype == "float64"
    assert typed["count"].dtype == "int64"


def test_missing_column(tiny_frame: pd.DataFrame, tiny_schema: DataSchema) -> None:
    failures = failures_by_rule(tiny_frame.drop(columns="size"), tiny_schema)
    assert failures == {("size", "column_in_dataframe"): len(tiny_frame)}


def test_wrong_dtype_names_column_and_lines(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    bad = tiny_frame.astype({"size": object})
    bad.loc[[3, 7], "size"] = ["abc", "12,5"]
    _, report = validate_file(write_csv(tmp_path, bad), tiny_schema, RULES)
    assert not report.passed
    [failure] = report.failures
    assert failure.column == "size"
    assert failure.rule == "coerce_dtype('float64')"
    assert failure.bad_rows == 2
    # Data row 3 sits on line 5: line 1 is the header and rows count from 0.
    assert [(e.line, e.value) for e in failure.examples] == [(5, "abc"), (9, "12,5")]
    assert "column 'size', rule coerce_dtype('float64'): 2 bad row(s)" in report.describe()


@pytest.mark.parametrize("bad_label", [None, "maybe"])
def test_nan_or_unknown_label(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, bad_label: str | None
) -> None:
    bad = tiny_frame.copy()
    bad.loc[[0, 1, 2], "label"] = bad_label
    failures = failures_by_rule(bad, tiny_schema)
    rule = "not_nullable" if bad_label is None else "isin(['no', 'yes'])"
    assert failures == {("label", rule): 3}


def test_out_of_range_values(tiny_frame: pd.DataFrame, tiny_schema: DataSchema) -> None:
    bad = tiny_frame.copy()
    bad.loc[[4, 5], "size"] = [-1.0, 250.0]
    bad.loc[9, "count"] = 51
    _, report = validate_frame(bad, tiny_schema, RULES)
    found = {(f.column, f.rule): f for f in report.failures}
    assert set(found) == {("size", "in_range(0.0, 100.0)"), ("count", "in_range(0.0, 50.0)")}
    assert [(e.line, e.value) for e in found["size", "in_range(0.0, 100.0)"].examples] == [
        (6, -1.0),
        (7, 250.0),
    ]


def test_unknown_category(tiny_frame: pd.DataFrame, tiny_schema: DataSchema) -> None:
    bad = tiny_frame.copy()
    bad.loc[0, "colour"] = "purple"
    assert failures_by_rule(bad, tiny_schema) == {("colour", "isin(['red', 'green', 'blue'])"): 1}


def test_empty_file(tmp_path: Path, tiny_schema: DataSchema) -> None:
    path = tmp_path / "raw.csv"
    path.write_text("")
    _, report = validate_file(path, tiny_schema, RULES)
    assert [(f.column, f.rule) for f in report.failures] == [(None, "file_not_empty")]


@pytest.mark.parametrize(
    ("content", "rule", "shown"),
    [
        (b'size,count,colour,label\n1,2,red,yes\n3,4,"blue,no\n', "csv_parses", "EOF inside"),
        (b"size,count,colour,label\n1,2,r\xe9d,yes\n", "utf8_text", "byte 29"),
        (
            b"size,count,colour,label\n1,2,red,yes\n1,2,red,yes,more,extra\n",
            "csv_parses",
            "Expected 4 fields in line 3, saw 6",
        ),
    ],
)
def test_a_file_that_is_not_readable_csv_is_a_named_failure(
    tmp_path: Path, tiny_schema: DataSchema, content: bytes, rule: str, shown: str
) -> None:
    path = tmp_path / "raw.csv"
    path.write_bytes(content)
    _, report = validate_file(path, tiny_schema, RULES)
    assert [(f.column, f.rule) for f in report.failures] == [(None, rule)]
    assert shown in str(report.failures[0].examples[0].value)
    assert not report.passed


def test_header_only_file_fails_min_rows(tmp_path: Path, tiny_schema: DataSchema) -> None:
    path = tmp_path / "raw.csv"
    path.write_text("size,count,colour,label\n")
    _, report = validate_file(path, tiny_schema, RULES)
    assert (None, "min_rows(5)") in {(f.column, f.rule) for f in report.failures}


def test_duplicated_column_name(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    path = write_csv(tmp_path, tiny_frame)
    lines = path.read_text().splitlines()
    lines[0] = "size,count,colour,size"
    path.write_text("\n".join(lines) + "\n")
    _, report = validate_file(path, tiny_schema, RULES)
    [failure] = report.failures
    assert (failure.column, failure.rule) == ("size", "unique_column_name")


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_file_is_read_with_its_delimiter(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema, delimiter: str
) -> None:
    path = tmp_path / "raw.csv"
    tiny_frame.to_csv(path, index=False, sep=delimiter)
    typed, report = validate_file(path, tiny_schema, RULES, delimiter=delimiter)
    assert report.passed, report.describe()
    pd.testing.assert_frame_equal(typed, validate_frame(tiny_frame, tiny_schema, RULES)[0])
    # Its header names one column when read as commas: the schema's columns are missing.
    _, misread = validate_file(path, tiny_schema, RULES)
    assert ("size", "column_in_dataframe") in {(f.column, f.rule) for f in misread.failures}
    # A repeated column name is found whatever the separator.
    lines = path.read_text().splitlines()
    lines[0] = delimiter.join(["size", "count", "colour", "size"])
    path.write_text("\n".join(lines) + "\n")
    _, report = validate_file(path, tiny_schema, RULES, delimiter=delimiter)
    assert [(f.column, f.rule) for f in report.failures] == [("size", "unique_column_name")]


def test_header_repeated_inside_the_data(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    path = write_csv(tmp_path, tiny_frame)
    lines = path.read_text().splitlines()
    # Two files concatenated: the second file's header sits on line 12.
    lines.insert(11, lines[0])
    path.write_text("\n".join(lines) + "\n")
    _, report = validate_file(path, tiny_schema, RULES)
    [failure] = report.failures
    assert failure.rule == "header_not_repeated_in_data"
    assert [e.line for e in failure.examples] == [12]


def test_duplicate_rows(tiny_frame: pd.DataFrame, tiny_schema: DataSchema) -> None:
    bad = pd.concat([tiny_frame, tiny_frame.iloc[[0, 1]]], ignore_index=True)
    _, report = validate_frame(bad, tiny_schema, RULES)
    [failure] = report.failures
    assert (failure.rule, failure.bad_rows) == ("no_duplicate_rows", 2)
    assert [e.line for e in failure.examples] == [len(tiny_frame) + 2, len(tiny_frame) + 3]
    allowed = RULES.model_copy(update={"allow_duplicate_rows": True})
    assert validate_frame(bad, tiny_schema, allowed)[1].passed


def test_too_few_rows(tiny_frame: pd.DataFrame, tiny_schema: DataSchema) -> None:
    failures = failures_by_rule(tiny_frame.head(3), tiny_schema)
    assert failures[(None, "min_rows(5)")] == 3


def test_a_single_class_fails_naming_the_missing_class(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    one_class = tiny_frame[tiny_frame["label"] == "no"]
    _, report = validate_frame(one_class, tiny_schema, RULES)
    assert [(f.column, f.rule, f.bad_rows) for f in report.failures] == [
        ("label", "class_present", 0)
    ]
    assert "class 'yes' has no rows" in report.describe()


def test_a_rare_class_fails_with_its_count_and_the_rule(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    yes = tiny_frame.index[tiny_frame["label"] == "yes"]
    rare = tiny_frame.drop(index=yes[3:])
    _, report = validate_frame(rare, tiny_schema, RULES)
    assert [(f.column, f.rule, f.bad_rows) for f in report.failures] == [
        ("label", "min_rows_per_class(10)", 3)
    ]
    assert "class 'yes' has 3 row(s), fewer than 10" in report.describe()


def test_a_class_exactly_at_the_minimum_passes(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    yes = tiny_frame.index[tiny_frame["label"] == "yes"]
    assert validate_frame(tiny_frame.drop(index=yes[10:]), tiny_schema, RULES)[1].passed
    assert not validate_frame(tiny_frame.drop(index=yes[9:]), tiny_schema, RULES)[1].passed


def test_numeric_labels_count_as_the_schema_classes_they_spell(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    schema = tiny_schema.model_copy(
        update={"target": tiny_schema.target.model_copy(update={"classes": ["0", "1"]})}
    )
    numeric = tiny_frame.assign(label=(tiny_frame["label"] == "yes").astype(int))
    assert validate_frame(numeric, schema, RULES)[1].passed


def test_label_rules_are_reported_with_other_broken_rules(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    bad = tiny_frame[tiny_frame["label"] == "no"].drop(columns="size")
    failures = failures_by_rule(bad, tiny_schema)
    assert ("size", "column_in_dataframe") in failures
    assert ("label", "class_present") in failures


def test_min_rows_per_class_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="min_rows_per_class"):
        ValidateParams(schema="unused.yaml", min_rows_per_class=1)


def test_extra_column_fails_or_is_dropped(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    extra = tiny_frame.assign(patient_id=range(len(tiny_frame)))
    assert failures_by_rule(extra, tiny_schema) == {("patient_id", "column_in_schema"): 120}
    dropping = RULES.model_copy(update={"extra_columns": "drop"})
    typed, report = validate_frame(extra, tiny_schema, dropping)
    assert report.passed
    assert "patient_id" not in typed.columns


def test_null_fraction_allowance(tiny_frame: pd.DataFrame, tiny_schema: DataSchema) -> None:
    with_nulls = tiny_frame.copy()
    with_nulls.loc[:11, "size"] = None  # 12 of 120 rows: 10%
    assert failures_by_rule(with_nulls, tiny_schema) == {("size", "not_nullable"): 12}
    lenient = tiny_schema.model_copy(deep=True)
    lenient.features["size"] = lenient.features["size"].model_copy(
        update={"max_null_fraction": 0.2}
    )
    assert validate_frame(with_nulls, lenient, RULES)[1].passed
    strict = tiny_schema.model_copy(deep=True)
    strict.features["size"] = strict.features["size"].model_copy(update={"max_null_fraction": 0.05})
    assert failures_by_rule(with_nulls, strict) == {("size", "max_null_fraction(0.05)"): 120}


def test_several_broken_rules_are_all_reported(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    bad = tiny_frame.drop(columns="count")
    bad.loc[0, "label"] = "maybe"
    bad.loc[1, "size"] = 1000.0
    assert len(failures_by_rule(bad, tiny_schema)) == 3


def test_run_writes_report_and_refuses_bad_data(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    bad = tiny_frame.copy()
    bad.loc[0, "size"] = -5.0
    raw = write_csv(tmp_path, bad)
    out, report, schema_out = tmp_path / "v.parquet", tmp_path / "r.json", tmp_path / "s.json"
    with pytest.raises(DataValidationError, match=r"column 'size'.*line 2: -5.0"):
        run(raw, tiny_schema, RULES, out, report, schema_out)
    written = json.loads(report.read_text())
    assert written["passed"] is False
    assert written["failures"][0]["column"] == "size"
    assert written["failures"][0]["examples"] == [{"line": 2, "value": -5.0}]
    assert not out.exists()

    run(write_csv(tmp_path, tiny_frame), tiny_schema, RULES, out, report, schema_out)
    assert json.loads(report.read_text())["passed"] is True
    assert pd.read_parquet(out).shape == tiny_frame.shape
    assert json.loads(schema_out.read_text())["target"]["name"] == "label"


# --------------------------------------------------------------------------- in chunks


def bad_in_a_late_chunk(frame: pd.DataFrame, case: str) -> pd.DataFrame:
    """`frame` broken in a way only the rows past the first chunks show."""
    bad = frame.astype({"size": object, "colour": object})
    if case == "dtype":
        bad.loc[[50, 97], "size"] = ["abc", "12,5"]
    elif case == "range":
        bad.loc[[3, 88], "size"] = [-1.0, 250.0]
    elif case == "duplicate_across_chunks":
        bad = pd.concat([bad, bad.iloc[[2, 5]]], ignore_index=True)
    elif case == "null_rate":
        bad.loc[40:, "colour"] = None
    elif case == "header_repeated":
        bad = pd.concat([bad.iloc[:60], pd.DataFrame([bad.columns], columns=bad.columns)])
    elif case == "too_few_of_a_class":
        bad = bad[(bad["label"] == "no") | (bad.index < 60)]
    return bad


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "CHUNK_ROWS", 16)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize(
    "case",
    [
        "dtype",
        "range",
        "duplicate_across_chunks",
        "null_rate",
        "header_repeated",
        "too_few_of_a_class",
    ],
)
def test_a_file_checked_in_chunks_reports_what_the_whole_file_does(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema, case: str
) -> None:
    schema = tiny_schema.model_copy(deep=True)
    schema.features["colour"] = schema.features["colour"].model_copy(
        update={"max_null_fraction": 0.5}
    )
    rules = RULES.model_copy(update={"min_rows_per_class": 50})
    path = write_csv(tmp_path, bad_in_a_late_chunk(tiny_frame, case))
    out = tmp_path / "validated.parquet"
    with pytest.raises(DataValidationError) as raised:
        run(path, schema, rules, out, tmp_path / "report.json", tmp_path / "schema.json")
    _, whole = validate_file(path, schema, rules)
    assert not whole.passed
    assert raised.value.report == whole
    assert json.loads((tmp_path / "report.json").read_text()) == whole.to_dict()
    assert not out.exists() and not (tmp_path / "validated.parquet.partial").exists()


@pytest.mark.usefixtures("small_chunks")
def test_a_clean_file_is_checked_and_written_in_chunks(
    tmp_path: Path,
    tiny_frame: pd.DataFrame,
    tiny_schema: DataSchema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_csv(tmp_path, tiny_frame)
    typed, whole = validate_file(path, tiny_schema, RULES)
    monkeypatch.setattr(validate, "validate_file", None)  # the chunks alone decide
    out = tmp_path / "validated.parquet"
    report = run(path, tiny_schema, RULES, out, tmp_path / "report.json", tmp_path / "s.json")
    assert report == whole
    # The same bytes as the whole typed frame written at once.
    typed.to_parquet(tmp_path / "whole.parquet", index=False)
    assert out.read_bytes() == (tmp_path / "whole.parquet").read_bytes()


@pytest.mark.usefixtures("small_chunks")
def test_chunks_are_written_in_row_groups_of_the_set_size(
    tmp_path: Path,
    tiny_frame: pd.DataFrame,
    tiny_schema: DataSchema,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validate, "ROW_GROUP_ROWS", 50)
    out = tmp_path / "validated.parquet"
    path = write_csv(tmp_path, tiny_frame)
    run(path, tiny_schema, RULES, out, tmp_path / "report.json", tmp_path / "s.json")
    metadata = pq.ParquetFile(out).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sizes == [50, 50, 20]
    pd.testing.assert_frame_equal(pd.read_parquet(out), validate_file(path, tiny_schema, RULES)[0])


def test_rows_that_differ_only_in_the_sign_of_zero_are_duplicates(
    tiny_frame: pd.DataFrame,
) -> None:
    frame = tiny_frame.head(2).astype({"size": "float64"})
    frame.loc[:, "size"] = [0.0, -0.0]
    frame.loc[1, ["count", "colour", "label"]] = frame.loc[0, ["count", "colour", "label"]]
    assert frame.duplicated().iloc[1]
    hashes = validate.row_hashes(frame)
    assert hashes[0] == hashes[1]


@pytest.mark.usefixtures("small_chunks")
def test_a_file_pandas_cannot_parse_leaves_no_partial_output(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    path = write_csv(tmp_path, tiny_frame)
    lines = path.read_text().splitlines()
    lines[70] += ",1,2"  # a row with more fields than the header, past the first chunks
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "validated.parquet"
    with pytest.raises(DataValidationError) as raised:
        run(path, tiny_schema, RULES, out, tmp_path / "report.json", tmp_path / "s.json")
    assert [f.rule for f in raised.value.report.failures] == ["csv_parses"]
    assert "Expected 4 fields in line 71, saw 6" in raised.value.report.failures[0].describe()
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is False
    assert not out.exists() and not (tmp_path / "validated.parquet.partial").exists()
