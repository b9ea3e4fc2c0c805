"""Where scored rows go: the predictions table (CSV or Parquet, by the path's suffix) and
the refused rows (JSON lines), each written chunk by chunk.

A prediction row holds the input row's position, the predicted label, one probability
column per class (in metadata.json's class order) and the model version.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any

import orjson

from tabml.score.reader import require_pyarrow, table_kind
from tabml.score.rows import RefusedRow, ScoredChunk
from tabml.serve.problems import RequestError


def prediction_columns(classes: list[str]) -> list[str]:
    return ["row", "label", *(f"probability_{name}" for name in classes), "model_version"]


class PredictionWriter:
    """Appends scored chunks to a CSV or Parquet file; `close` finishes it."""

    def __init__(self, path: Path, classes: list[str], model_version: str) -> None:
        self.kind = table_kind(path, "--output")
        self.columns = prediction_columns(classes)
        self.model_version = model_version
        self._handle: IO[str] | None = None
        self._csv: Any = None
        self._parquet: Any = None
        if self.kind == "csv":
            self._handle = path.open("w", newline="", encoding="utf-8")
            self._csv = csv.writer(self._handle)
            self._csv.writerow(self.columns)
        else:
            parquet = require_pyarrow("--output", path)
            import pyarrow

            fields = [
                pyarrow.field("row", pyarrow.int64()),
                pyarrow.field("label", pyarrow.string()),
            ]
            fields += [pyarrow.field(name, pyarrow.float32()) for name in self.columns[2:-1]]
            fields.append(pyarrow.field("model_version", pyarrow.string()))
            self._schema = pyarrow.schema(fields)
            self._parquet = parquet.ParquetWriter(path, self._schema)

    def write(self, chunk: ScoredChunk) -> None:
        if not chunk.rows:
            return
        if self._csv is not None:
            version = self.model_version
            self._csv.writerows(
                [row, label, *probabilities, version]
                for row, label, probabilities in zip(
                    chunk.rows, chunk.labels, chunk.probabilities.tolist(), strict=True
                )
            )
            return
        import pyarrow

        arrays = [
            pyarrow.array(chunk.rows, pyarrow.int64()),
            pyarrow.array(chunk.labels, pyarrow.string()),
            *(pyarrow.array(chunk.probabilities[:, at]) for at in range(len(self.columns) - 3)),
            pyarrow.array([self.model_version] * len(chunk.rows), pyarrow.string()),
        ]
        self._parquet.write_table(pyarrow.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._parquet is not None:
            self._parquet.close()


def refused_line(refused: RefusedRow) -> bytes:
    """One refused row as a JSON line: its position, its problems in the API's words (the
    `details` of a 422 answer) and the values it held."""
    details = RequestError(422, refused.problems).body()["details"]
    return orjson.dumps(
        {"row": refused.row, "problems": details, "values": refused.values},
        option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY,
        default=repr,
    )
