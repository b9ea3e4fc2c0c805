"""Prediction log: sampled JSON lines that `tabml drift` reads back."""

from __future__ import annotations

import io
import json
import logging
import os
import select
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pytest

from tabml.config import load_schema
from tabml.contract import NUMERIC_INPUT
from tabml.monitor.sample import read_sample
from tabml.serve.prediction_log import GROUP_ROWS, STDOUT, PredictionLog, open_sink

CLASSES = ["benign", "malignant"]
NUMERIC = ["size", "weight"]
CATEGORICAL = ["colour"]


def proba_of(rows: int) -> np.ndarray:
    return np.full((rows, 2), 0.5, np.float32)


def feed_of(rows: int) -> dict[str, np.ndarray]:
    """The model's input: numeric features as the columns of one array, categoricals apart."""
    return {
        NUMERIC_INPUT: np.column_stack(
            [np.arange(rows, dtype=np.float32), np.full(rows, 2.5, np.float32)]
        ),
        "colour": np.array(["red"] * rows, dtype=object).reshape(-1, 1),
    }


def test_every_row_at_rate_one(tmp_path: Path) -> None:
    sink = io.BytesIO()
    log = PredictionLog(sink, 1.0, "v1", CLASSES, NUMERIC, CATEGORICAL)
    proba = np.array([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]], dtype=np.float32)
    feed = feed_of(3)
    feed[NUMERIC_INPUT][1, 0] = np.nan
    assert log.record(feed, ["malignant", "benign", "benign"], proba) == 3
    assert sink.getvalue() == b""  # lines are built when the log is flushed
    assert log.flush() == 3
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [line["prediction"]["label"] for line in lines] == ["malignant", "benign", "benign"]
    assert lines[0]["features"] == {"size": 0.0, "weight": 2.5, "colour": "red"}
    assert lines[1]["features"]["size"] is None  # a missing number is logged as null
    assert lines[0]["prediction"]["probabilities"] == {"benign": 0.25, "malignant": 0.75}
    assert lines[0]["model_version"] == "v1"
    assert lines[0]["timestamp"].endswith("+00:00")


def test_lines_are_json_whatever_the_names_and_values_hold() -> None:
    """Keys are encoded once into a template; names with quotes, percent signs or
    non-ASCII, and labels outside the class list, must still give valid JSON lines."""
    sink = io.BytesIO()
    names = ['50% "odd" name', "größe"]
    log = PredictionLog(sink, 1.0, 'v"1', ["a%s", "b"], names, ['colour "x"'])
    feed = {
        NUMERIC_INPUT: np.array([[1.5, np.nan], [-2.0, 3.25e-7]], dtype=np.float32),
        'colour "x"': np.array(['red, "dark"', "%s"], dtype=object).reshape(-1, 1),
    }
    proba = np.array([[0.5, 0.5], [0.125, 0.875]], dtype=np.float32)
    assert log.record(feed, ["a%s", "unlisted"], proba) == 2
    log.flush()
    first, second = (json.loads(line) for line in sink.getvalue().splitlines())
    assert first["features"] == {names[0]: 1.5, names[1]: None, 'colour "x"': 'red, "dark"'}
    assert second["features"] == {names[0]: -2.0, names[1]: 3.25e-7, 'colour "x"': "%s"}
    assert first["model_version"] == 'v"1'
    assert first["prediction"] == {"label": "a%s", "probabilities": {"a%s": 0.5, "b": 0.5}}
    assert second["prediction"]["label"] == "unlisted"
    assert second["prediction"]["probabilities"] == {"a%s": 0.125, "b": 0.875}


def test_a_model_without_numeric_features() -> None:
    sink = io.BytesIO()
    log = PredictionLog(sink, 1.0, "v1", CLASSES, [], CATEGORICAL)
    feed = {"colour": np.array(["red", "blue"], dtype=object).reshape(-1, 1)}
    log.record(feed, ["benign", "malignant"], np.full((2, 2), 0.5, np.float32))
    log.flush()
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [line["features"] for line in lines] == [{"colour": "red"}, {"colour": "blue"}]
    bare = PredictionLog(sink := io.BytesIO(), 1.0, "v1", [], [])
    bare.record({}, ["?"], np.empty((1, 0), np.float32))
    bare.flush()
    assert json.loads(sink.getvalue()) == {
        "timestamp": json.loads(sink.getvalue())["timestamp"],
        "model_version": "v1",
        "features": {},
        "prediction": {"label": "?", "probabilities": {}},
    }


def test_rows_with_values_outside_their_ranges_name_those_features() -> None:
    sink = io.BytesIO()
    log = PredictionLog(sink, 1.0, "v1", CLASSES, NUMERIC, CATEGORICAL, max_pending_rows=10_000)
    log.record(feed_of(1), ["benign"], proba_of(1), outside=np.array([[False, True]]))
    rows = GROUP_ROWS + 5  # marks in both groups of lines
    outside = np.zeros((rows, 2), dtype=bool)
    outside[3] = True
    outside[GROUP_ROWS, 0] = True
    log.record(feed_of(rows), ["benign"] * rows, proba_of(rows), outside=outside)
    log.record(feed_of(1), ["benign"], proba_of(1))
    log.flush()
    log.record(feed_of(1), ["benign"], proba_of(1))  # the marks went with the last flush
    log.flush()
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert len(lines) == rows + 3
    marked = {index: line["out_of_range"] for index, line in enumerate(lines) if len(line) == 5}
    assert marked == {0: ["weight"], 4: ["size", "weight"], GROUP_ROWS + 1: ["size"]}
    assert list(lines[0]) == [
        "timestamp",
        "model_version",
        "features",
        "prediction",
        "out_of_range",
    ]


def test_sampled_rows_keep_their_own_marks() -> None:
    sink = io.BytesIO()
    log = PredictionLog(sink, 0.5, "v1", CLASSES, NUMERIC, CATEGORICAL, seed=3)
    rows = 200
    outside = np.zeros((rows, 2), dtype=bool)
    outside[::2, 1] = True  # the rows whose size (their index) is even
    assert 0 < log.record(feed_of(rows), ["benign"] * rows, proba_of(rows), outside=outside) < rows
    log.flush()
    for line in map(json.loads, sink.getvalue().splitlines()):
        even = line["features"]["size"] % 2 == 0
        assert line.get("out_of_range") == (["weight"] if even else None)


def test_sampling_rate_is_honoured_and_seeded() -> None:
    def logged(seed: int) -> int:
        log = PredictionLog(io.BytesIO(), 0.1, "v1", CLASSES, NUMERIC, CATEGORICAL, seed=seed)
        proba = np.tile(np.array([[0.5, 0.5]], dtype=np.float32), (10_000, 1))
        return log.record(feed_of(10_000), ["benign"] * 10_000, proba)

    assert logged(1) == logged(1)
    assert 850 < logged(2) < 1150

    def logged_one_by_one(seed: int) -> int:
        log = PredictionLog(io.BytesIO(), 0.1, "v1", CLASSES, NUMERIC, CATEGORICAL, seed=seed)
        proba = np.array([[0.5, 0.5]], dtype=np.float32)
        return sum(log.record(feed_of(1), ["benign"], proba) for _ in range(10_000))

    assert logged_one_by_one(1) == logged_one_by_one(1)
    assert 850 < logged_one_by_one(2) < 1150
    off = PredictionLog(io.BytesIO(), 0.0, "v1", CLASSES, NUMERIC, CATEGORICAL)
    assert off.record(feed_of(5), ["benign"] * 5, np.zeros((5, 2), np.float32)) == 0
    with pytest.raises(ValueError, match=r"sample_rate = 1\.5: must be between 0 and 1"):
        PredictionLog(io.BytesIO(), 1.5, "v1", CLASSES, NUMERIC, CATEGORICAL)


def test_drift_reads_the_log_back(tmp_path: Path, repo_root: Path) -> None:
    schema = load_schema(repo_root / "schemas/breast_cancer.yaml")
    rng = np.random.default_rng(0)
    names = list(schema.features)
    feed = {NUMERIC_INPUT: rng.uniform(1, 2, (40, len(names))).astype(np.float32)}
    path = tmp_path / "predictions.jsonl"
    with path.open("wb") as sink:
        log = PredictionLog(sink, 1.0, "v1", CLASSES, names)
        log.record(feed, ["benign"] * 40, np.full((40, 2), 0.5, np.float32))
        log.close()
    sample = read_sample(path, schema.target.name)
    assert list(sample.features.columns) == list(schema.features)
    assert len(sample.features) == 40
    assert sample.predictions is not None
    assert set(sample.predictions) == {"benign"}


def test_rows_keep_the_time_they_were_predicted_not_the_time_of_the_flush(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = io.BytesIO()
    log = PredictionLog(sink, 1.0, "v1", CLASSES, NUMERIC, CATEGORICAL)
    proba = np.array([[0.5, 0.5]], dtype=np.float32)
    clock = iter([1_700_000_000.0, 1_700_000_000.9996, 1_700_000_061.25])
    monkeypatch.setattr("tabml.serve.prediction_log.time.time", lambda: next(clock))
    for _ in range(3):
        log.record(feed_of(1), ["benign"], proba)
    log.flush()
    stamps = [json.loads(line)["timestamp"] for line in sink.getvalue().splitlines()]
    assert stamps == [
        "2023-11-14T22:13:20.000+00:00",
        "2023-11-14T22:13:20.999+00:00",
        "2023-11-14T22:14:21.250+00:00",
    ]
    assert {datetime.fromisoformat(stamp).tzinfo for stamp in stamps} == {UTC}


def test_lines_keep_request_order_across_groups_and_full_buffers() -> None:
    """Rows wait until `max_pending_rows` are pending and are built into lines a group
    at a time; the log keeps request order whatever the sizes, including a batch larger
    than a group or than the limit, and a feed whose entries come in another order."""
    sink = io.BytesIO()
    log = PredictionLog(sink, 1.0, "v1", CLASSES, NUMERIC, CATEGORICAL, max_pending_rows=300)
    sizes = [1, 3, GROUP_ROWS + 7, 1, 700, 2]
    first = 0
    for index, rows in enumerate(sizes):
        feed = feed_of(rows)
        feed[NUMERIC_INPUT][:, 0] += first
        feed["colour"][:, 0] = [f"c{row}" for row in range(first, first + rows)]
        if index == 3:
            feed = {"colour": feed["colour"], NUMERIC_INPUT: feed[NUMERIC_INPUT]}
        log.record(feed, [f"l{row}" for row in range(first, first + rows)], proba_of(rows))
        first += rows
    pending = log.pending_rows
    assert 0 < pending < 300
    assert log.flush() == pending
    assert (log.written_rows, log.pending_rows) == (first, 0)
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [line["features"]["size"] for line in lines] == list(map(float, range(first)))
    assert [line["features"]["colour"] for line in lines] == [f"c{row}" for row in range(first)]
    assert [line["prediction"]["label"] for line in lines] == [f"l{row}" for row in range(first)]
    assert log.flush() == 0


def test_the_request_that_brings_the_pending_rows_to_the_limit_flushes_them() -> None:
    sink = io.BytesIO()
    log = PredictionLog(sink, 1.0, "v1", CLASSES, NUMERIC, CATEGORICAL, max_pending_rows=5)
    log.record(feed_of(2), ["benign"] * 2, proba_of(2))
    log.record(feed_of(2), ["benign"] * 2, proba_of(2))
    assert (sink.getvalue(), log.pending_rows) == (b"", 4)
    log.record(feed_of(2), ["benign"] * 2, proba_of(2))
    assert (len(sink.getvalue().splitlines()), log.pending_rows) == (6, 0)
    for _ in range(4):
        log.record(feed_of(1), ["benign"], proba_of(1))
    assert log.pending_rows == 4
    log.record(feed_of(1), ["benign"], proba_of(1))
    assert (len(sink.getvalue().splitlines()), log.pending_rows) == (11, 0)
    with pytest.raises(ValueError, match="max_pending_rows = 0: must be at least 1"):
        PredictionLog(sink, 1.0, "v1", CLASSES, NUMERIC, max_pending_rows=0)


class Pipe(io.RawIOBase):
    """A sink that records each write call and takes at most `take` bytes of each."""

    def __init__(self, take: int | None = None, fail_after: int | None = None) -> None:
        self.calls: list[bytes] = []
        self.take = take
        self.fail_after = fail_after

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise OSError(28, "No space left on device")
        taken = bytes(data)[: self.take]
        self.calls.append(taken)
        return len(taken)


def test_a_pipe_gets_whole_lines_in_writes_it_keeps_whole() -> None:
    """Writes of at most PIPE_BUF bytes reach a pipe unbroken by other writers (other
    server workers); longer writes may interleave with theirs mid-line."""
    pipe = Pipe()
    log = PredictionLog(
        cast("BinaryIO", pipe), 1.0, "v1", CLASSES, NUMERIC, CATEGORICAL, chunk_bytes=300
    )
    log.record(feed_of(10), ["benign"] * 10, np.full((10, 2), 0.5, np.float32))
    long_name = {"colour": np.array([["x" * 400]], dtype=object)}
    log.record({**feed_of(1), **long_name}, ["benign"], np.full((1, 2), 0.5, np.float32))
    log.flush()
    assert len(pipe.calls) > 2
    assert all(call.endswith(b"\n") for call in pipe.calls)
    assert all(len(call) <= 300 for call in pipe.calls[:-1])
    assert len(pipe.calls[-1]) > 400  # a line longer than a chunk goes alone
    lines = [json.loads(line) for call in pipe.calls for line in call.splitlines()]
    assert [line["features"]["size"] for line in lines] == [*map(float, range(10)), 0.0]


def test_a_short_write_is_continued() -> None:
    pipe = Pipe(take=7)
    log = PredictionLog(cast("BinaryIO", pipe), 1.0, "v1", CLASSES, NUMERIC, CATEGORICAL)
    log.record(feed_of(3), ["benign"] * 3, np.full((3, 2), 0.5, np.float32))
    assert log.flush() == 3
    assert all(len(call) <= 7 for call in pipe.calls)
    assert len(b"".join(pipe.calls).splitlines()) == 3


def test_a_failed_write_is_logged_and_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    pipe = Pipe(fail_after=1)
    log = PredictionLog(
        cast("BinaryIO", pipe), 1.0, "v1", CLASSES, NUMERIC, CATEGORICAL, chunk_bytes=200
    )
    log.record(feed_of(4), ["benign"] * 4, np.full((4, 2), 0.5, np.float32))
    with caplog.at_level(logging.ERROR, logger="tabml.serve"):
        written = log.flush()
    assert written == len(pipe.calls[0].splitlines()) >= 1
    assert (log.written_rows, log.dropped_rows) == (written, 4 - written)
    assert f"prediction log: {4 - written} rows not written: [Errno 28]" in caplog.text


def test_a_full_non_blocking_pipe_drops_rows_instead_of_counting_them_written() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    # File descriptors, not paths: open() is the way to wrap them.
    reader = open(read_end, "rb")  # noqa: PTH123, SIM115
    with reader, open(write_end, "wb", buffering=0) as sink:  # noqa: PTH123
        log = PredictionLog(sink, 1.0, "v1", CLASSES, NUMERIC, CATEGORICAL, max_pending_rows=5000)
        log.record(feed_of(4000), ["benign"] * 4000, proba_of(4000))  # more than a pipe holds
        written = log.flush()
        sink.close()
        assert 0 < written < 4000
        assert (log.written_rows, log.dropped_rows) == (written, 4000 - written)
        assert len(reader.read().splitlines()) >= written


def test_sinks_for_a_file_a_pipe_and_standard_output(tmp_path: Path) -> None:
    sink, chunk = open_sink(str(tmp_path / "new" / "predictions.jsonl"))
    with sink:
        assert chunk is None  # an appended file takes each write whole
        assert sink.write(b"x\n") == 2
    assert (tmp_path / "new" / "predictions.jsonl").read_bytes() == b"x\n"
    read_end, write_end = os.pipe()
    saved = os.dup(1)
    try:
        os.dup2(write_end, 1)
        sink, chunk = open_sink(STDOUT)
        assert chunk == select.PIPE_BUF
        assert sink.fileno() == 1
        sink.write(b"y\n")
        sink.close()
        os.fstat(1)  # closing the sink leaves standard output open
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(write_end)
    assert os.read(read_end, 10) == b"y\n"
    os.close(read_end)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):  # the server reports it as a failed startup
        open_sink(str(tmp_path / "file" / "predictions.jsonl"))
