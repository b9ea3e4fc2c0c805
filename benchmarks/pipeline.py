"""Pipeline benchmarks: cold and no-op `dvc repro`, and how each stage scales with rows.

Run on demand (never part of the test suite):

    uv run python benchmarks/pipeline.py --sizes 569,100000,1000000
    uv run python benchmarks/pipeline.py --sizes 10000000 --repeat 1 --skip-default \
        --skip-repro --keep-sizes   # the 10M point, added to the figures already written

Every measurement runs in a throwaway copy of the repository (the git-tracked files,
committed into a fresh git repository, with an empty DVC cache), never in the work
tree. Three things are measured:

* cold `dvc repro` (fresh copy, empty cache) and no-op `dvc repro` (the second run),
  on the default data with params.yaml as shipped;
* for each size: the bundled breast-cancer data replicated to that many rows and read
  through `data.source: file`; each dvc.yaml stage command run on its own, with its wall
  time and peak resident memory (ru_maxrss of the child from `os.wait4`);
* for each size: a full `dvc repro --force` and a following no-op `dvc repro`, so the
  overhead DVC adds (hashing, caching, lock files) shows next to the bare stage times.

The sources are frozen once per run (the work tree's tracked files, or `--ref REV`), so
edits made while it runs cannot reach some measurements and not others. The copy's
`src/` comes first on PYTHONPATH, so its code runs rather than the editable install's.
Each command runs under a tiny launcher that reports wall time, CPU time and ru_maxrss;
the 1-minute load average at its start is recorded too, as wall time on a busy machine
is not the code's cost alone.

Replicas after the first get a multiplicative jitter of at most 1e-6 per feature value,
clipped to the schema's ranges, so every row stays distinct and valid: the validate
stage keeps its shipped duplicate-row check (`validate.allow_duplicate_rows: false`).

With `--cold-repro REV`, only one thing is measured: cold and no-op `dvc repro` on the
default data, the code of commit REV side by side with the code under test, alternating
between the two in each round so that both see the same load, each in a virtualenv made
from its own uv.lock (`uv sync --locked`, from uv's cache when it holds the wheels); the
medians go into the existing pipeline.json (under `cold_repro`) and pipeline.md.

The data is generated and written a block of replicas at a time (the same numbers as
drawing them all at once), so that making 10M rows needs no more memory than 1M.

Results go to pipeline.json (machine, versions, every figure) and pipeline.md (a table
for docs/benchmarks.md) in the output folder. With --keep-sizes the sizes already in
pipeline.json that this run does not measure are kept, each with its own date and load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tabml import DISTRIBUTION
from tabml.adopt.tools import find_uv
from tabml.config import load_schema
from tabml.stages.ingest import bundled_frame

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (569, 100_000, 1_000_000)
DATASET = "breast_cancer"
SCHEMA_FILE = Path("schemas/breast_cancer.yaml")
JITTER = 1e-6
CSV_FLOAT_FORMAT = "%.10g"  # keeps the jitter (7th significant digit) in the file
LIBRARIES = (
    DISTRIBUTION,
    "dvc",
    "numpy",
    "pandas",
    "pandera",
    "pyarrow",
    "scikit-learn",
    "skl2onnx",
    "onnx",
    "onnxruntime",
)
KIB_PER_MIB = 1024


@dataclass(frozen=True)
class Measurement:
    """One command: wall and CPU seconds, peak RSS (MiB) of its process tree.

    `load_1m` is the machine's 1-minute load average when the command started: other
    work on the machine inflates wall time (CPU seconds much less), so it is recorded.
    """

    seconds: float
    cpu_seconds: float
    peak_mb: float
    load_1m: float


@dataclass
class SizeResult:
    """The fastest of the repeats for each command (in `stages`, `repro`, `noop_repro`),
    and every repeat in `samples`."""

    rows: int
    csv_mb: float
    date: str = ""
    stages: dict[str, Measurement] = field(default_factory=dict)
    stages_total_seconds: float = 0.0
    repro: Measurement | None = None
    noop_repro: Measurement | None = None
    samples: dict[str, list[Measurement]] = field(default_factory=dict)


# --------------------------------------------------------------------------- processes


def child_env() -> dict[str, str]:
    """The environment for every child: this interpreter's bin first, the copy's code."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


# A small launcher runs each measured command. Linux starts a child's ru_maxrss at the
# RSS of the process it was forked from, so forking from this (large) process would put
# a floor of several hundred MB under every figure; the launcher's floor is about 10 MB.
LAUNCHER = """
import json, os, sys, time
log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"seconds": seconds, "cpu": cpu, "maxrss_kib": usage.ru_maxrss, "exit": code}))
"""


def measure(argv: list[str], cwd: Path, env: dict[str, str]) -> Measurement:
    """Run `argv` to completion through the launcher; fail with its output if it fails."""
    load = os.getloadavg()[0]
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, log.name, *argv]
        out = subprocess.run(launcher, cwd=cwd, env=env, check=True, capture_output=True)
        result = json.loads(out.stdout)
        if result["exit"] != 0:
            output = Path(log.name).read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{shlex.join(argv)} exited {result['exit']}:\n{output}")
    return Measurement(
        seconds=round(result["seconds"], 3),
        cpu_seconds=round(result["cpu"], 3),
        peak_mb=round(result["maxrss_kib"] / KIB_PER_MIB, 1),
        load_1m=round(load, 2),
    )


def run_quiet(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)


# --------------------------------------------------------------------------- workspace


def tracked_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True)
    return [name for name in out.stdout.decode().split("\0") if name]


def snapshot(root: Path, ref: str | None, dest: Path) -> Path:
    """Freeze the sources once: the work tree's tracked files, or the tree of commit `ref`.

    Every scenario copies this snapshot, so edits made in `root` while the benchmark
    runs cannot leak into some measurements and not others.
    """
    dest.mkdir(parents=True)
    if ref is not None:
        tar = subprocess.run(["git", "archive", ref], cwd=root, check=True, capture_output=True)
        with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
            archive.extractall(dest, filter="data")
        return dest
    for name in tracked_files(root):
        source = root / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def make_copy(source: Path, dest: Path, env: dict[str, str]) -> Path:
    """Copy the snapshot into `dest`, commit it, point the DVC remote at a temp folder."""
    shutil.copytree(source, dest)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    run_quiet(["git", "init", "-q", "-b", "main"], dest, env)
    run_quiet([*git, "add", "-A"], dest, env)
    run_quiet([*git, "commit", "-q", "-m", "benchmark copy"], dest, env)
    run_quiet(
        ["dvc", "remote", "modify", "--local", "local", "url", str(dest.parent / "remote")],
        dest,
        env,
    )
    return dest


def locked_environment(
    uv: str, source: Path, venv: Path, env: dict[str, str], *, label: str
) -> dict[str, str]:
    """`env` running `source`'s code with the dependencies its own uv.lock pins: a
    virtualenv made by `uv sync --locked` (the project and its dependencies, no dependency
    groups), its bin first on PATH. A dependency change is then measured on the side
    that makes it, not credited to both. Its bytecode is compiled up front, as a used
    environment has it: otherwise each stage would compile what it imports, every run
    where PYTHONDONTWRITEBYTECODE is set. A failed sync stops the run, naming `label`."""
    try:
        run_quiet(
            [
                *(uv, "sync", "--locked", "--no-default-groups", "--compile-bytecode", "--quiet"),
                *("--python", sys.executable),
            ],
            source,
            {**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
        )
    except subprocess.CalledProcessError as error:
        said = (error.stderr or b"").decode(errors="replace").strip().splitlines()
        raise SystemExit(
            f"pipeline.py: {label}: `uv sync --locked` exited {error.returncode}: "
            + (said[-1] if said else "(no message)")
        ) from None
    return {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}


def copy_env(copy: Path, env: dict[str, str]) -> dict[str, str]:
    """Make `tabml` import the copy's source, not the editable install's."""
    return {**env, "PYTHONPATH": str(copy / "src")}


# --------------------------------------------------------------------------- data


# Rows generated and written at a time: the generator's memory stays that of one block.
BLOCK_ROWS = 500_000


def replicated_blocks(rows: int, schema_path: Path, seed: int = 0) -> Iterator[pd.DataFrame]:
    """The bundled data repeated to `rows` rows, in blocks of rows; replicas after the
    first are jittered. The noise is drawn block by block from one generator, so the
    rows are the same whatever the block size."""
    base = bundled_frame(DATASET)
    schema = load_schema(schema_path)
    features = list(schema.numeric_features)
    rng = np.random.default_rng(seed)
    block = max(len(base), BLOCK_ROWS // len(base) * len(base))  # whole replicas
    hashes = []
    for start in range(0, rows, block):
        size = min(block, rows - start)
        reps = -(-size // len(base))
        frame = pd.concat([base] * reps, ignore_index=True).iloc[:size].copy()
        values = frame[features].to_numpy(dtype=np.float64)
        noise = rng.uniform(-JITTER, JITTER, size=values.shape)
        if start == 0:
            noise[: len(base)] = 0.0  # the first replica is the original data, exactly
        jittered = values * (1.0 + noise)
        for i, name in enumerate(features):
            spec = schema.features[name]
            low, high = getattr(spec, "min", None), getattr(spec, "max", None)
            if low is not None or high is not None:
                jittered[:, i] = np.clip(jittered[:, i], low, high)
        frame[features] = jittered
        hashes.append(pd.util.hash_pandas_object(frame, index=False).to_numpy())
        yield frame
    if rows > len(base) and len(np.unique(np.concatenate(hashes))) < rows:
        raise RuntimeError("jittered replicas still contain duplicate rows")


def replicated_frame(rows: int, schema_path: Path, seed: int = 0) -> pd.DataFrame:
    """The bundled data repeated to `rows` rows; replicas after the first are jittered."""
    blocks = list(replicated_blocks(rows, schema_path, seed))
    return pd.concat(blocks, ignore_index=True)


def write_dataset(copy: Path, rows: int) -> tuple[str, float]:
    """Write the replicated data into the copy's data/external; return its path and MB."""
    relative = f"data/external/{DATASET}_{rows}.csv"
    path = copy / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        for i, block in enumerate(replicated_blocks(rows, copy / SCHEMA_FILE)):
            block.to_csv(
                handle,
                index=False,
                header=i == 0,
                lineterminator="\n",
                float_format=CSV_FLOAT_FORMAT,
            )
    return relative, round(path.stat().st_size / 1e6, 1)


def use_file_source(copy: Path, relative: str) -> None:
    params_path = copy / "params.yaml"
    params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    # The data section's other settings (the CSV delimiter) stay: stages declare them.
    params["data"] = {**params["data"], "source": "file", "sklearn_dataset": None, "path": relative}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def stage_commands(copy: Path) -> dict[str, list[str]]:
    """Each stage's exact `cmd` from dvc.yaml, in file order (which is pipeline order)."""
    stages = yaml.safe_load((copy / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: shlex.split(stage["cmd"]) for name, stage in stages.items()}


# --------------------------------------------------------------------------- scenarios


def fastest(samples: list[Measurement]) -> Measurement:
    """The repeat least disturbed by other work on the machine: the lowest wall time."""
    return min(samples, key=lambda m: m.seconds)


def repeated(
    label: str, repeat: int, argv: list[str], cwd: Path, env: dict[str, str]
) -> list[Measurement]:
    samples = []
    for _ in range(repeat):
        samples.append(measure(argv, cwd, env))
        log(f"  {label}: {samples[-1]}")
    return samples


def bench_default_repro(
    source: Path, work: Path, repeat: int, env: dict[str, str]
) -> dict[str, Any]:
    """Cold then no-op `dvc repro`, each repeat in a fresh copy with an empty cache."""
    cold: list[Measurement] = []
    noop: list[Measurement] = []
    for i in range(repeat):
        copy = make_copy(source, work / f"default_{i}" / "repo", env)
        copy_environment = copy_env(copy, env)
        cold += repeated("cold dvc repro", 1, ["dvc", "repro"], copy, copy_environment)
        noop += repeated("no-op dvc repro", 1, ["dvc", "repro"], copy, copy_environment)
        shutil.rmtree(copy.parent)
    return {
        "cold": asdict(fastest(cold)),
        "noop": asdict(fastest(noop)),
        "samples": {"cold": [asdict(m) for m in cold], "noop": [asdict(m) for m in noop]},
    }


def bench_cold_repro(
    sides: dict[str, tuple[Path, dict[str, str]]], work: Path, rounds: int
) -> dict[str, Any]:
    """Cold then no-op `dvc repro` for each side (its sources and environment) in turn,
    `rounds` times; medians.

    Each cold run is a fresh copy with an empty DVC cache, so its run-cache is empty too
    and every stage runs.
    """
    samples: dict[str, dict[str, list[Measurement]]] = {
        side: {"cold": [], "noop": []} for side in sides
    }
    for i in range(rounds):
        for side, (source, env) in sides.items():
            copy = make_copy(source, work / f"cold_{side}_{i}" / "repo", env)
            copy_environment = copy_env(copy, env)
            for kind in ("cold", "noop"):
                samples[side][kind] += repeated(
                    f"{side}, {kind} dvc repro", 1, ["dvc", "repro"], copy, copy_environment
                )
            shutil.rmtree(copy.parent)
    return {
        side: {
            **{f"{kind}_median_seconds": median_seconds(runs) for kind, runs in kinds.items()},
            **{
                f"{kind}_median_cpu_seconds": round(
                    statistics.median(m.cpu_seconds for m in runs), 3
                )
                for kind, runs in kinds.items()
            },
            "samples": {kind: [asdict(m) for m in runs] for kind, runs in kinds.items()},
        }
        for side, kinds in samples.items()
    }


def median_seconds(runs: list[Measurement]) -> float:
    return round(statistics.median(m.seconds for m in runs), 3)


def bench_size(
    source: Path,
    work: Path,
    rows: int,
    repeat: int,
    env: dict[str, str],
    *,
    repro: bool,
    skip_stages: frozenset[str] = frozenset(),
) -> SizeResult:
    copy = make_copy(source, work / f"rows_{rows}" / "repo", env)
    env = copy_env(copy, env)
    relative, csv_mb = write_dataset(copy, rows)
    use_file_source(copy, relative)
    result = SizeResult(
        rows=rows, csv_mb=csv_mb, date=dt.datetime.now(dt.UTC).isoformat("T", "seconds")
    )
    for stage, argv in stage_commands(copy).items():
        if stage in skip_stages:
            continue
        result.samples[stage] = repeated(f"{rows} rows, {stage}", repeat, argv, copy, env)
        result.stages[stage] = fastest(result.samples[stage])
    result.stages_total_seconds = round(sum(m.seconds for m in result.stages.values()), 3)
    log(f"{rows} rows, per stage (fastest run):")
    for stage, m in result.stages.items():
        log(
            f"  {stage:<11} wall {m.seconds:8.2f} s  CPU {m.cpu_seconds:8.2f} s  "
            f"peak {m.peak_mb:7.0f} MB  (load {m.load_1m:.2f})"
        )
    if not repro:
        shutil.rmtree(copy.parent)
        return result
    force = ["dvc", "repro", "--force"]
    result.samples["repro"] = repeated(f"{rows} rows, dvc repro --force", repeat, force, copy, env)
    result.repro = fastest(result.samples["repro"])
    noop = ["dvc", "repro"]
    result.samples["noop_repro"] = repeated(f"{rows} rows, no-op", repeat, noop, copy, env)
    result.noop_repro = fastest(result.samples["noop_repro"])
    shutil.rmtree(copy.parent)
    return result


# --------------------------------------------------------------------------- reports


def git_output(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def source_info(root: Path, ref: str | None) -> dict[str, Any]:
    """Which code was measured: a commit, or the work tree and the files it had changed."""
    if ref is not None:
        return {"source": f"git archive {ref}", "revision": git_output(root, "rev-parse", ref)}
    changed = git_output(root, "diff", "--name-only", "HEAD")
    return {
        "source": "work tree (tracked files)",
        "revision": git_output(root, "rev-parse", "HEAD"),
        "changed_files": changed.splitlines(),
    }


def machine_info() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "python": platform.python_version(),
        "libraries": {name: version(name) for name in LIBRARIES},
    }


def markdown(report: dict[str, Any]) -> str:
    machine, code = report["machine"], report["code"]
    lines = [
        "# Pipeline benchmark",
        "",
        f"Measured {machine['date']} on {machine['cpu_count']} CPUs, {machine['memory_gib']} GiB "
        f"({machine['platform']}), Python {machine['python']}, "
        f"dvc {machine['libraries']['dvc']}, pandas {machine['libraries']['pandas']}, "
        f"scikit-learn {machine['libraries']['scikit-learn']}; code: {code['source']} "
        f"at {code['revision'][:7]}; estimator `{report['estimator']}`. "
        f"Produced by `benchmarks/pipeline.py` in {report.get('benchmark_seconds', 0):.0f} s; "
        "every figure in `pipeline.json`.",
        "",
        f"Each command ran {repeat_counts(report)}; the tables show the fastest run "
        "(the least disturbed by other work on the machine), the JSON every run. "
        "Peak MB is the largest resident set of the command's process tree (`ru_maxrss`; "
        "for `dvc repro` that includes the stage processes it starts). Wall seconds depend "
        "on what else the machine runs: the 1-minute load average at the start of the "
        f"measured commands ranged {load_range(report)} (2 or more means the CPUs were "
        "shared), so CPU seconds are given next to wall seconds.",
        "",
        *default_repro_table(report["default_repro"]),
        "",
        "Scaling: the bundled breast-cancer data replicated to each size, written as a CSV "
        f"file and read with `data.source: file`; {report['duplicate_rows']}. Each stage "
        "column is that stage's dvc.yaml command run alone. `dvc repro` "
        "is a separate full run (`--force`); its difference to the stage sum is DVC's own "
        "cost (hashing, caching, lock file). No-op is the `dvc repro` after it.",
        "",
        *scaling_table(report["sizes"]),
        *cold_repro_table(report.get("cold_repro")),
        *partial_runs_table(report.get("partial_runs", [])),
    ]
    return "\n".join(lines) + "\n"


def repeat_counts(report: dict[str, Any]) -> str:
    """How many times the commands ran: a size kept from an earlier run (`--keep-sizes`)
    may have run another number of times than this run's `--repeat`."""
    runs = {
        f"the {size['rows']:,}-row commands": max(map(len, size["samples"].values()))
        for size in report["sizes"]
        if size.get("samples")
    }
    default = report.get("default_repro", {}).get("samples", {}).get("cold")
    if default:
        runs["the default data's `dvc repro`"] = len(default)
    if not runs:
        return f"{report.get('repeat', 1)} time(s)"
    usual = Counter(runs.values()).most_common(1)[0][0]
    others = [f"{what}: {count}" for what, count in runs.items() if count != usual]
    return f"{usual} time(s)" + (f" ({'; '.join(others)})" if others else "")


def cold_repro_table(comparison: dict[str, Any] | None) -> list[str]:
    if not comparison:
        return []
    sides = comparison["sides"]
    lines = [
        "",
        f"Cold and no-op `dvc repro` on the default data, before and after "
        f"({comparison['date']}): each round ran both code versions in turn, each in a "
        f"fresh copy with an empty cache (so an empty run-cache: every stage runs), "
        f"each with the dependencies of its own uv.lock{_own_locks(comparison)}, "
        f"{comparison['rounds']} rounds; the 1-minute load average ranged "
        f"{comparison['load_range']}. Medians of wall seconds (CPU seconds):",
        "",
        "| code | cold `dvc repro` | no-op `dvc repro` |",
        "|---|---:|---:|",
    ]
    for label, result in sides.items():
        lines.append(
            f"| {label} | {result['cold_median_seconds']:.2f} "
            f"({result['cold_median_cpu_seconds']:.2f}) | {result['noop_median_seconds']:.2f} "
            f"({result['noop_median_cpu_seconds']:.2f}) |"
        )
    return lines


def _own_locks(comparison: dict[str, Any]) -> str:
    # Comparisons made before each side had its own virtualenv ran both in one.
    return "" if comparison.get("own_locks") else " (not so here: both ran in one virtualenv)"


def load_range(report: dict[str, Any]) -> str:
    measured = [m for runs in report["default_repro"].get("samples", {}).values() for m in runs]
    for size in report["sizes"]:
        measured += [m for runs in size.get("samples", {}).values() for m in runs]
    loads = [m["load_1m"] for m in measured if "load_1m" in m]
    return f"{min(loads):.2f} to {max(loads):.2f}" if loads else "(not recorded)"


def cell(m: dict[str, float] | None, memory: bool = True) -> str:
    """Wall seconds, CPU seconds in brackets, then peak MB; "not run" for a run skipped."""
    if m is None:
        return "not run"
    text = f"{m['seconds']:.2f} ({m.get('cpu_seconds', float('nan')):.2f})"
    return f"{text} / {m['peak_mb']:.0f}" if memory else text


def default_repro_table(default: dict[str, Any]) -> list[str]:
    if not default:
        return []
    lines = [
        "Default data (569 rows, params.yaml as shipped):",
        "",
        "| `dvc repro` | wall s (CPU s) / peak MB |",
        "|---|---:|",
    ]
    for name, label in (("cold", "cold (fresh copy, empty cache)"), ("noop", "no-op (rerun)")):
        if name in default:
            lines.append(f"| {label} | {cell(default[name])} |")
    return lines


def scaling_table(sizes: list[dict[str, Any]]) -> list[str]:
    # Every stage any size measured, in pipeline order; a size that skipped one says so.
    stages = list(dict.fromkeys(stage for size in sizes for stage in size["stages"]))
    header = " | ".join(stages)
    lines = [
        "Cells: wall s (CPU s) / peak MB.",
        "",
        f"| rows | CSV MB | {header} | stage sum | `dvc repro --force` | no-op `dvc repro` "
        "| measured |",
        "|---:|---:|" + "---:|" * (len(stages) + 3) + "---|",
    ]
    for size in sizes:
        measured = list(size["stages"].values())
        total = {
            "seconds": sum(m["seconds"] for m in measured),
            "cpu_seconds": sum(m.get("cpu_seconds", float("nan")) for m in measured),
        }
        cells = " | ".join(cell(size["stages"].get(stage)) for stage in stages)
        lines.append(
            f"| {size['rows']:,} | {size['csv_mb']:.1f} | {cells} | {cell(total, memory=False)} "
            f"| {cell(size['repro'])} | {cell(size['noop_repro'])} | {size.get('date', '')[:10]} |"
        )
    return lines


def partial_runs_table(runs: list[dict[str, Any]]) -> list[str]:
    """Stages measured outside a full run (`partial_runs` in pipeline.json: a title, how
    they were run, and a measurement per stage), each as a table of its own."""
    lines: list[str] = []
    for run in runs:
        lines += [
            "",
            f"{run['title']} ({run['date'][:10]}): {run['description']}",
            "",
            "| stage | wall s (CPU s) / peak MB | load |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {stage} | {cell(m)} | {m.get('load_1m') or 'not recorded'} |"
            for stage, m in run["stages"].items()
        ]
    return lines


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_reports(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "pipeline.json", json.dumps(report, indent=2) + "\n")
    write_atomic(out / "pipeline.md", markdown(report))


# --------------------------------------------------------------------------- main


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--sizes takes positive row counts, e.g. 569,100000")
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="row counts, comma-separated"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "benchmarks" / "results",
        help="folder for pipeline.json and pipeline.md",
    )
    parser.add_argument(
        "--repo", type=Path, default=REPO_ROOT, help="repository whose code is benchmarked"
    )
    parser.add_argument(
        "--ref",
        default=None,
        help="benchmark this commit (git archive) instead of the work tree's tracked files",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each command; tables show the fastest, the JSON every run",
    )
    parser.add_argument(
        "--skip-default", action="store_true", help="skip cold / no-op repro on the default data"
    )
    parser.add_argument(
        "--cold-repro",
        metavar="REV",
        default=None,
        help="only compare cold and no-op dvc repro of commit REV's code with this code, "
        "alternating, --repeat rounds; merged into the existing pipeline.json",
    )
    parser.add_argument(
        "--skip-repro",
        action="store_true",
        help="per size, run the stages alone but not `dvc repro --force` and no-op",
    )
    parser.add_argument(
        "--skip-stage",
        action="append",
        default=[],
        metavar="STAGE",
        help="a stage no other stage needs (model_card) not to measure; repeatable",
    )
    parser.add_argument(
        "--keep-sizes",
        action="store_true",
        help="keep the sizes in the existing pipeline.json that this run does not measure",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only rewrite pipeline.md from an existing pipeline.json",
    )
    return parser.parse_args(argv)


def run_benchmarks(args: argparse.Namespace, source: Path, work: Path) -> dict[str, Any]:
    params = yaml.safe_load((source / "params.yaml").read_text(encoding="utf-8"))
    report: dict[str, Any] = {
        "machine": machine_info(),
        "code": source_info(args.repo, args.ref),
        "estimator": params["train"]["estimator"],
        "duplicate_rows": f"replicas after the first jittered by at most {JITTER:g} "
        "(relative, clipped to the schema ranges), `validate.allow_duplicate_rows` left false",
        "repeat": args.repeat,
        "default_repro": {},
        "sizes": [],
    }
    carry_cold_repro(report, args.out / "pipeline.json")
    env = child_env()
    earlier = previous_report(args.out) if args.keep_sizes else {}
    if not args.skip_default:
        log("cold and no-op dvc repro on the default data")
        report["default_repro"] = bench_default_repro(source, work, args.repeat, env)
    else:
        report["default_repro"] = earlier.get("default_repro", {})
    # Measured by hand, not by this script: carried over whatever this run measures.
    report["partial_runs"] = previous_report(args.out).get("partial_runs", [])
    kept = [size for size in earlier.get("sizes", []) if size["rows"] not in args.sizes]
    measured: list[dict[str, Any]] = []
    for rows in args.sizes:
        log(f"{rows} rows")
        result = bench_size(
            source,
            work,
            rows,
            args.repeat,
            env,
            repro=not args.skip_repro,
            skip_stages=frozenset(args.skip_stage),
        )
        measured.append(asdict(result))
        report["sizes"] = sorted(kept + measured, key=lambda size: size["rows"])
        write_reports(report, args.out)  # keep what is done if a later size fails
    return report


def run_cold_repro(args: argparse.Namespace, existing: Path) -> None:
    """The before/after comparison, merged into the report `existing` in args.out."""
    uv = find_uv()
    if uv is None:
        raise SystemExit("pipeline.py: --cold-repro needs uv ($UV or PATH; make setup installs it)")
    report = json.loads(existing.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="tabml-bench-") as tmp:
        work = Path(tmp)
        before = snapshot(args.repo, args.cold_repro, work / "before")
        after = snapshot(args.repo, args.ref, work / "after")
        code = source_info(args.repo, args.ref)
        base = git_output(args.repo, "rev-parse", "--short", args.cold_repro)
        labels = {
            "before": f"before: {args.cold_repro}"
            + ("" if base.startswith(args.cold_repro) else f" ({base})"),
            "after": f"after: {code['source']} at {code['revision'][:7]}",
        }
        sides = {}
        for side, source in (("before", before), ("after", after)):
            log(f"{side}: uv sync --locked into a virtualenv of its own")
            environment = locked_environment(
                uv, source, work / f"venv_{side}", child_env(), label=labels[side]
            )
            sides[side] = (source, environment)
        log(f"cold dvc repro, {labels['before']} and {labels['after']}")
        results = bench_cold_repro(sides, work, args.repeat)
    loads = [
        m["load_1m"] for side in results.values() for runs in side["samples"].values() for m in runs
    ]
    report["cold_repro"] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rounds": args.repeat,
        "load_range": f"{min(loads):.2f} to {max(loads):.2f}",
        "own_locks": True,  # each side ran in a virtualenv made from its own uv.lock
        "sides": {labels[side]: result for side, result in results.items()},
    }
    write_reports(report, args.out)


def carry_cold_repro(report: dict[str, Any], previous_path: Path) -> None:
    """Keep the last --cold-repro comparison (dated, naming both commits) in a new report:
    a full run does not measure it."""
    if previous_path.is_file():
        previous = json.loads(previous_path.read_text(encoding="utf-8"))
        if "cold_repro" in previous:
            report["cold_repro"] = previous["cold_repro"]


def previous_report(out: Path) -> dict[str, Any]:
    """The figures already written to `out`; sizes measured before sizes had a date get
    the date of the run that measured them."""
    path = out / "pipeline.json"
    if not path.is_file():
        return {}
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for size in report.get("sizes", []):
        size.setdefault("date", report["machine"]["date"])
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    existing = args.out / "pipeline.json"
    if (args.cold_repro is not None or args.render_only) and not existing.is_file():
        option = "--cold-repro" if args.cold_repro is not None else "--render-only"
        print(
            f"pipeline.py: {option} works on an existing report, and {existing} is not a "
            f"file: run the benchmark with --out {args.out} first",
            file=sys.stderr,
        )
        return 2
    if args.cold_repro is not None:
        run_cold_repro(args, existing)
        log(f"wrote {args.out / 'pipeline.json'} and {args.out / 'pipeline.md'}")
        return 0
    if args.render_only:
        report = json.loads(existing.read_text(encoding="utf-8"))
        write_atomic(args.out / "pipeline.md", markdown(report))
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tabml-bench-") as tmp:
        work = Path(tmp)
        source = snapshot(args.repo, args.ref, work / "source")
        report = run_benchmarks(args, source, work)
    report["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    write_reports(report, args.out)
    log(f"wrote {args.out / 'pipeline.json'} and {args.out / 'pipeline.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
