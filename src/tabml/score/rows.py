"""One chunk of rows checked and scored: the core of batch scoring, with no I/O.

The rows go through serving's `RowDecoder.decode_records` as one batch, the path a
POST /predict with the same rows takes. A row it refuses is decoded again alone, so its
problems (field, value, rule) are word for word those of POST /predict with that row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tabml.score.reader import Chunk
from tabml.serve.decode import Feed, RowDecoder
from tabml.serve.model import OnnxModel
from tabml.serve.numbers import Outside
from tabml.serve.problems import Problem, RequestError

# How the decoder locates a value in a batch: "[3].mean_radius".
_IN_BATCH = re.compile(r"\[(\d+)\]\.")


@dataclass(frozen=True)
class RefusedRow:
    row: int  # the row's position in the table, from 1
    values: dict[str, Any]
    problems: list[Problem]

    def describe(self) -> str:
        return f"row {self.row}: {RequestError(422, self.problems).message}"


@dataclass(frozen=True)
class ScoredChunk:
    rows: list[int]  # positions of the scored rows, from 1
    labels: list[str]
    probabilities: NDArray[np.float32]  # [rows, classes]
    refused: list[RefusedRow] = field(default_factory=list)
    outside: int = 0  # values outside their schema range (scored under "count")


def score_chunk(model: OnnxModel, decoder: RowDecoder, chunk: Chunk) -> ScoredChunk:
    """The predictions for the rows of `chunk` that the API would take, and every other
    row with the problems the API names for it."""
    records, first_row = chunk.records, chunk.first_row
    if not records:
        return _empty(model)
    keep = list(range(len(records)))
    refused: list[RefusedRow] = []
    try:
        feed, _, outside = decoder.decode_records(records)
    except RequestError as error:
        bad = _refused_rows(error.problems)
        refused = [_refused(decoder, chunk, index) for index in sorted(bad)]
        keep = [index for index in keep if index not in bad]
        if not keep:
            return ScoredChunk([], [], _no_probabilities(model), refused)
        # The rows left break no rule the decoder checks value by value.
        feed, _, outside = decoder.decode_records([records[index] for index in keep])
    prediction = model.predict(feed)
    probabilities = prediction.probabilities
    labels = prediction.labels
    finite = np.asarray(np.isfinite(probabilities).all(axis=1), dtype=bool)
    if not finite.all():
        for position in np.flatnonzero(~finite).tolist():
            index = keep[position]
            problems = _non_finite_problems(decoder, feed, probabilities, position)
            refused.append(RefusedRow(first_row + index, chunk.exact(index), problems))
        refused.sort(key=lambda row: row.row)
        kept = [bool(ok) for ok in finite.tolist()]
        keep = [index for index, ok in zip(keep, kept, strict=True) if ok]
        labels = [label for label, ok in zip(labels, kept, strict=True) if ok]
        probabilities = probabilities[finite]
        outside = None if outside is None else outside[finite]
    return ScoredChunk(
        rows=[first_row + index for index in keep],
        labels=labels,
        probabilities=probabilities,
        refused=refused,
        outside=_count(outside),
    )


def _refused_rows(problems: Sequence[Problem]) -> set[int]:
    """The positions in the batch of the rows `problems` name."""
    rows = set()
    for problem in problems:
        located = _IN_BATCH.match(problem.field)
        if located is None:  # the decoder locates every value problem in a batch
            raise RuntimeError(f"a problem not located in a row: {problem}")
        rows.add(int(located.group(1)))
    return rows


def _refused(decoder: RowDecoder, chunk: Chunk, index: int) -> RefusedRow:
    """Row `index` with its problems as the API names them for the row sent alone."""
    record = chunk.exact(index)
    try:
        decoder.decode_records(record)
    except RequestError as error:
        return RefusedRow(chunk.first_row + index, record, error.problems)
    raise RuntimeError(f"row {chunk.first_row + index} refused in its chunk but not alone")


def _non_finite_problems(
    decoder: RowDecoder, feed: Feed, probabilities: NDArray[np.float32], position: int
) -> list[Problem]:
    """The API's problem for one row whose probabilities are not finite."""
    row_feed = {name: values[position : position + 1] for name, values in feed.items()}
    try:
        decoder.reject_non_finite(
            row_feed, probabilities[position : position + 1], 422, lambda _: "body"
        )
    except RequestError as error:
        return error.problems
    raise RuntimeError("reject_non_finite took a row whose probabilities are not finite")


def _count(outside: Outside) -> int:
    return 0 if outside is None else int(outside.sum())


def _no_probabilities(model: OnnxModel) -> NDArray[np.float32]:
    return np.empty((0, len(model.classes)), dtype=np.float32)


def _empty(model: OnnxModel) -> ScoredChunk:
    return ScoredChunk([], [], _no_probabilities(model))
