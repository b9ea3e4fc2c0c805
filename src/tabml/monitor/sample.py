"""Reading a production sample: the serving log's JSON lines, or a CSV or Parquet file.

A logged prediction is one JSON object per line:
{"timestamp": ..., "model_version": ..., "features": {name: value, ...},
 "prediction": {"label": ..., "probabilities": {...}}, "actual": optional true label,
 "out_of_range": optional [names of features outside their schema range]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tabml.errors import InputError
from tabml.tables import SUFFIXES as TABLE_SUFFIXES
from tabml.tables import check_file, read_table

SAMPLE_FLAG = "--sample"
LOGGED_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass(frozen=True)
class Sample:
    features: pd.DataFrame
    predictions: NDArray[Any] | None
    labels: NDArray[Any] | None


def _record(line: str, number: int, source: Path) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: line {number} is not valid JSON: {exc.msg}") from None
    if not isinstance(record, dict) or not isinstance(record.get("features"), dict):
        raise InputError(
            f'{source}: line {number} has no "features" object; each line must '
            "be a logged prediction"
        )
    return record


def _logged_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise InputError(
            f"{SAMPLE_FLAG} {str(path)!r}: must be UTF-8 text (logged predictions); byte "
            f"{error.start} is {error.object[error.start : error.start + 1]!r}"
        ) from None


def read_logged(path: Path) -> Sample:
    records = [
        _record(line, number, path)
        for number, line in enumerate(_logged_lines(path), start=1)
        if line.strip()
    ]
    features = pd.DataFrame([r["features"] for r in records])
    predictions = [r.get("prediction", {}).get("label") for r in records]
    labels = [r.get("actual") for r in records]
    return Sample(
        features=features,
        predictions=np.asarray(predictions, dtype=object)
        if all(p is not None for p in predictions) and records
        else None,
        labels=np.asarray(labels, dtype=object).astype(str)
        if all(a is not None for a in labels) and records
        else None,
    )


def read_sample(path: Path, target: str) -> Sample:
    """The sample at `path`; a target column (CSV/Parquet) or "actual" (JSON) are labels."""
    suffix = path.suffix.lower()
    if suffix in LOGGED_SUFFIXES:
        check_file(path, SAMPLE_FLAG)
        return read_logged(path)
    if suffix not in TABLE_SUFFIXES:
        raise InputError(
            f"{SAMPLE_FLAG} {str(path)!r}: must be .jsonl (logged predictions), .csv or .parquet"
        )
    frame = read_table(path, field=SAMPLE_FLAG)
    labels = frame.pop(target).astype(str).to_numpy() if target in frame.columns else None
    return Sample(frame, None, labels)
