"""Sampled prediction logging: one JSON line per logged row, for drift monitoring.

A line holds the timestamp, the model version, the row's features and the prediction,
and, for a row accepted with values outside their schema ranges (TABML_OUT_OF_RANGE=count),
`out_of_range`: the names of those features. `tabml drift --sample FILE.jsonl` reads
these lines back.

The request path only decides which rows to log (one draw for a single row, one
vectorised draw for a batch) and keeps them: a sampled single row costs a few list
appends. Lines are built later, for many rows at once, when `flush()` runs: the server
calls it once a second, and `record` calls it when `max_pending_rows` rows wait. Built in
bulk, with one array dump per group of rows and one join, a line costs about a third of
what it costs built on its own (about 4 against 15 microseconds for 30 numbers).

Each flush writes whole lines with as few `write` calls as the sink allows: a file
opened for appending takes a group of lines in one call, which Linux keeps whole even
with several server workers appending; a pipe (stdout under a container runtime) keeps
a write whole only up to PIPE_BUF bytes, so lines go in chunks of at most that size
there.
"""

from __future__ import annotations

import logging
import os
import random
import select
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
from numpy.typing import NDArray

from tabml.contract import NUMERIC_INPUT
from tabml.serve.json_columns import json_columns

# The value of TABML_PREDICTION_LOG that means standard output.
STDOUT = "-"
log = logging.getLogger("tabml.serve")
FLUSH_SECONDS = 1.0
# Lines are built this many rows at a time: the pieces of a few hundred rows stay in the
# CPU's cache, a few thousand rows' do not and take several times as long to join.
GROUP_ROWS = 256
# A flush runs on the server's event loop and holds every request while it runs: at most
# one group's worth of rows waits, which a running server writes in about 2 ms (some
# 8 microseconds a row), so a busy server flushes more often rather than for longer.
MAX_PENDING_ROWS = GROUP_ROWS


class PredictionLog:
    def __init__(
        self,
        sink: BinaryIO,
        sample_rate: float,
        model_version: str,
        classes: list[str],
        numeric_names: list[str],
        categorical_names: list[str] | None = None,
        seed: int | None = None,
        max_pending_rows: int = MAX_PENDING_ROWS,
        chunk_bytes: int | None = None,
    ) -> None:
        """Rows are logged with `numeric_names` (the columns of the feed's NUMERIC_INPUT)
        and `categorical_names` (one feed entry each) as their features. `sink` receives
        whole lines in calls of at most `chunk_bytes` each where it can (a single longer
        line goes alone); None: a group of lines per call."""
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate = {sample_rate}: must be between 0 and 1")
        if max_pending_rows < 1:
            raise ValueError(f"max_pending_rows = {max_pending_rows}: must be at least 1")
        self.sink = sink
        self.sample_rate = sample_rate
        self.model_version = model_version
        self.classes = classes
        self.numeric_names = numeric_names
        self.categorical_names = categorical_names or []
        self.max_pending_rows = max_pending_rows
        self.chunk_bytes = chunk_bytes
        self.written_rows = 0
        # Rows whose lines a failed write lost; the predictions themselves were served.
        self.dropped_rows = 0
        # The pending rows: blocks of numbers and of probabilities, and one entry a row
        # in the lists. No container object of a request is kept: a request's own arrays
        # hold no references and are invisible to the garbage collector.
        self._count = 0
        self._numbers: list[NDArray[np.float32]] = []
        self._shares: list[NDArray[np.float32]] = []
        self._categories: list[list[Any]] = [[] for _ in self.categorical_names]
        self._labels: list[str] = []
        self._times: list[float] = []
        # The end of the line of each pending row with out-of-range values, by its index
        # among the pending rows; every other line ends with _LINE_END.
        self._marked_ends: dict[int, bytes] = {}
        self._pieces = _line_pieces(
            orjson.dumps(model_version), [*numeric_names, *self.categorical_names], classes
        )
        self._encoded_labels = {label: orjson.dumps(label) for label in classes}
        self._second = -1
        self._second_text = b""
        self._rng = np.random.default_rng(seed)
        # A single row, the commonest request, needs one number: Python's generator draws
        # it in a fraction of what a numpy call costs.
        self._draw = random.Random(seed).random

    @property
    def pending_rows(self) -> int:
        return self._count

    def record(
        self,
        feed: dict[str, NDArray[Any]],
        labels: list[str],
        probabilities: NDArray[np.float32],
        *,
        outside: NDArray[np.bool_] | None = None,
    ) -> int:
        """Keep the sampled rows of one request for the next flush; returns how many.

        `feed` is the model's input: NUMERIC_INPUT holds the numeric features as columns
        in `numeric_names` order, and each categorical feature is an entry of its own.
        `outside`, shaped like NUMERIC_INPUT, marks values outside their schema ranges.
        A single row's arrays are kept as they are, not copied: the caller must not
        change them afterwards."""
        rows = len(labels)
        rate = self.sample_rate
        if rate <= 0.0 or (rows == 1 and rate < 1.0 and self._draw() >= rate):
            return 0
        if rows == 1:
            # The path of a sampled single-row request, the commonest, so it does little:
            # appends only, the numbers formatted later with many others.
            if self.numeric_names:
                self._numbers.append(feed[NUMERIC_INPUT])
            self._shares.append(probabilities)
            for values, name in zip(self._categories, self.categorical_names, strict=True):
                values.append(feed[name][0, 0])
            self._labels.append(labels[0])
            self._times.append(time.time())
            if outside is not None:
                self._mark(outside)
        else:
            chosen = slice(None) if rate >= 1.0 else np.flatnonzero(self._rng.random(rows) < rate)
            picked = probabilities[chosen]
            rows = len(picked)
            if not rows:
                return 0
            if self.numeric_names:
                self._numbers.append(feed[NUMERIC_INPUT][chosen])
            self._shares.append(picked)
            for values, name in zip(self._categories, self.categorical_names, strict=True):
                values.extend(feed[name][chosen, 0].tolist())
            self._labels.extend(
                labels if isinstance(chosen, slice) else [labels[row] for row in chosen.tolist()]
            )
            self._times.extend([time.time()] * rows)
            if outside is not None:
                self._mark(outside[chosen])
        self._count += rows
        if self._count >= self.max_pending_rows:
            self.flush()
        return rows

    def _mark(self, outside: NDArray[np.bool_]) -> None:
        """Name the out-of-range features of the rows being added (rows of `outside`)."""
        for offset in np.flatnonzero(outside.any(axis=1)).tolist():
            names = [self.numeric_names[column] for column in np.flatnonzero(outside[offset])]
            self._marked_ends[self._count + offset] = (
                b',"out_of_range":' + orjson.dumps(names) + _LINE_END
            )

    def flush(self) -> int:
        """Build and write the lines of every pending row; returns how many were written.

        A write that fails (a full disk, a closed pipe) is logged with the rows it lost,
        which `dropped_rows` counts: the predictions were served, and their log must not
        turn them into errors."""
        total = self._count
        if not total:
            return 0
        numbers = (
            np.concatenate(self._numbers)
            if self.numeric_names
            else np.empty((total, 0), np.float32)
        )
        shares = np.concatenate(self._shares)
        written = 0
        try:
            for start in range(0, total, GROUP_ROWS):
                stop = min(start + GROUP_ROWS, total)
                text = self._text(numbers, shares, start, stop)
                for chunk, count in _chunks(text, stop - start, self.chunk_bytes):
                    _write_all(self.sink, chunk)
                    written += count
        except OSError as error:
            self.dropped_rows += total - written
            log.error("prediction log: %d rows not written: %s", total - written, error)
        finally:
            self._count = 0
            self._marked_ends.clear()
            for pending in (self._numbers, self._shares, self._labels, self._times):
                pending.clear()
            for values in self._categories:
                values.clear()
        self.written_rows += written
        return written

    def close(self) -> None:
        self.flush()
        self.sink.flush()

    def _text(
        self,
        numbers: NDArray[np.float32],
        shares: NDArray[np.float32],
        start: int,
        stop: int,
    ) -> bytes:
        """The newline-ended lines of pending rows `start` to `stop`, whose numeric
        features and probabilities are rows of `numbers` and `shares`.

        Every line is the same constant pieces with a value after each (the last
        value is the line's end): the values of one slot for every row are one list
        (for numbers, one array dump split apart), laid into place with slice
        assignments and joined once, so no Python statement runs per number."""
        rows = stop - start
        slots: list[list[bytes]] = [[self._timestamp(when) for when in self._times[start:stop]]]
        slots.extend(json_columns(numbers[start:stop]))
        for values in self._categories:
            slots.append([_json_value(value) for value in values[start:stop]])
        encoded = self._encoded_labels
        slots.append(
            [encoded.get(label) or orjson.dumps(label) for label in self._labels[start:stop]]
        )
        slots.extend(json_columns(shares[start:stop]))
        ends = [_LINE_END] * rows
        for row, end in self._marked_ends.items():
            if start <= row < stop:
                ends[row - start] = end
        slots.append(ends)
        pieces = self._pieces
        stride = len(pieces) + len(slots)
        parts = [b""] * (rows * stride)
        for index, piece in enumerate(pieces):
            parts[2 * index :: stride] = [piece] * rows
        for index, values in enumerate(slots):
            parts[2 * index + 1 :: stride] = values
        return b"".join(parts)

    def _timestamp(self, seconds: float) -> bytes:
        """`seconds` since the epoch as a quoted ISO 8601 UTC time to the millisecond;
        the date and time of day are formatted once a second, not once a row."""
        whole = int(seconds)
        if whole != self._second:
            self._second = whole
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)).encode()
        milliseconds = min(int((seconds - whole) * 1000), 999)
        return b'"%s.%03d+00:00"' % (self._second_text, milliseconds)


def open_sink(target: str) -> tuple[BinaryIO, int | None]:
    """The unbuffered sink for TABML_PREDICTION_LOG's value (STDOUT: file descriptor 1,
    left open when the sink is closed), and the largest write it keeps whole (None: any).

    Raises OSError when a file cannot be opened for appending."""
    if target == STDOUT:
        sink: BinaryIO = open(1, "wb", buffering=0, closefd=False)  # noqa: SIM115
    else:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = path.open("ab", buffering=0)
    mode = os.fstat(sink.fileno()).st_mode
    return sink, None if stat.S_ISREG(mode) else select.PIPE_BUF


def _json_value(value: Any) -> bytes:
    """A categorical value as JSON: strings as they are, a NaN number as null."""
    if isinstance(value, str):
        return orjson.dumps(value)
    if isinstance(value, np.floating | float):
        number = float(value)
        return orjson.dumps(None if number != number else number)
    return orjson.dumps(value.item() if isinstance(value, np.generic) else value)


_LINE_END = b"}\n"


def _line_pieces(version: bytes, features: list[str], classes: list[str]) -> list[bytes]:
    """The constant text of a log line around its values: before the timestamp, before
    each feature value (the model version and each key), before the label, before each
    class probability, and after the last probability (closing the prediction; the line's
    end, with any out-of-range mark, follows). Keys are encoded once here rather than for
    every logged row."""
    pieces = [b'{"timestamp":']
    opening = b',"model_version":' + version + b',"features":{'
    for index, name in enumerate(features):
        pieces.append((b"," if index else opening) + orjson.dumps(name) + b":")
    closing = (b"" if features else opening) + b'},"prediction":{"label":'
    pieces.append(closing)
    for index, label in enumerate(classes):
        opening = b"," if index else b',"probabilities":{'
        pieces.append(opening + orjson.dumps(label) + b":")
    pieces.append((b"" if classes else b',"probabilities":{') + b"}}")
    return pieces


def _chunks(text: bytes, lines: int, limit: int | None) -> Iterator[tuple[bytes, int]]:
    """`lines` newline-ended lines in pieces of at most `limit` bytes (a longer line
    alone), or all in one piece when `limit` is None; each piece with its line count."""
    if limit is None or len(text) <= limit:
        yield text, lines
        return
    piece: list[bytes] = []
    size = 0
    # JSON escapes newlines inside strings: every b"\n" ends a line.
    for line in text[:-1].split(b"\n"):
        if piece and size + len(line) + 1 > limit:
            yield b"\n".join(piece) + b"\n", len(piece)
            piece, size = [], 0
        piece.append(line)
        size += len(line) + 1
    if piece:
        yield b"\n".join(piece) + b"\n", len(piece)


def _write_all(sink: BinaryIO, data: bytes) -> None:
    """Write all of `data`: an unbuffered file or pipe may take part of it per call.

    Raises BlockingIOError when a sink in non-blocking mode takes nothing (write gives
    None), so the rows count as dropped rather than written."""
    view = memoryview(data)
    while view:
        taken = sink.write(view)
        if taken is None:
            raise BlockingIOError("the prediction log's sink would block")
        view = view[taken:]
