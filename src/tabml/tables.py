"""A CSV or Parquet file read as a frame: one reader, one set of messages.

Every command that takes a table from the user (init's --data, infer-schema's --data,
drift's --sample) reads it here. A file that cannot be read is an InputError naming
the flag, the path and the rule it breaks, so the command exits 2 with a message
rather than a pandas traceback. The stages' own Parquet files, which validate and split
wrote, are read here too, a column at a time (`read_by_column`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabml.errors import InputError

SUFFIXES = (".csv", ".parquet")


def check_file(path: Path, field: str, *, hint: str = "") -> None:
    """`path` names a file this process can read; an InputError naming `field` (the flag
    it came from) and the path otherwise, with `hint` (what to do) after a missing one."""
    named = f"{field} {str(path)!r}"
    if not path.exists():
        raise InputError(f"{named}: no such file" + (f"; {hint}" if hint else ""))
    if not path.is_file():
        raise InputError(f"{named}: must be a file, not a directory")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as error:
        raise InputError(f"{named}: cannot be read ({error.strerror})") from None


def read_table(path: Path, *, field: str, delimiter: str = ",") -> pd.DataFrame:
    """The CSV (split at `delimiter`) or Parquet file at `path` as a frame with at least
    one row; an InputError naming `field`, the path and the rule otherwise."""
    named = f"{field} {str(path)!r}"
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{named}: must be a CSV (.csv) or Parquet (.parquet) file")
    check_file(path, field)
    try:
        frame = pd.read_csv(path, sep=delimiter) if suffix == ".csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"{named}: must not be empty (no header, no rows)") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        kind = "CSV" if suffix == ".csv" else "Parquet"
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"{named}: must be a readable {kind} file ({first})") from None
    if frame.empty:
        raise InputError(f"{named}: must hold at least one data row (it has a header only)")
    return frame


def read_by_column(path: Path) -> pd.DataFrame:
    """The Parquet file at `path` as pandas reads it, read one column at a time.

    pandas' own read decodes the whole file into Arrow and converts that, holding both
    at once; a column at a time, reading holds the frame and one column. The model card
    at a million rows: 857 MB became 622 MB.
    """
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    index = {
        c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)
    }
    columns = [name for name in schema.names if name not in index]
    return pd.concat([pd.read_parquet(path, columns=[name]) for name in columns], axis=1)
