"""A scoring run: the model loaded, the table read in chunks, predictions and refused
rows written, and a summary of what was scored with which model and data.

The outputs are written beside their final paths and moved into place only when the run
finishes, so a run that stops (a refused row under the "fail" policy, a bad file) leaves
no partial predictions behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tabml.errors import InputError, PipelineError
from tabml.score.options import ScoreOptions
from tabml.score.reader import read_chunks, table_kind
from tabml.score.rows import RefusedRow, score_chunk
from tabml.score.writer import PredictionWriter, refused_line
from tabml.serve.decode import RowDecoder
from tabml.serve.model import ModelLoadError, OnnxModel

# Refused rows named in the message of a run the "fail" policy stops.
SHOWN_REFUSED = 5


class RefusedRowsError(PipelineError):
    """Rows broke the model's feature schema and the policy is to fail (exit 1)."""


@dataclass(frozen=True)
class ScorePaths:
    input: Path
    output: Path
    model_dir: Path
    refused: Path | None = None  # default: <output stem>.refused.jsonl beside the output
    summary: Path | None = None  # default: <output stem>.summary.json beside the output

    @property
    def refused_path(self) -> Path:
        return self.refused or self.output.with_name(f"{self.output.stem}.refused.jsonl")

    @property
    def summary_path(self) -> Path:
        return self.summary or self.output.with_name(f"{self.output.stem}.summary.json")


def run(paths: ScorePaths, options: ScoreOptions) -> dict[str, Any]:
    """Score `paths.input` with the model in `paths.model_dir`; returns the summary,
    which is also written to `paths.summary_path`."""
    table_kind(paths.output, "--output")
    model = _load(paths.model_dir)
    decoder = RowDecoder(model.features, options.chunk_rows, out_of_range=options.out_of_range)
    numeric = frozenset(decoder.numeric_names)
    names = [feature.name for feature in model.features]
    scored = refused = outside = 0
    with (
        _replaced(paths.output) as predictions_path,
        _replaced(paths.refused_path) as refused_path,
    ):
        writer = PredictionWriter(predictions_path, model.classes, model.version)
        try:
            with refused_path.open("wb") as refused_file:
                for chunk in read_chunks(paths.input, names, numeric, options.chunk_rows):
                    result = score_chunk(model, decoder, chunk)
                    if result.refused:
                        _set_aside(result.refused, options, refused_file)
                    writer.write(result)
                    scored += len(result.rows)
                    refused += len(result.refused)
                    outside += result.outside
        finally:
            writer.close()
    if refused == 0:
        paths.refused_path.unlink()
    summary = {
        "model": {"name": model.name, "version": model.version},
        # The version of the data the model was trained on (metadata.json's lineage).
        "training_data": {"version": model.metadata.data.version},
        "input": {"path": str(paths.input), "sha256": _sha256(paths.input)},
        "predictions": str(paths.output),
        "refused_rows": str(paths.refused_path) if refused else None,
        "rows_scored": scored,
        "rows_refused": refused,
        "values_outside_range": outside,
        "options": options.model_dump(),
        "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    paths.summary_path.parent.mkdir(parents=True, exist_ok=True)
    paths.summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _load(model_dir: Path) -> OnnxModel:
    try:
        return OnnxModel.load(model_dir / "model.onnx", model_dir / "metadata.json")
    except ModelLoadError as error:
        raise InputError(f"--model-dir {str(model_dir)!r}: {error}") from None


def _set_aside(rows: list[RefusedRow], options: ScoreOptions, sink: IO[bytes]) -> None:
    if options.bad_rows == "fail":
        shown = "\n  ".join(row.describe() for row in rows[:SHOWN_REFUSED])
        more = f"\n  and {len(rows) - SHOWN_REFUSED} more rows" if len(rows) > SHOWN_REFUSED else ""
        raise RefusedRowsError(
            f"rows break the model's feature schema (bad_rows: fail; set_aside scores "
            f"the others and writes these aside):\n  {shown}{more}"
        )
    sink.writelines(refused_line(row) for row in rows)


@contextmanager
def _replaced(final: Path) -> Iterator[Path]:
    """A temporary path beside `final`, moved onto it when the block ends without an
    error and removed otherwise."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{final}: cannot create its folder ({error.strerror})") from None
    # The suffix stays last: the writer picks CSV or Parquet by it.
    partial = final.with_name(f".partial.{final.name}")
    try:
        yield partial
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
