"""Batch-scoring benchmark: rows per second and peak memory of `python -m tabml.score`.

Run on demand (never part of the test suite):

    uv run python benchmarks/score.py --sizes 100000,1000000 --chunks 1000,10000

The model is the default one (breast-cancer data, params.yaml as shipped), trained and
exported into a temporary folder by the pipeline's own functions. The tables are the
bundled data replicated to each size (benchmarks/pipeline.py's jittered replicas, all
valid), written as CSV (what the serving image reads) and Parquet. Each (size, format,
chunk size) is scored once by `python -m tabml.score`, the CronJob's command, through
pipeline.py's launcher: wall seconds, CPU seconds and the peak resident set
(`ru_maxrss`) of that process alone.

Results go to score.json (machine, versions, every figure) and score.md in the output
folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline import (
    REPO_ROOT,
    SCHEMA_FILE,
    child_env,
    machine_info,
    measure,
    replicated_frame,
    source_info,
)
from tabml.config import load_params, load_schema
from tabml.onnx_graph import to_onnx
from tabml.parity import check_parity
from tabml.parity_report import build_report
from tabml.stages import export, train
from tabml.stages.ingest import bundled_frame

FORMATS = (".csv", ".parquet")
CSV_FLOAT_FORMAT = "%.10g"


def export_default_model(out: Path) -> str:
    """The default model exported into `out`; returns its version."""
    params = load_params(REPO_ROOT / "params.yaml")
    schema = load_schema(REPO_ROOT / SCHEMA_FILE)
    frame = bundled_frame("breast_cancer")
    pipeline = train.fit(frame, schema, params.train)
    onnx_bytes = to_onnx(
        pipeline, schema, graph_name=params.train.estimator, opset=params.export.target_opset
    )
    tolerance = params.export.parity_tolerance
    parity = check_parity(onnx_bytes, pipeline, frame, schema, tolerance)
    metadata = export.build_metadata(
        onnx_bytes=onnx_bytes,
        schema=schema,
        params=params,
        metrics={},
        parity=build_report(
            parity,
            tolerance=tolerance,
            classes=[str(c) for c in pipeline.classes_],
            graph=onnx_bytes,
        ),
        data_version="benchmark",
        data_rows=len(frame),
        # Every row trained the model: the class mix is the frame's, no test rows out.
        class_ratio=export.training_class_ratio(
            dict(Counter(frame[schema.target.name].astype(str))),
            {},
            schema.target.classes,
        ),
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(onnx_bytes)
    (out / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return str(metadata["model"]["version"])


def write_tables(rows: int, folder: Path) -> dict[str, tuple[Path, float]]:
    """The replicated features at `rows` rows as CSV and Parquet: path and MB of each."""
    schema = load_schema(REPO_ROOT / SCHEMA_FILE)
    frame = replicated_frame(rows, REPO_ROOT / SCHEMA_FILE)[list(schema.features)]
    tables = {}
    for suffix in FORMATS:
        path = folder / f"table_{rows}{suffix}"
        if suffix == ".csv":
            frame.to_csv(path, index=False, lineterminator="\n", float_format=CSV_FLOAT_FORMAT)
        else:
            frame.to_parquet(path, index=False)
        tables[suffix] = (path, round(path.stat().st_size / 1e6, 1))
    return tables


def bench(sizes: list[int], chunks: list[int], work: Path) -> list[dict[str, Any]]:
    model_dir = work / "model"
    export_default_model(model_dir)
    env = child_env()
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    results = []
    for rows in sizes:
        tables = write_tables(rows, work)
        for suffix, (table, megabytes) in tables.items():
            for chunk_rows in chunks:
                output = work / f"predictions_{rows}_{chunk_rows}{suffix}"
                argv = [sys.executable, "-m", "tabml.score", "--input", str(table)]
                argv += ["--output", str(output), "--model-dir", str(model_dir)]
                argv += ["--chunk-rows", str(chunk_rows)]
                measured = measure(argv, work, env)
                summary = json.loads(output.with_name(f"{output.stem}.summary.json").read_text())
                if summary["rows_scored"] != rows:
                    raise RuntimeError(f"scored {summary['rows_scored']} of {rows} rows")
                result = {
                    "rows": rows,
                    "format": suffix[1:],
                    "input_mb": megabytes,
                    "chunk_rows": chunk_rows,
                    "seconds": measured.seconds,
                    "cpu_seconds": measured.cpu_seconds,
                    "rows_per_second": round(rows / measured.seconds),
                    "peak_mb": measured.peak_mb,
                    "load_1m": measured.load_1m,
                }
                print(json.dumps(result), flush=True)
                results.append(result)
                output.unlink()
        for table, _ in tables.values():
            table.unlink()
    return results


def markdown(report: dict[str, Any]) -> str:
    machine, code = report["machine"], report["code"]
    libraries = machine["libraries"]
    lines = [
        "# Batch-scoring benchmark",
        "",
        f"Measured {machine['date']} on {machine['cpu_count']} CPUs, {machine['memory_gib']} GiB "
        f"({machine['platform']}), Python {machine['python']}, onnxruntime "
        f"{libraries['onnxruntime']}, pyarrow {libraries['pyarrow']}; code: {code['source']} "
        f"at {code['revision'][:7]}. Produced by `benchmarks/score.py` in "
        f"{report['seconds']:.0f} s; every figure in `score.json`.",
        "",
        "`python -m tabml.score` (the CronJob's command) with the default model (logistic "
        "regression, 30 numeric features) on the breast-cancer data replicated to each size, "
        "every row valid. Peak MB is the scoring process's largest resident set (`ru_maxrss`), "
        "the Python interpreter, numpy and onnxruntime included. Wall seconds depend on what "
        "else the machine ran (the 1-minute load average at each start is in the table; 2 or "
        "more means the two CPUs were shared), so CPU seconds are given too.",
        "",
        "| rows | format | input MB | chunk rows | wall s (CPU s) | rows/s (per CPU s) "
        "| peak MB | load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for item in report["results"]:
        lines.append(
            f"| {item['rows']:,} | {item['format']} | {item['input_mb']} | "
            f"{item['chunk_rows']:,} | {item['seconds']:.1f} ({item['cpu_seconds']:.1f}) | "
            f"{item['rows_per_second']:,} ({item['rows'] / item['cpu_seconds']:,.0f}) | "
            f"{item['peak_mb']:.0f} | {item['load_1m']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="rows, comma-separated")
    parser.add_argument("--chunks", default="1000,10000", help="chunk sizes, comma-separated")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    chunks = [int(chunk) for chunk in args.chunks.split(",")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tabml-score-bench-") as work:
        results = bench(sizes, chunks, Path(work))
    report = {
        "machine": machine_info(),
        "code": source_info(REPO_ROOT, None),
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "score.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "score.md").write_text(markdown(report), encoding="utf-8")
    print(f"wrote {args.out / 'score.md'} and {args.out / 'score.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
