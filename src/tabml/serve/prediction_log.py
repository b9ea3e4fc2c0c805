"""Sampled prediction logging: one JSON line per logged row, for drift monitoring.

A line holds the timestamp, the model version, the row's features and the prediction;
`tabml drift --sample FILE.jsonl` reads these lines back.

The request path only decides which rows to log (one draw for a single row, one
vectorised draw for a batch) and keeps a reference to them with the time. Lines are
built later, for many requests at once, when `flush()` runs: the server calls it once a
second, and `record` calls it when `max_pending_rows` rows are waiting. Built in bulk,
with one array dump per group of rows and one join, a line costs about half of what it
costs built on its own per request, and a sampled single-row request costs about a
microsecond more than one that is not (see the serving benchmark).

Each flush writes whole lines with as few `write` calls as the sink allows: a file
opened for appending takes them in one call, which Linux keeps whole even with several
server workers appending; a pipe (stdout under a container runtime) keeps a write whole
only up to PIPE_BUF bytes, so lines go in chunks of at most that size there.
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
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray

from tabml.serve.model import NUMERIC_INPUT

# The value of TABML_PREDICTION_LOG that means standard output.
STDOUT = "-"
log = logging.getLogger("tabml.serve")
FLUSH_SECONDS = 1.0
MAX_PENDING_ROWS = 1024
# Lines are built this many rows at a time, at most (a larger request alone): the
# pieces of a few hundred rows stay in the CPU's cache, a few thousand rows' do not
# and take several times as long to join.
GROUP_ROWS = 256
_NO_ROWS = np.empty(0, dtype=np.intp)
_NO_ROWS.flags.writeable = False


class _Pending(NamedTuple):
    """Sampled rows of one request, kept as the request left them until the next flush."""

    seconds: float
    feed: dict[str, NDArray[Any]]
    labels: list[str]
    probabilities: NDArray[np.float32]


class PredictionLog:
    def __init__(
        self,
        sink: BinaryIO,
        sample_rate: float,
        model_version: str,
        classes: list[str],
        numeric_names: list[str],
        seed: int | None = None,
        max_pending_rows: int = MAX_PENDING_ROWS,
        chunk_bytes: int | None = None,
    ) -> None:
        """`sink` receives whole lines in calls of at most `chunk_bytes` each where it
        can (a single longer line goes alone); None: all pending lines in one call."""
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate = {sample_rate}: must be between 0 and 1")
        if max_pending_rows < 1:
            raise ValueError(f"max_pending_rows = {max_pending_rows}: must be at least 1")
        self.sink = sink
        self.sample_rate = sample_rate
        self.model_version = model_version
        self.classes = classes
        self.numeric_names = numeric_names
        self.max_pending_rows = max_pending_rows
        self.chunk_bytes = chunk_bytes
        self._pending: list[_Pending] = []
        self._pending_rows = 0
        self.written_rows = 0
        # Rows whose lines a failed write lost; the predictions themselves were served.
        self.dropped_rows = 0
        self._layouts: dict[tuple[str, ...], list[bytes]] = {}
        self._version = orjson.dumps(model_version)
        self._labels = {label: orjson.dumps(label) for label in classes}
        self._second = -1
        self._second_text = b""
        self._rng = np.random.default_rng(seed)
        # A single row, the commonest request, needs one number: Python's generator draws
        # it in a fraction of what a numpy call costs.
        self._draw = random.Random(seed).random

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def sampled_rows(self, rows: int) -> NDArray[np.intp] | None:
        """The rows of a `rows`-row request to log; None means every one of them."""
        if self.sample_rate >= 1.0:
            return None
        if self.sample_rate <= 0.0:
            return _NO_ROWS
        if rows == 1:
            return None if self._draw() < self.sample_rate else _NO_ROWS
        return np.flatnonzero(self._rng.random(rows) < self.sample_rate)

    def record(
        self, feed: dict[str, NDArray[Any]], labels: list[str], probabilities: NDArray[np.float32]
    ) -> int:
        """Keep the sampled rows of one request for the next flush; returns how many.

        `feed` is the model's input: NUMERIC_INPUT holds the numeric features as columns
        in `numeric_names` order, every other entry is one categorical feature. The
        arrays are kept, not copied: the caller must not change them afterwards."""
        rows = self.sampled_rows(len(labels))
        if rows is not None:
            if not len(rows):
                return 0
            feed = {name: values[rows] for name, values in feed.items()}
            labels = [labels[row] for row in rows.tolist()]
            probabilities = probabilities[rows]
        self._pending.append(_Pending(time.time(), feed, labels, probabilities))
        self._pending_rows += len(labels)
        if self._pending_rows >= self.max_pending_rows:
            self.flush()
        return len(labels)

    def flush(self) -> int:
        """Build and write the lines of every pending row; returns how many were written.

        A write that fails (a full disk, a closed pipe) is logged with the rows it lost,
        which `dropped_rows` counts: the predictions were served, and their log must not
        turn them into errors."""
        if not self._pending:
            return 0
        pending, self._pending, self._pending_rows = self._pending, [], 0
        lines = b"".join(self._text(group) for group in _groups(pending))
        written = 0
        total = sum(len(item.labels) for item in pending)
        try:
            for chunk, count in _chunks(lines, self.chunk_bytes):
                _write_all(self.sink, chunk)
                written += count
        except OSError as error:
            self.dropped_rows += total - written
            log.error("prediction log: %d rows not written: %s", total - written, error)
        self.written_rows += written
        return written

    def close(self) -> None:
        self.flush()
        self.sink.flush()

    def _text(self, group: list[_Pending]) -> bytes:
        """The newline-ended lines of a group of requests with the same inputs.

        Every line is the same constant pieces with a value between each two: the
        values of one slot for every row are one list (for numbers, one array dump
        split apart), laid into place with slice assignments and joined once, so no
        Python statement runs per number."""
        names = tuple(name for name in group[0].feed if name != NUMERIC_INPUT)
        pieces = self._layouts.get(names)
        if pieces is None:
            pieces = _line_pieces(self._version, [*self.numeric_names, *names], self.classes)
            self._layouts[names] = pieces
        timestamps = [
            stamp for item in group for stamp in [self._timestamp(item.seconds)] * len(item.labels)
        ]
        rows = len(timestamps)
        slots: list[list[bytes]] = [timestamps]
        if NUMERIC_INPUT in group[0].feed:
            numeric = _stack([item.feed[NUMERIC_INPUT] for item in group])
            slots.extend(_json_columns(numeric))
        for name in names:
            column = _stack([item.feed[name] for item in group])[:, 0]
            slots.append([_json_value(value) for value in column.tolist()])
        slots.append([self._label_json(label) for item in group for label in item.labels])
        slots.extend(_json_columns(_stack([item.probabilities for item in group])))
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

    def _label_json(self, label: str) -> bytes:
        encoded = self._labels.get(label)
        return encoded if encoded is not None else orjson.dumps(label)


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


def _groups(pending: list[_Pending]) -> Iterator[list[_Pending]]:
    """Consecutive requests whose feeds hold the same inputs in the same order, in
    groups of up to GROUP_ROWS rows."""
    group = [pending[0]]
    inputs, rows = list(pending[0].feed), len(pending[0].labels)
    for item in pending[1:]:
        if list(item.feed) == inputs and rows + len(item.labels) <= GROUP_ROWS:
            group.append(item)
            rows += len(item.labels)
        else:
            yield group
            group, inputs, rows = [item], list(item.feed), len(item.labels)
    yield group


def _stack(blocks: list[NDArray[Any]]) -> NDArray[Any]:
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _json_columns(block: NDArray[np.float32]) -> list[list[bytes]]:
    """Each column of a 2-D float array as its rows' JSON numbers (NaN as null), from
    one dump."""
    width = block.shape[1]
    if not width:
        return []
    text = orjson.dumps(np.ascontiguousarray(block), option=orjson.OPT_SERIALIZE_NUMPY)
    # "[[1.5,null],[0.1,2.0]]" holds numbers and nulls only: brackets and commas split it.
    flat = text[2:-2].replace(b"],[", b",").split(b",")
    return [flat[column::width] for column in range(width)]


def _json_value(value: Any) -> bytes:
    """A categorical value as JSON: strings as they are, a NaN number as null."""
    if isinstance(value, str):
        return orjson.dumps(value)
    if isinstance(value, np.floating | float):
        number = float(value)
        return orjson.dumps(None if number != number else number)
    return orjson.dumps(value.item() if isinstance(value, np.generic) else value)


def _line_pieces(version: bytes, features: list[str], classes: list[str]) -> list[bytes]:
    """The constant text of a log line around its values: before the timestamp, before
    each feature value (the model version and each key), before the label, before each
    class probability, and after the last value (ending the line). Keys are encoded
    once here rather than for every logged row."""
    pieces = [b'{"timestamp":']
    opening = b',"model_version":' + version + b',"features":{'
    for index, name in enumerate(features):
        pieces.append((b"," if index else opening) + orjson.dumps(name) + b":")
    closing = (b"" if features else opening) + b'},"prediction":{"label":'
    pieces.append(closing)
    for index, label in enumerate(classes):
        opening = b"," if index else b',"probabilities":{'
        pieces.append(opening + orjson.dumps(label) + b":")
    pieces.append((b"" if classes else b',"probabilities":{') + b"}}}\n")
    return pieces


def _chunks(text: bytes, limit: int | None) -> Iterator[tuple[bytes, int]]:
    """Newline-ended lines in pieces of at most `limit` bytes (a longer line alone), or
    all in one piece when `limit` is None; each piece with its line count."""
    if limit is None or len(text) <= limit:
        yield text, text.count(b"\n")
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
    """Write all of `data`: an unbuffered file or pipe may take part of it per call."""
    view = memoryview(data)
    while view:
        taken = sink.write(view)
        view = view[len(view) if taken is None else taken :]
