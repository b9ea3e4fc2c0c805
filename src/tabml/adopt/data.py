"""The user's data file: its delimiter, whether it can train a classifier, a first
description of it (`tabml.tables` reads it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabml.config import DELIMITERS
from tabml.errors import InputError

SLICE_COLUMNS = 2
# Bytes of the file read to find its header line.
HEADER_BYTES = 64 * 1024
# What a shell passes for a tab: the word, an escaped \t, or the character itself.
DELIMITER_SPELLINGS = {**DELIMITERS, "\\t": "\t", "\t": "\t"}


def delimiter_name(delimiter: str) -> str:
    """How --delimiter spells `delimiter`: 'tab' for a tab, the character otherwise."""
    return next(name for name, value in DELIMITERS.items() if value == delimiter)


def parse_delimiter(flag: str) -> str:
    """The separator a --delimiter value names; an InputError listing the choices."""
    if flag not in DELIMITER_SPELLINGS:
        choices = ", ".join(repr(name) for name in DELIMITERS)
        raise InputError(f"--delimiter {flag!r}: must be one of {choices}")
    return DELIMITER_SPELLINGS[flag]


def header_line(path: Path) -> str:
    """The first non-blank line of `path` ('' when there is none or it cannot be read)."""
    try:
        with path.open("rb") as handle:
            start = handle.read(HEADER_BYTES)
    except OSError:
        return ""
    text = start.decode("utf-8", errors="replace")
    return next((line for line in text.splitlines() if line.strip()), "")


def detect_delimiter(path: Path) -> str:
    """The separator that the header line of the CSV at `path` holds most of; a comma
    when none is more frequent (a single-column header included)."""
    header = header_line(path)
    counts = {value: header.count(value) for value in DELIMITERS.values()}
    best = max(counts, key=lambda value: counts[value])
    return best if counts[best] > counts[","] else ","


def check_target(
    frame: pd.DataFrame, target: str, min_rows: int, source: str, *, min_rows_per_class: int
) -> None:
    """The target names a column with two or more classes, each with enough rows, and
    there are enough rows: what validate will ask of the data, checked before any change."""
    columns = [str(column) for column in frame.columns]
    if target not in columns:
        raise InputError(
            f"--target {target!r}: must be a column of {source}; its columns are {columns}"
            + _delimiter_hint(columns)
        )
    if len(columns) < 2:
        raise InputError(f"--data {source!r}: must hold at least one feature besides the target")
    classes = frame[target].dropna().astype(str).nunique()
    if classes < 2:
        raise InputError(
            f"--target {target!r}: must hold at least 2 classes to train a classifier; "
            f"{source} has {classes}"
        )
    if len(frame) < min_rows:
        raise InputError(
            f"--data {source!r}: has {len(frame)} rows; validate.min_rows in params.yaml "
            f"asks for at least {min_rows}"
        )
    counts = frame[target].dropna().astype(str).value_counts()
    rare = counts[counts < min_rows_per_class]
    if len(rare):
        shown = ", ".join(f"{name!r}: {count}" for name, count in rare.items())
        raise InputError(
            f"--target {target!r}: every class needs at least {min_rows_per_class} rows "
            f"(validate.min_rows_per_class in params.yaml); {source} has {shown}"
        )


def model_card_text(
    frame: pd.DataFrame, target: str, data_path: str, schema_path: str
) -> tuple[str, list[str]]:
    """A first intended-use statement and limitations, from what the data shows."""
    classes = sorted(frame[target].dropna().astype(str).unique())
    shown = ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")
    features = len(frame.columns) - 1
    intended_use = (
        f"Predicts `{target}` ({len(classes)} classes: {shown}) from {features} columns of "
        f"{data_path}. A first statement written at set-up: say what the model is for, "
        "for whom, and what it must not be used for."
    )
    limitations = [
        f"Trained and evaluated on the {len(frame)} rows of {data_path} only; data from "
        "another population, period or source may behave differently.",
        f"The validation schema ({schema_path}) was inferred from this same file; review "
        "its ranges, labels and null allowances.",
    ]
    return intended_use, limitations


def slice_columns(frame: pd.DataFrame, target: str) -> list[str]:
    """The first feature columns, to report metrics by until the user picks better ones."""
    return [str(column) for column in frame.columns if column != target][:SLICE_COLUMNS]


def _delimiter_hint(columns: list[str]) -> str:
    """The likely cause when a file was split at the wrong separator: one column whose
    name holds another separator."""
    if len(columns) != 1:
        return ""
    for name, value in DELIMITERS.items():
        if value != "," and value in columns[0]:
            looks = "tab" if name == "tab" else repr(value)
            return (
                f" (the file looks {looks}-delimited: pass --delimiter {name!r} or convert "
                "it to commas)"
            )
    return ""
