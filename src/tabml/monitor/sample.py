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


def read_logged(path: Path) -> Sample:
    records = [
        _record(line, number, path)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
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


def _read_table(path: Path, suffix: str) -> pd.DataFrame:
    """A CSV or Parquet file as a frame; a file that is neither fails naming it. An empty
    CSV is an empty frame, which the sample checks then report as having no rows."""
    try:
        return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        kind = "CSV" if suffix == ".csv" else "Parquet"
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"--sample {path}: must be a readable {kind} file ({first})") from None


def read_sample(path: Path, target: str) -> Sample:
    """The sample at `path`; a target column (CSV/Parquet) or "actual" (JSON) are labels."""
    if not path.is_file():
        raise InputError(f"--sample {path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return read_logged(path)
    if suffix not in (".csv", ".parquet"):
        raise InputError(f"--sample {path}: must be .jsonl (logged predictions), .csv or .parquet")
    frame = _read_table(path, suffix)
    labels = frame.pop(target).astype(str).to_numpy() if target in frame.columns else None
    return Sample(frame, None, labels)
