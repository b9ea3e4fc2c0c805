"""Sampled prediction logging: one JSON line per logged row, for drift monitoring.

A line holds the timestamp, the model version, the row's features and the prediction;
`tabml drift --sample FILE.jsonl` reads these lines back. Sampling happens per row
with one vectorised draw per request, and lines go to a buffered file that is flushed
at most once a second and at shutdown, so logging stays off the hot path's critical
costs (see the serving benchmark).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, BinaryIO

import numpy as np
import orjson
from numpy.typing import NDArray

from tabml.serve.model import NUMERIC_INPUT

FLUSH_SECONDS = 1.0


class PredictionLog:
    def __init__(
        self,
        sink: BinaryIO,
        sample_rate: float,
        model_version: str,
        classes: list[str],
        numeric_names: list[str],
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate = {sample_rate}: must be between 0 and 1")
        self.sink = sink
        self.sample_rate = sample_rate
        self.model_version = model_version
        self.classes = classes
        self.numeric_names = numeric_names
        self._rng = np.random.default_rng(seed)
        self._last_flush = time.monotonic()

    def sampled_rows(self, rows: int) -> NDArray[np.intp]:
        if self.sample_rate >= 1.0:
            return np.arange(rows)
        if self.sample_rate <= 0.0:
            return np.empty(0, dtype=np.intp)
        return np.flatnonzero(self._rng.random(rows) < self.sample_rate)

    def record(
        self, feed: dict[str, NDArray[Any]], labels: list[str], probabilities: NDArray[np.float32]
    ) -> int:
        """Log the sampled rows of one request; returns how many were logged.

        `feed` is the model's input: NUMERIC_INPUT holds the numeric features as columns
        in `numeric_names` order, every other entry is one categorical feature."""
        rows = self.sampled_rows(len(labels))
        if not len(rows):
            return 0
        timestamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        numeric = feed.get(NUMERIC_INPUT)
        categorical = [name for name in feed if name != NUMERIC_INPUT]
        lines = []
        for i in rows.tolist():
            features: dict[str, Any] = {}
            if numeric is not None:
                values = numeric[i].tolist()
                # NaN (a missing number) is logged as null.
                features.update(
                    (name, None if value != value else value)
                    for name, value in zip(self.numeric_names, values, strict=True)
                )
            for name in categorical:
                features[name] = _plain(feed[name][i, 0])
            record = {
                "timestamp": timestamp,
                "model_version": self.model_version,
                "features": features,
                "prediction": {
                    "label": labels[i],
                    "probabilities": dict(
                        zip(self.classes, probabilities[i].tolist(), strict=True)
                    ),
                },
            }
            lines.append(orjson.dumps(record))
        self.sink.write(b"\n".join(lines) + b"\n")
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self.sink.flush()
            self._last_flush = now
        return len(rows)

    def close(self) -> None:
        self.sink.flush()


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: NaN (a missing number) becomes null."""
    if isinstance(value, np.floating):
        number = float(value)
        return None if number != number else number
    return value.item() if isinstance(value, np.generic) else value
