"""Serving benchmark: tabml's API vs MLServer, FastAPI + scikit-learn, a bare ASGI ceiling.

Every server runs pinned to one core (taskset) and wrk, on loopback, to the other, in
one run, so the figures compare as ratios; each load figure is the median of several
runs taken in rounds that visit every server in turn, so the machine's drift over the
minutes of the run lands on all servers alike. It measures, per server: peak requests per
second with p50/p99 latency for single rows and 1,000-row batches, RSS after load and
cold start (process start to ready); for tabml also p99 at half its peak rate, a
60-second soak at 80% of peak (errors, RSS growth), what the prediction log costs (servers
with it on and off loaded side by side, at the default sample rate, every tenth row and
every row) and, when podman is
set up as the container test leaves it, the image size and container start to ready.

Needs: wrk and taskset (Debian: wrk, util-linux), a model in models/ (`make repro`),
and two throwaway venvs for the baselines, created on first use under /tmp (not in
uv.lock): MLServer with mlserver-sklearn (uvloop<0.22: MLServer 1.7 fails to start on
newer uvloop), and FastAPI with scikit-learn at the lock file's version.

    uv run python benchmarks/serve.py            # about 20 minutes
    uv run python benchmarks/serve.py --quick    # shorter runs, for trying it out

Figures go to benchmarks/results/serve.json and serve.md. This file holds what is
measured (servers, requests, tables); benchmarks/serve_harness.py how (starting and
stopping servers, ports, wrk, timing, the results files).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path
from typing import Any

from serve_harness import (
    LOAD_CORE,
    PICKED_BY_THE_SYSTEM,
    ROOT,
    SERVER_CORE,
    Server,
    cold_starts,
    cpu_model,
    ensure_venv,
    held_rates,
    interleaved_loads,
    percent_below,
    port_in_log,
    read_results,
    rss_mib,
    running,
    side_by_side,
    soak,
    unused_port,
    venv_version,
    wait_ready,
    write_results,
)
from tabml.serve.settings import Settings

APPS = ROOT / "benchmarks" / "serve_apps"
MODELS = ROOT / "models"
MLSERVER_VENV = Path("/tmp/tabml-bench-mlserver")
FASTAPI_VENV = Path("/tmp/tabml-bench-fastapi")
PODMAN_ROOT = Path(os.environ.get("TABML_TEST_CACHE", Path.home() / ".cache" / "tabml-test"))
PODMAN_ROOT = PODMAN_ROOT / "podman"
BASE_IMAGE = "localhost/tabml-python-base:bookworm"
BATCH_ROWS = 1000
# The prediction log's rates under test: the serving default, every tenth row and every
# row.
DEFAULT_LOG_RATE = Settings.model_fields["prediction_log_sample_rate"].default
LOG_RATES = tuple(sorted({DEFAULT_LOG_RATE, 0.1, 1.0}))
# "Without slowing the hot path measurably": a single-row request at the default rate
# loses no more than the comparison's noise, which the control (two identical servers,
# log off) puts at up to about two percent on this machine.
LOG_COST_PERCENT = 2


# --- request bodies ----------------------------------------------------------------------


def write_bodies(work: Path) -> dict[str, Path]:
    metadata = json.loads((MODELS / "metadata.json").read_text())
    names = [feature["name"] for feature in metadata["features"]]
    sys.path.insert(0, str(ROOT / "src"))
    from tabml.stages.ingest import bundled_frame  # the benchmark may use training code

    dataset = metadata["params"]["data"].get("sklearn_dataset") or "breast_cancer"
    frame = bundled_frame(dataset)[names].astype("float64")
    rows = json.loads(frame.to_json(orient="records"))
    batch = [rows[index % len(rows)] for index in range(BATCH_ROWS)]

    def v2(chosen: list[dict[str, float]], mlserver: bool) -> dict[str, Any]:
        inputs = [
            {
                "name": name,
                "datatype": "FP32",
                "shape": [len(chosen)] if mlserver else [len(chosen), 1],
                "data": [row[name] for row in chosen],
            }
            for name in names
        ]
        if mlserver:
            return {
                "parameters": {"content_type": "pd"},
                "inputs": inputs,
                "outputs": [{"name": "predict_proba"}],
            }
        return {"inputs": inputs}

    def packed(chosen: list[dict[str, float]], name: str) -> dict[str, Any]:
        """The numeric features as one [rows, features] FP32 tensor."""
        tensor = {
            "name": name,
            "datatype": "FP32",
            "shape": [len(chosen), len(names)],
            "data": [row[feature] for row in chosen for feature in names],
        }
        if name == "input-0":  # MLServer's plain numeric model, asked for probabilities
            return {"inputs": [tensor], "outputs": [{"name": "predict_proba"}]}
        return {"inputs": [tensor]}

    bodies = {
        "row": rows[0],
        "v2_packed_row": packed(rows[:1], "numeric_features"),
        "v2_packed_batch": packed(batch, "numeric_features"),
        "mlserver_numeric_row": packed(rows[:1], "input-0"),
        "mlserver_numeric_batch": packed(batch, "input-0"),
        "batch": batch,
        "v2_row": v2(rows[:1], False),
        "v2_batch": v2(batch, False),
        "mlserver_row": v2(rows[:1], True),
        "mlserver_batch": v2(batch, True),
    }
    paths = {}
    for name, payload in bodies.items():
        paths[name] = work / f"{name}.json"
        paths[name].write_text(json.dumps(payload))
    return paths


# --- the servers -----------------------------------------------------------------------


def servers(work: Path) -> list[Server]:
    uvicorn_flags = [
        "--no-access-log",
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        # info for the startup line that names the port; with the access log off,
        # nothing is logged per request.
        "--log-level",
        "info",
        "--port",
        str(PICKED_BY_THE_SYSTEM),
    ]
    tabml = Server("tabml", [sys.executable, "-m", "tabml.serve"], "/ready")
    tabml.env = {
        "TABML_PORT": str(PICKED_BY_THE_SYSTEM),
        "TABML_MODEL_DIR": str(MODELS),
        "TABML_LOG_LEVEL": "info",
        "TABML_MAX_BATCH_ROWS": "10000",
    }
    ceiling = Server(
        "ceiling",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "ceiling:app",
            "--app-dir",
            str(APPS),
            "--lifespan",
            "off",
            *uvicorn_flags,
        ],
        "/",
    )
    sklearn = version("scikit-learn")
    # One venv for both peers: FastAPI + scikit-learn, and Starlette + onnxruntime (the
    # same onnxruntime as tabml's, so the ASGI layers are what differs).
    fastapi_python = ensure_venv(
        FASTAPI_VENV,
        [
            "fastapi",
            "uvicorn[standard]",
            "pandas",
            "joblib",
            f"scikit-learn=={sklearn}",
            f"onnxruntime=={version('onnxruntime')}",
            "orjson",
        ],
    )
    fastapi = Server(
        "fastapi_sklearn",
        [
            str(fastapi_python),
            "-m",
            "uvicorn",
            "fastapi_sklearn:app",
            "--app-dir",
            str(APPS),
            *uvicorn_flags,
        ],
        "/ready",
        env={"TABML_MODEL_DIR": str(MODELS)},
    )
    starlette = Server(
        "starlette_onnx",
        [
            str(fastapi_python),
            "-m",
            "uvicorn",
            "starlette_onnx:app",
            "--app-dir",
            str(APPS),
            "--lifespan",
            "off",
            *uvicorn_flags,
        ],
        "/ready",
        env={"TABML_MODEL_DIR": str(MODELS)},
    )
    mlserver_python = mlserver_venv()
    model_dir = work / "mlserver"
    (model_dir / "tabml").mkdir(parents=True)
    shutil.copy2(MODELS / "model.joblib", model_dir / "tabml" / "model.joblib")
    mlserver_port = unused_port()
    (model_dir / "settings.json").write_text(
        json.dumps(
            {
                "http_port": mlserver_port,
                "grpc_port": unused_port(),
                "metrics_port": unused_port(),
                "parallel_workers": 0,
                "host": "127.0.0.1",
            }
        )
    )
    (model_dir / "tabml" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "tabml",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"},
            }
        )
    )
    mlserver = Server(
        "mlserver",
        [str(mlserver_python.parent / "mlserver"), "start", str(model_dir)],
        "/v2/models/tabml/ready",
        mlserver_port,
    )
    return [
        tabml,
        mlserver,
        mlserver_numeric(mlserver_python, work),
        fastapi,
        starlette,
        ceiling,
    ]


def mlserver_venv() -> Path:
    """The Python of MLServer's own virtual environment (made on first use)."""
    sklearn = version("scikit-learn")
    return ensure_venv(
        MLSERVER_VENV, ["mlserver", "mlserver-sklearn", "uvloop<0.22", f"scikit-learn=={sklearn}"]
    )


def mlserver_numeric(python: Path, work: Path) -> Server:
    """MLServer in its fastest setting (parallel_workers 0) serving a plain
    logistic-regression pipeline (scaling, then the classifier) on the same numeric
    features, taking one [rows, features] tensor: MLServer with nothing to decode
    but numbers."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sys.path.insert(0, str(ROOT / "src"))
    from tabml.stages.ingest import bundled_frame  # the benchmark may use training code

    metadata = json.loads((MODELS / "metadata.json").read_text())
    names = [feature["name"] for feature in metadata["features"]]
    target = metadata["target"]["name"]
    dataset = metadata["params"]["data"].get("sklearn_dataset") or "breast_cancer"
    frame = bundled_frame(dataset)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(frame[names].to_numpy(dtype="float32"), frame[target].astype(str))
    model_dir = work / "mlserver-numeric"
    (model_dir / "numeric").mkdir(parents=True)
    joblib.dump(pipeline, model_dir / "numeric" / "model.joblib")
    port = unused_port()
    (model_dir / "settings.json").write_text(
        json.dumps(
            {
                "http_port": port,
                "grpc_port": unused_port(),
                "metrics_port": unused_port(),
                "parallel_workers": 0,
                "host": "127.0.0.1",
            }
        )
    )
    (model_dir / "numeric" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "numeric",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"},
            }
        )
    )
    return Server(
        "mlserver_numeric",
        [str(python.parent / "mlserver"), "start", str(model_dir)],
        "/v2/models/numeric/ready",
        port,
    )


# --- the run ---------------------------------------------------------------------------


def endpoints(name: str) -> dict[str, tuple[str, str]]:
    """Workload -> (path, body name) for each server."""
    if name == "tabml":
        return {
            "row": ("/predict", "row"),
            "batch": ("/predict", "batch"),
            "v2_row": ("/v2/models/tabml-classifier/infer", "v2_row"),
            "v2_batch": ("/v2/models/tabml-classifier/infer", "v2_batch"),
            "v2_packed_row": ("/v2/models/tabml-classifier/infer", "v2_packed_row"),
            "v2_packed_batch": ("/v2/models/tabml-classifier/infer", "v2_packed_batch"),
        }
    if name == "mlserver_numeric":
        return {
            "v2_packed_row": ("/v2/models/numeric/infer", "mlserver_numeric_row"),
            "v2_packed_batch": ("/v2/models/numeric/infer", "mlserver_numeric_batch"),
        }
    if name == "mlserver":
        return {
            "v2_row": ("/v2/models/tabml/infer", "mlserver_row"),
            "v2_batch": ("/v2/models/tabml/infer", "mlserver_batch"),
        }
    if name in {"fastapi_sklearn", "starlette_onnx"}:
        return {"row": ("/predict", "row"), "batch": ("/predict", "batch")}
    # The ceiling answers any path; reading a 1000-row body is what receiving it costs.
    return {
        "row": ("/predict", "row"),
        "batch": ("/predict", "batch"),
        "v2_batch": ("/v2/models/tabml-classifier/infer", "v2_batch"),
    }


def container_figures(trials: int) -> dict[str, Any] | None:
    if shutil.which("podman") is None or not (PODMAN_ROOT / "storage").exists():
        return None
    conf = PODMAN_ROOT / "containers.conf"
    podman = [
        "podman",
        "--root",
        str(PODMAN_ROOT / "storage"),
        "--runroot",
        str(PODMAN_ROOT / "run"),
    ]
    environ = {**os.environ, "CONTAINERS_CONF": str(conf)}
    if subprocess.run([*podman, "image", "exists", BASE_IMAGE], env=environ).returncode:
        return None
    tag = "localhost/tabml-serve:benchmark"
    subprocess.run(
        [
            "make",
            "-s",
            "image",
            f"CONTAINER_TOOL={' '.join(podman)}",
            f"BASE_IMAGE={BASE_IMAGE}",
            f"IMAGE={tag}",
            "IMAGE_BUILD_FLAGS=--pull=never --network=host --volume="
            "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
        ],
        cwd=ROOT,
        env=environ,
        check=True,
        capture_output=True,
    )
    size = int(
        subprocess.run(
            [*podman, "image", "inspect", "--format", "{{.Size}}", tag],
            env=environ,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    starts = []
    for trial in range(trials):
        name = f"tabml-bench-{os.getpid()}-{trial}"
        started = time.monotonic()
        try:
            subprocess.run(
                [
                    *podman,
                    "run",
                    "--detach",
                    "--name",
                    name,
                    "--network=host",
                    f"--env=TABML_PORT={PICKED_BY_THE_SYSTEM}",
                    "--env=TABML_HOST=127.0.0.1",
                    tag,
                ],
                env=environ,
                check=True,
                capture_output=True,
            )

            def container_log(name: str = name) -> bytes:
                logs = subprocess.run(
                    [*podman, "logs", name], env=environ, capture_output=True, check=False
                )
                return logs.stdout + logs.stderr

            port = port_in_log(container_log, lambda: True, timeout=60)
            wait_ready(f"http://127.0.0.1:{port}/ready", None, timeout=60)
            starts.append(time.monotonic() - started)
        finally:
            subprocess.run(
                [*podman, "rm", "--force", "--time=2", name], env=environ, capture_output=True
            )
    return {
        "image_bytes": size,
        "container_start_s": starts,
        "container_start_median_s": statistics.median(starts),
    }


def run(
    seconds: float, rounds: int, soak_seconds: float, trials: int, *, container: bool
) -> dict[str, Any]:
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install wrk util-linux)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs two cores: one for the server, one for wrk")
    for name in ("model.onnx", "metadata.json", "model.joblib"):
        if not (MODELS / name).is_file():
            sys.exit(f"models/{name} is missing: run `make repro` first")
    # Other work on the machine skews every figure; the load average says how much.
    figures: dict[str, Any] = {"servers": {}, "load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="tabml-bench-") as temp:
        work = Path(temp)
        bodies = write_bodies(work)
        every = servers(work)
        with ExitStack() as stack:
            processes = {
                server.name: stack.enter_context(running(server, work))[0] for server in every
            }
            loads = interleaved_loads(every, endpoints, bodies, work, seconds, rounds)
            for server in every:
                result: dict[str, Any] = {"loads": loads[server.name]}
                result["rss_mib_after_load"] = rss_mib(processes[server.name].pid)
                figures["servers"][server.name] = result
            tabml = figures["servers"]["tabml"]
            url, pid = every[0].url, processes["tabml"].pid
            peak = tabml["loads"]["row"]["rps"]
            v2_url = url + "/v2/models/tabml-classifier/infer"
            v2_peak = tabml["loads"]["v2_row"]["rps"]
            halves = {
                "half_peak_row": (url + "/predict", bodies["row"], peak / 2),
                "half_peak_v2_row": (v2_url, bodies["v2_row"], v2_peak / 2),
            }
            tabml.update(held_rates(halves, seconds, work, rounds))
            for name in halves:
                held = tabml[name]
                print(
                    f"== {name}, median p99 of {rounds} rounds: {held['rps']:,.0f} req/s "
                    f"p99 {held['p99_ms']:.2f} ms",
                    flush=True,
                )
            tabml["soak"] = soak(
                url + "/predict", pid, bodies["row"], peak * 0.8, soak_seconds, work
            )
            figures["prediction_log"] = prediction_log_cost(
                every[0], bodies, work, rounds=rounds, seconds=seconds
            )
        for server in every:
            result = figures["servers"][server.name]
            result["cold_start_s"] = cold_starts(server, work, trials)
            result["cold_start_median_s"] = statistics.median(result["cold_start_s"])
            print(f"== {server.name} cold start {result['cold_start_median_s']:.2f} s", flush=True)
        figures["container"] = container_figures(trials) if container else None
    figures["environment"] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": version("onnxruntime"),
        "uvicorn": version("uvicorn"),
        "scikit-learn": version("scikit-learn"),
        "mlserver": venv_version(MLSERVER_VENV, "mlserver"),
        "fastapi": venv_version(FASTAPI_VENV, "fastapi"),
        "wrk_seconds": seconds,
        "rounds": rounds,
        "soak_seconds": soak_seconds,
        "model": json.loads((MODELS / "metadata.json").read_text())["model"]["version"],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    return figures


def prediction_log_cost(
    tabml: Server, bodies: dict[str, Path], work: Path, rounds: int, seconds: float
) -> dict[str, Any]:
    """Requests/s lost to the prediction log, per rate and request size.

    The cost at the default rate is smaller than this machine's drift from one run to
    the next, so the servers compared run under load at the same time, on the same
    core: one with the log off, one with it on and a control (a second one with the log
    off), all three started afresh together so that none carries a longer history (the
    benchmark's main server has just run the soak). The scheduler gives each an equal
    share of the core, so each one's requests/s measures its cost per request, and the
    machine's drift hits all three at once. The cost is the median over rounds of
    on / off; the control's median of control / off is what separates two identical
    servers, and a cost within it is not measurable. The default rate gets four sets of
    servers. Each rate's log is deleted after its comparison, so the gigabytes an
    every-row log writes (and the kernel flushes in the background) do not slow the
    next one.
    """
    figures: dict[str, Any] = {"seconds": seconds, "runs": {}}
    for rate in LOG_RATES:
        log = work / f"predictions-{rate:g}.jsonl"
        compared = {
            "off": variant(tabml, "tabml_log_off"),
            "on": variant(
                tabml,
                f"tabml_log_{rate:g}",
                TABML_PREDICTION_LOG=str(log),
                TABML_PREDICTION_LOG_SAMPLE_RATE=str(rate),
            ),
            "control": variant(tabml, "tabml_control"),
        }
        # Two servers with the same settings differ by a few percent for as long as they
        # run (where their memory landed, which one the scheduler favours), more than the
        # cost at the default rate: that rate is measured over several sets of freshly
        # started servers, so no one set's luck decides it.
        sessions = 4 if rate == DEFAULT_LOG_RATE else 1
        runs: dict[str, dict[str, list[float]]] = {
            state: {"row": [], "batch": []} for state in compared
        }
        for _ in range(sessions):
            with ExitStack() as stack, ThreadPoolExecutor(len(compared)) as pool:
                for server in compared.values():
                    stack.enter_context(running(server, work))
                for workload in ("row", "batch"):
                    side_by_side(pool, compared, "/predict", bodies[workload], 1, work)  # warm-up
                    for turn in range(rounds):
                        loads = side_by_side(
                            pool, compared, "/predict", bodies[workload], seconds, work, first=turn
                        )
                        for state, load in loads.items():
                            runs[state][workload].append(load.rps)
        lines = sum(1 for _ in log.open("rb"))
        result: dict[str, Any] = {
            "lines": lines,
            "bytes": log.stat().st_size,
            "sessions": sessions,
            "rounds": sessions * rounds,
        }
        for workload in ("row", "batch"):
            off = runs["off"][workload]
            result[f"{workload}_cost_percent"] = percent_below(runs["on"][workload], off)
            result[f"{workload}_control_percent"] = percent_below(runs["control"][workload], off)
        figures[f"{rate:g}"] = result
        figures["runs"][f"{rate:g}"] = runs
        log.unlink()
        print(
            f"== prediction log at {rate:.0%}: 1-row req/s {result['row_cost_percent']:+.1f}% "
            f"lost (control {result['row_control_percent']:+.1f}%), {BATCH_ROWS}-row "
            f"{result['batch_cost_percent']:+.1f}% (control "
            f"{result['batch_control_percent']:+.1f}%), {lines:,} lines",
            flush=True,
        )
    return figures


def variant(server: Server, name: str, **env: str) -> Server:
    """Another instance of `server` on its own port, with `env` added."""
    other = Server(name, server.command, server.ready_path, cwd=server.cwd)
    other.env = {**server.env, "TABML_PORT": str(PICKED_BY_THE_SYSTEM), **env}
    return other


# --- the report ------------------------------------------------------------------------


def half_peak_runs(tabml: dict[str, Any]) -> str:
    """The sentence on the held-rate runs behind the p99-at-half-peak targets."""
    rounds = tabml["half_peak_row"].get("rounds_p99_ms")
    if rounds is None:  # a run from before the half-peak runs were taken in rounds
        return (
            f"Half-peak run: {tabml['half_peak_row']['rps']:,.0f} req/s (wanted "
            f"{tabml['loads']['row']['rps'] / 2:,.0f})."
        )
    each = "; ".join(
        f"{label} at {tabml[name]['rps']:,.0f} req/s (wanted "
        f"{tabml['loads'][peak]['rps'] / 2:,.0f}): "
        + ", ".join(f"{p99:.2f}" for p99 in tabml[name]["rounds_p99_ms"])
        for name, peak, label in (
            ("half_peak_row", "row", "`/predict`"),
            ("half_peak_v2_row", "v2_row", "V2"),
        )
        if name in tabml
    )
    return (
        f"Half-peak runs: each rate held {len(rounds)} times, `/predict` and V2 in turn; "
        f"the targets' p99 is the median of the {len(rounds)}. p99 of each run in ms, {each}."
    )


def to_markdown(figures: dict[str, Any]) -> str:
    """The docs/benchmarks.md table and the serving targets, as ratios from this run."""
    servers = figures["servers"]
    labels = {
        "tabml": "tabml (ONNX, ASGI)",
        "mlserver": "MLServer + mlserver-sklearn",
        "mlserver_numeric": "MLServer, plain logistic regression on one numeric tensor",
        "fastapi_sklearn": "FastAPI + scikit-learn",
        "starlette_onnx": "Starlette + onnxruntime, minimal decoder",
        "ceiling": "bare ASGI: reads the body, answers constant JSON",
    }
    lines = [
        "| server | request | req/s | rows/s | p50 ms | p99 ms | RSS MiB | cold start s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in servers.items():
        for workload, load in result["loads"].items():
            rows = BATCH_ROWS if "batch" in workload else 1
            request = {
                "row": "1 row (records)",
                "batch": f"{BATCH_ROWS} rows (records)",
                "v2_row": "1 row (V2 infer)",
                "v2_batch": f"{BATCH_ROWS} rows (V2 infer)",
                "v2_packed_row": "1 row (V2, one numeric tensor)",
                "v2_packed_batch": f"{BATCH_ROWS} rows (V2, one numeric tensor)",
            }[workload]
            # The ceiling predicts nothing: its requests carry rows, but it serves none.
            served = "—" if name == "ceiling" else f"{load['rps'] * rows:,.0f}"
            lines.append(
                f"| {labels[name]} | {request} | {load['rps']:,.0f} | "
                f"{served} | {load['p50_ms']:.2f} | {load['p99_ms']:.2f} | "
                f"{result['rss_mib_after_load']:.0f} | {result['cold_start_median_s']:.2f} |"
            )
    tabml, mlserver, ceiling = servers["tabml"], servers["mlserver"], servers["ceiling"]
    row_rps = tabml["loads"]["row"]["rps"]
    v2_row = tabml["loads"]["v2_row"]["rps"]
    targets = [
        (
            "V2 single-row req/s vs /predict single-row",
            v2_row / row_rps,
            ">= 0.9",
            v2_row / row_rps >= 0.9,
        ),
    ]
    numeric = servers.get("mlserver_numeric")
    if numeric is not None:
        numeric_batch = numeric["loads"]["v2_packed_batch"]["rps"]
        for workload, label in (
            ("v2_batch", "V2, a tensor per feature"),
            ("v2_packed_batch", "V2, one numeric tensor"),
            ("batch", "records"),
        ):
            ratio = tabml["loads"][workload]["rps"] / numeric_batch
            times = 3 if workload.startswith("v2") else None
            targets.append(
                (
                    f"1000-row rows/s vs MLServer on one numeric tensor ({label})",
                    ratio,
                    f">= {times}x" if times else "(shown)",
                    ratio >= times if times else True,
                )
            )
    starlette = servers.get("starlette_onnx")
    if starlette is not None:
        for workload, label in (("row", "1 row"), ("batch", f"{BATCH_ROWS} rows")):
            ratio = tabml["loads"][workload]["rps"] / starlette["loads"][workload]["rps"]
            targets.append(
                (
                    f"{label} req/s vs Starlette + onnxruntime (records)",
                    ratio,
                    "(shown)",
                    True,
                )
            )
    targets += [
        (
            "single-row req/s vs MLServer (/predict vs V2)",
            row_rps / mlserver["loads"]["v2_row"]["rps"],
            ">= 10x",
            row_rps / mlserver["loads"]["v2_row"]["rps"] >= 10,
        ),
        (
            "single-row req/s vs MLServer (V2 vs V2)",
            v2_row / mlserver["loads"]["v2_row"]["rps"],
            ">= 10x",
            v2_row / mlserver["loads"]["v2_row"]["rps"] >= 10,
        ),
        (
            "single-row req/s vs ceiling (/predict)",
            row_rps / ceiling["loads"]["row"]["rps"],
            ">= 0.25",
            row_rps / ceiling["loads"]["row"]["rps"] >= 0.25,
        ),
        *(
            (
                f"{BATCH_ROWS}-row req/s vs ceiling reading the same body ({label})",
                tabml["loads"][workload]["rps"] / ceiling["loads"][workload]["rps"],
                "(shown)",
                True,
            )
            for workload, label in (("batch", "records"), ("v2_batch", "V2"))
            if workload in ceiling["loads"]  # runs before 2026-12-01 loaded single rows only
        ),
        (
            "1000-row rows/s vs MLServer (/predict vs V2)",
            tabml["loads"]["batch"]["rps"] / mlserver["loads"]["v2_batch"]["rps"],
            ">= 2x",
            tabml["loads"]["batch"]["rps"] / mlserver["loads"]["v2_batch"]["rps"] >= 2,
        ),
        (
            "1000-row rows/s vs MLServer (V2 vs V2)",
            tabml["loads"]["v2_batch"]["rps"] / mlserver["loads"]["v2_batch"]["rps"],
            ">= 2x",
            tabml["loads"]["v2_batch"]["rps"] / mlserver["loads"]["v2_batch"]["rps"] >= 2,
        ),
        (
            "p99 at half peak (ms)",
            tabml["half_peak_row"]["p99_ms"],
            "< 5",
            tabml["half_peak_row"]["p99_ms"] < 5,
        ),
        *(
            [
                (
                    "V2 p99 at half its peak (ms)",
                    tabml["half_peak_v2_row"]["p99_ms"],
                    "< 5",
                    tabml["half_peak_v2_row"]["p99_ms"] < 5,
                )
            ]
            if "half_peak_v2_row" in tabml
            else []
        ),
        (
            "cold start to ready, no container (s)",
            tabml["cold_start_median_s"],
            "< 1",
            tabml["cold_start_median_s"] < 1,
        ),
        ("soak errors", tabml["soak"]["errors"], "0", tabml["soak"]["errors"] == 0),
        (
            "soak RSS growth (%)",
            tabml["soak"]["rss_growth_percent"],
            "<= 5",
            tabml["soak"]["rss_growth_percent"] <= 5,
        ),
    ]
    logging = figures.get("prediction_log", {})
    for rate in LOG_RATES:
        cost = logging.get(f"{rate:g}")
        if cost is None:
            continue
        for workload, label in (("row", "1-row"), ("batch", f"{BATCH_ROWS}-row")):
            lost = cost[f"{workload}_cost_percent"]
            # The hot path is the single-row request; a batch's cost grows with the rows
            # it logs (rate x batch size), so it is shown, not held to the limit.
            limit = LOG_COST_PERCENT if (rate, workload) == (DEFAULT_LOG_RATE, "row") else None
            targets.append(
                (
                    f"prediction log at {rate:.0%}: {label} req/s lost (%)",
                    lost,
                    f"<= {limit}" if limit is not None else "(shown)",
                    lost <= limit if limit is not None else True,
                )
            )
            control = cost.get(f"{workload}_control_percent")
            if control is not None and rate == DEFAULT_LOG_RATE:
                targets.append(
                    (
                        f"control, a second server with the log off: {label} req/s lost (%)",
                        control,
                        "(noise)",
                        True,
                    )
                )
    lines += ["", "| target | this run | wanted | met |", "|---|---:|---:|---|"]
    for name, value, wanted, met in targets:
        lines.append(f"| {name} | {value:,.2f} | {wanted} | {'yes' if met else 'NO'} |")
    container = figures.get("container")
    environment = figures["environment"]
    logs = [
        f"{logging[f'{rate:g}']['lines']:,} lines ({logging[f'{rate:g}']['bytes'] / 1e6:,.0f} MB) "
        f"at {rate:.0%}"
        for rate in LOG_RATES
        if f"{rate:g}" in logging
    ]
    rounds_per_rate = [
        f"{logging[f'{rate:g}'].get('rounds', logging.get('rounds'))} at {rate:.0%}"
        for rate in LOG_RATES
        if f"{rate:g}" in logging
    ]
    lines += [
        "",
        half_peak_runs(tabml) + f" Soak: {environment['soak_seconds']:g} s at "
        f"{tabml['soak']['rps']:,.0f} req/s "
        f"(wanted {tabml['soak']['target_rps']:,.0f}, 80% "
        f"of peak), {tabml['soak']['errors']} errors, RSS "
        f"{tabml['soak']['rss_growth_percent']:+.1f}%."
        + (
            f" Prediction log: per rate and request size, the median over rounds "
            f"({', '.join(rounds_per_rate)}) of {logging['seconds']:g}-second runs of three "
            "servers side by side on one core (log off, log on, and a control with the log "
            f"off), on / off and control / off; written: {', '.join(logs)}."
            if logs
            else ""
        ),
    ]
    if container:
        lines.append(
            f"Image: {container['image_bytes'] / 1e6:,.0f} MB (Debian bookworm base "
            f"made with debootstrap); container start to ready "
            f"{container['container_start_median_s']:.2f} s (median)."
        )
    lines.append(
        f"One run on {environment['cpu']} ({environment['cores']} cores), "
        f"{environment['date']}: every server pinned to core {SERVER_CORE}, wrk (1 thread, 16 "
        f"connections) to core {LOAD_CORE}, loopback; each figure is the median of "
        f"{environment.get('rounds', 1)} {environment['wrk_seconds']:g}-second runs taken in "
        "rounds that visit every server in turn. "
        f"Python {environment['python']}, onnxruntime {environment['onnxruntime']}, MLServer "
        f"{environment['mlserver']} (parallel_workers 0), FastAPI {environment['fastapi']}, "
        f"scikit-learn {environment['scikit-learn']}. Load average at start: "
        + ", ".join(f"{value:.1f}" for value in figures.get("load_average_at_start", []))
        + "."
    )
    return "\n".join(lines) + "\n"


def rerender() -> None:
    """Write serve.md again from serve.json (after changing the report, not the run)."""
    write_results(None, to_markdown(read_results()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s loads, 10 s soak")
    parser.add_argument("--seconds", type=float, default=4, help="seconds per wrk run")
    parser.add_argument(
        "--rounds", type=int, default=5, help="runs per server and workload (median kept)"
    )
    parser.add_argument("--soak-seconds", type=float, default=60)
    parser.add_argument(
        "--no-container",
        action="store_true",
        help="leave out the image build and container start figures",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite serve.md from serve.json without running anything",
    )
    arguments = parser.parse_args()
    if arguments.report_only:
        rerender()
        return
    seconds = 2 if arguments.quick else arguments.seconds
    rounds = 3 if arguments.quick else arguments.rounds
    soak_seconds = 10 if arguments.quick else arguments.soak_seconds
    figures = run(
        seconds,
        rounds,
        soak_seconds,
        trials=3 if arguments.quick else 5,
        container=not arguments.no_container,
    )
    markdown = to_markdown(figures)
    write_results(figures, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
