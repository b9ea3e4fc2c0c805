"""A CSV or Parquet table read chunk by chunk as rows of JSON-like values.

Each chunk holds at most `chunk_rows` rows, so memory is bounded by the chunk size,
not the file size. A cell becomes the value a client would send the API for it, so the
API's checks judge it: an empty CSV cell (or a Parquet null, or NaN, pandas' missing
marker) is null; a numeric feature's CSV cell is a number where Python's float() reads
one and stays text otherwise ("must be a number ..., not a string").

CSV needs only the standard library; Parquet needs pyarrow, which the `tabml` CLI has
and the serving image leaves out. A Parquet file is decoded a row group at a time, so
its row-group size bounds the memory too.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from tabml.errors import InputError

SUFFIXES = (".csv", ".parquet")
# A JSON integer literal.
_WHOLE = re.compile(r"-?(?:0|[1-9][0-9]*)")
Record = dict[str, Any]


@dataclass(frozen=True)
class Chunk:
    first_row: int  # the position of the chunk's first row in the table, from 1
    records: list[Record]  # feature name -> value, one dict per row
    # Row `index` of the chunk as a client would write it in JSON: a CSV cell holding a
    # whole number is an int here, not the float `records` holds (the API shows -1, not
    # -1.0, in a problem). For the few rows a problem names; parsing every cell so would
    # cost more than the decoding.
    exact: Callable[[int], Record]


def table_kind(path: Path, field: str) -> str:
    """ "csv" or "parquet" by the file's suffix; an InputError naming `field` otherwise."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{field} {str(path)!r}: must be a CSV (.csv) or Parquet (.parquet) file")
    return suffix[1:]


def require_pyarrow(field: str, path: Path) -> Any:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise InputError(
            f"{field} {str(path)!r}: Parquet needs pyarrow, which is not installed here "
            "(the serving image has none): use a CSV file, or the `tabml` CLI"
        ) from None
    return parquet


def read_chunks(
    path: Path, features: Sequence[str], numeric: frozenset[str], chunk_rows: int
) -> Iterator[Chunk]:
    """The table at `path` in chunks of the `features` columns; other columns are not
    read. An InputError names the path and the rule when the file cannot be read or
    lacks a feature column."""
    kind = table_kind(path, "--input")
    _check_readable(path)
    if kind == "csv":
        yield from _csv_chunks(path, features, numeric, chunk_rows)
    else:
        yield from _parquet_chunks(path, features, chunk_rows)


def _check_readable(path: Path) -> None:
    named = f"--input {str(path)!r}"
    if not path.exists():
        raise InputError(f"{named}: no such file")
    if not path.is_file():
        raise InputError(f"{named}: must be a file, not a directory")


def _missing(path: Path, features: Sequence[str], columns: Sequence[str]) -> None:
    absent = [name for name in features if name not in columns]
    if absent:
        raise InputError(
            f"--input {str(path)!r}: lacks the feature columns {absent}; "
            "every feature the model takes must have a column"
        )


def _csv_chunks(
    path: Path, features: Sequence[str], numeric: frozenset[str], chunk_rows: int
) -> Iterator[Chunk]:
    named = f"--input {str(path)!r}"
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a BOM is no header
            rows = csv.reader(handle)
            header = next(rows, None)
            if header is None:
                raise InputError(f"{named}: must not be empty (no header, no rows)")
            _missing(path, features, header)
            positions = [header.index(name) for name in features]
            width = len(header)
            first_row = 1
            while block := list(islice(rows, chunk_rows)):
                for offset, row in enumerate(block):
                    if len(row) != width:
                        raise InputError(
                            f"{named}: row {first_row + offset} has {len(row)} fields, "
                            f"the header {width}; every row must have one per column"
                        )
                columns = [
                    _numbers([row[at] for row in block])
                    if name in numeric
                    else [row[at] or None for row in block]
                    for name, at in zip(features, positions, strict=True)
                ]
                records = _records(features, columns)
                yield Chunk(first_row, records, _exact_csv_row(block, features, positions, numeric))
                first_row += len(block)
    except UnicodeDecodeError as error:
        raise InputError(f"{named}: must be UTF-8 text ({error.reason})") from None
    except csv.Error as error:
        raise InputError(f"{named}: must be a readable CSV file ({error})") from None
    except OSError as error:
        raise InputError(f"{named}: cannot be read ({error.strerror})") from None


def _records(features: Sequence[str], columns: list[list[Any]]) -> list[Record]:
    return [dict(zip(features, values, strict=True)) for values in zip(*columns, strict=True)]


def _numbers(cells: list[str]) -> list[Any]:
    """A numeric column's cells as numbers, empty cells as None, other text kept."""
    try:
        return list(map(float, cells))  # every cell a number: one C loop
    except ValueError:
        return [_number(cell) for cell in cells]


def _number(cell: str) -> Any:
    if not cell:
        return None
    try:
        return float(cell)
    except ValueError:
        return cell


def _exact_csv_row(
    block: list[list[str]], features: Sequence[str], positions: list[int], numeric: frozenset[str]
) -> Callable[[int], Record]:
    def exact(index: int) -> Record:
        row = block[index]
        return {
            name: _exact_number(row[at]) if name in numeric else row[at] or None
            for name, at in zip(features, positions, strict=True)
        }

    return exact


def _exact_number(cell: str) -> Any:
    return int(cell) if _WHOLE.fullmatch(cell) else _number(cell)


def _parquet_chunks(path: Path, features: Sequence[str], chunk_rows: int) -> Iterator[Chunk]:
    parquet = require_pyarrow("--input", path)
    import pyarrow

    named = f"--input {str(path)!r}"
    try:
        # Read column chunks through a small buffer rather than whole: pyarrow still
        # decodes a row group at a time, so a Parquet file's row-group size (its writer's
        # choice) bounds the memory beside the chunk size; buffered reading took a
        # 400,000-row, 30-column row group from 247 to 180 MB peak.
        table = parquet.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except (pyarrow.ArrowException, OSError) as error:
        raise InputError(f"{named}: must be a readable Parquet file ({error})") from None
    _missing(path, features, table.schema_arrow.names)
    first_row = 1
    try:
        for batch in table.iter_batches(batch_size=chunk_rows, columns=list(features)):
            columns = [_no_nan(batch.column(name).to_pylist()) for name in features]
            records = _records(features, columns)
            if records:
                yield Chunk(first_row, records, records.__getitem__)
            first_row += len(records)
    except (pyarrow.ArrowException, OSError) as error:
        raise InputError(f"{named}: must be a readable Parquet file ({error})") from None


def _no_nan(values: list[Any]) -> list[Any]:
    """NaN as None: pandas writes a missing float as NaN, and a client sends it as null."""
    return [None if type(value) is float and math.isnan(value) else value for value in values]
