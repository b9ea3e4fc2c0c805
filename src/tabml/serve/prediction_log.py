"""Sampled prediction logging: one JSON line per logged row, for drift monitoring.

A line holds the timestamp, the model version, the row's features and the prediction;
`tabml drift --sample FILE.jsonl` reads these lines back. Sampling happens per row
(one draw for a single row, one vectorised draw for a batch), and lines go to a
buffered file that is flushed
at most once a second and at shutdown, so logging stays off the hot path's critical
costs (see the serving benchmark).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any, BinaryIO

import numpy as np
import orjson
from numpy.typing import NDArray

from tabml.serve.model import NUMERIC_INPUT

FLUSH_SECONDS = 1.0
_NO_ROWS = np.empty(0, dtype=np.intp)
_FIRST_ROW = np.zeros(1, dtype=np.intp)
_NO_ROWS.flags.writeable = _FIRST_ROW.flags.writeable = False


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
        self._categorical_names: list[str] | None = None
        self._template = b""
        self._version = orjson.dumps(model_version)
        self._labels = {label: orjson.dumps(label) for label in classes}
        self._rng = np.random.default_rng(seed)
        # A single row, the commonest request, needs one number: Python's generator draws
        # it in a fraction of what a numpy call costs.
        self._draw = random.Random(seed).random
        self._last_flush = time.monotonic()

    def sampled_rows(self, rows: int) -> NDArray[np.intp]:
        if self.sample_rate >= 1.0:
            return np.arange(rows)
        if self.sample_rate <= 0.0 or (rows == 1 and self._draw() >= self.sample_rate):
            return _NO_ROWS
        if rows == 1:
            return _FIRST_ROW
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
        categorical = [name for name in feed if name != NUMERIC_INPUT]
        if categorical != self._categorical_names:
            self._template = _line_template(self.numeric_names, categorical, self.classes)
            self._categorical_names = categorical
        timestamp = orjson.dumps(datetime.now(UTC).isoformat(timespec="milliseconds"))
        head = (timestamp, self._version)
        numeric = feed.get(NUMERIC_INPUT)
        numbers = _json_rows(numeric[rows]) if numeric is not None else [[]] * len(rows)
        categories = [
            [orjson.dumps(_plain(value)) for value in feed[name][rows, 0]] for name in categorical
        ]
        shares = _json_rows(probabilities[rows])
        template = self._template
        lines = [
            template % (*head, *values, *extra, self._label_json(labels[row]), *row_shares)
            for row, values, row_shares, *extra in zip(
                rows.tolist(), numbers, shares, *categories, strict=True
            )
        ]
        self.sink.write(b"\n".join(lines) + b"\n")
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS:
            self.sink.flush()
            self._last_flush = now
        return len(rows)

    def _label_json(self, label: str) -> bytes:
        encoded = self._labels.get(label)
        return encoded if encoded is not None else orjson.dumps(label)

    def close(self) -> None:
        self.sink.flush()


def _json_rows(block: NDArray[np.float32]) -> list[list[bytes]]:
    """Each row of a 2-D float array as its JSON numbers (NaN as null), from one dump."""
    text = orjson.dumps(np.ascontiguousarray(block), option=orjson.OPT_SERIALIZE_NUMPY)
    # "[[1.5,null],[0.1,2.0]]" holds numbers and nulls only: brackets and commas split it.
    return [row.split(b",") for row in text[2:-2].split(b"],[")]


def _line_template(numeric: list[str], categorical: list[str], classes: list[str]) -> bytes:
    """One log line as a bytes %-template: a slot for the timestamp, the model version,
    each feature value, the label and each class probability, in that order; keys are
    encoded once here rather than for every logged row."""

    def slots(names: list[str]) -> bytes:
        return b",".join(orjson.dumps(name).replace(b"%", b"%%") + b":%s" for name in names)

    return (
        b'{"timestamp":%s,"model_version":%s,"features":{'
        + slots([*numeric, *categorical])
        + b'},"prediction":{"label":%s,"probabilities":{'
        + slots(classes)
        + b"}}}"
    )


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: NaN (a missing number) becomes null."""
    if isinstance(value, np.floating):
        number = float(value)
        return None if number != number else number
    return value.item() if isinstance(value, np.generic) else value
