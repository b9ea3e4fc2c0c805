"""The one table reader: a CSV at its delimiter or a Parquet file, and every file it
cannot read named with the flag, the path and the rule."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabml.errors import InputError
from tabml.tables import read_by_column, read_table

FRAME = pd.DataFrame({"size": [1.5, 2.0, 3.25], "kind": ["a, b", "c", "d"]})


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_a_csv_is_read_at_its_delimiter(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "d.csv"
    FRAME.to_csv(path, index=False, sep=delimiter)
    pd.testing.assert_frame_equal(read_table(path, field="--data", delimiter=delimiter), FRAME)


def test_a_parquet_file_is_read_whatever_the_case_of_its_suffix(tmp_path: Path) -> None:
    path = tmp_path / "d.PARQUET"
    FRAME.to_parquet(path)
    pd.testing.assert_frame_equal(read_table(path, field="--sample"), FRAME)


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("absent.csv", None, "no such file"),
        ("folder.csv", None, "must be a file, not a directory"),
        ("d.txt", b"x,y\n1,a\n", "must be a CSV (.csv) or Parquet (.parquet) file"),
        ("d.xlsx", b"PK\x03\x04", "must be a CSV (.csv) or Parquet (.parquet) file"),
        ("empty.csv", b"", "must not be empty (no header, no rows)"),
        ("blank.csv", b"\n\n", "must not be empty (no header, no rows)"),
        ("header.csv", b"x,y\n", "must hold at least one data row (it has a header only)"),
        ("quote.csv", b'x,y\n1,"a\n', "must be a readable CSV file (Error tokenizing data."),
        ("latin1.csv", "x,y\n1,\xe9t\xe9\n".encode("latin-1"), "must be a readable CSV file ("),
        ("fake.parquet", b"PAR1 not really", "must be a readable Parquet file ("),
        ("csv.parquet", b"x,y\n1,a\n", "must be a readable Parquet file ("),
    ],
)
def test_a_file_that_cannot_be_read_is_named_with_its_flag_and_the_rule(
    tmp_path: Path, name: str, content: bytes | None, rule: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    elif name.startswith("folder"):
        path.mkdir()
    with pytest.raises(InputError) as raised:
        read_table(path, field="--data")
    assert str(raised.value).startswith(f"--data {str(path)!r}: {rule}")
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("index", [False, True])
def test_a_parquet_file_read_by_column_is_the_frame_pandas_reads(
    tmp_path: Path, index: bool
) -> None:
    frame = pd.DataFrame(
        {
            "size": [1.5, None, 3.25, 4.0],
            "count": pd.array([1, None, 3, 4], dtype="Int64"),
            "colour": ["red", None, "blue", "red"],
            "label": ["yes", "no", "no", "yes"],
        },
        index=pd.Index([10, 11, 12, 13], name="row") if index else None,
    )
    path = tmp_path / "table.parquet"
    frame.to_parquet(path, index=index)
    pd.testing.assert_frame_equal(read_by_column(path), pd.read_parquet(path))
