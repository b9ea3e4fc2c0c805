"""Where a request's time goes, and what a change bought, for tabml's serving app.

Two measurements, both written to benchmarks/results/serve_profile.json and .md:

- In process (no network): the ASGI app called directly, pinned to one core, and each
  stage of a request timed alone: body parse and checks, ONNX, the non-finite check,
  and the response body built and written; the figure is the fastest of
  several repeats (the machine's other work only ever adds time).
- Over HTTP, side by side: pairs of servers loaded by wrk at the same time on the same
  core, so that the machine's drift lands on both; the ratio of their requests/s is
  their ratio of cost per request. With `--before SRC` (a `src` folder of an earlier
  commit, e.g. from `git archive <rev> src | tar -x -C /tmp/before`), each workload is
  compared before and after, the "before" servers serving the models folder given with
  `--before-models` (the model that commit built, e.g. `dvc checkout` at it in a clone
  with the cache; default: this tree's), and `--before-label` names that commit in the
  results; /predict and V2 single rows are compared in this tree. With `--mlserver`, V2
  1000-row batches are compared with MLServer's on one numeric tensor (its fastest
  setting, as `serve.py` runs it).

    uv run python benchmarks/serve_profile.py --before /tmp/before/src \
        --before-models /tmp/before/models --before-label 7d67f5a --mlserver
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from serve import mlserver_numeric, mlserver_venv, write_bodies
from serve_harness import RESULTS, ROOT, SERVER_CORE, Server, running, wrk

V2_PATH = "/v2/models/tabml-classifier/infer"


# --- in process --------------------------------------------------------------------------


def in_process(bodies: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Microseconds per request and per stage, for each workload."""
    import gc

    from tabml.serve.app import ServingApp
    from tabml.serve.http import json_response, parse_json
    from tabml.serve.settings import Settings
    from tabml.serve.v2 import v2_response

    os.sched_setaffinity(0, {int(SERVER_CORE)})
    app = ServingApp(Settings(model_dir=ROOT / "models", max_batch_rows=10_000))
    app.load()
    gc.collect()
    gc.freeze()  # as the app's startup does
    model, decoder, v2, records = app.require_model()
    loop = asyncio.new_event_loop()
    figures: dict[str, dict[str, float]] = {}
    workloads = {
        "row": "/predict",
        "batch": "/predict",
        "v2_row": V2_PATH,
        "v2_batch": V2_PATH,
        "v2_packed_row": V2_PATH,
        "v2_packed_batch": V2_PATH,
    }
    for workload, path in workloads.items():
        body = bodies[workload].read_bytes()
        number = 2000 if workload.endswith("row") else 40
        stages: dict[str, Callable[[], Any]] = {}
        if path == "/predict":
            stages["parse"] = lambda body=body: parse_json(body)
            stages["parse + checks"] = lambda body=body: decoder.decode_plain_records(body)
            decoded = decoder.decode_plain_records(body)
            assert decoded is not None
            feed = decoded[0]
        else:
            stages["parse"] = lambda body=body: parse_json(body)
            stages["parse + checks"] = lambda body=body: v2.decode_body(body)
            feed = v2.decode_body(body)[0]
        prediction = model.predict(feed)
        stages["onnx"] = lambda feed=feed: model.predict(feed)
        stages["non-finite check"] = lambda feed=feed, p=prediction: decoder.reject_non_finite(
            feed, p.probabilities, 400, str
        )
        if path == "/predict":
            stages["response body"] = lambda p=prediction: records.body(p.labels, p.probabilities)
        else:
            stages["response body"] = lambda p=prediction: json_response(
                v2_response(model, p.labels, p.probabilities, ["label", "probabilities"], None)
            )
        stages["whole request (ASGI)"] = lambda path=path, body=body: loop.run_until_complete(
            _requests(app, path, body, 10)
        )
        figures[workload] = {
            name: _fastest(stage, number) / (10 if name.startswith("whole") else 1)
            for name, stage in stages.items()
        }
        print(workload, {name: round(value, 1) for name, value in figures[workload].items()})
    loop.close()
    return figures


async def _requests(app: Any, path: str, body: bytes, count: int) -> None:
    scope = {
        "type": "http",
        "path": path,
        "method": "POST",
        "headers": [(b"content-type", b"application/json")],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"{path}: {message['status']}")

    for _ in range(count):
        await app(scope, receive, send)


def _fastest(stage: Callable[[], Any], number: int) -> float:
    """Microseconds per call: the fastest of seven repeats."""
    count = max(number // 5, 3)
    return min(timeit.repeat(stage, number=count, repeat=7)) / count * 1e6


# --- over HTTP, side by side -------------------------------------------------------------


def side_by_side(
    bodies: dict[str, Path],
    work: Path,
    before: Path | None,
    *,
    before_models: Path | None,
    mlserver: bool,
    rounds: int,
    seconds: float,
) -> dict[str, Any]:
    """Per pair: each server's requests/s per round and the median ratio second/first."""

    def tabml(name: str, **env: str) -> Server:
        server = Server(name, [sys.executable, "-m", "tabml.serve"], "/ready")
        server.env = {
            "TABML_PORT": "0",
            "TABML_MODEL_DIR": str(ROOT / "models"),
            "TABML_LOG_LEVEL": "info",
            "TABML_MAX_BATCH_ROWS": "10000",
            **env,
        }
        return server

    servers = {"after": tabml("after"), "after_2": tabml("after_2")}
    pairs: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
        "/predict 1 row vs V2 1 row": (
            ("after", "/predict", "row"),
            ("after_2", V2_PATH, "v2_row"),
        ),
        "/predict 1 row vs V2 1 row, one numeric tensor": (
            ("after", "/predict", "row"),
            ("after_2", V2_PATH, "v2_packed_row"),
        ),
        "V2 1000 rows vs V2 1000 rows, one numeric tensor": (
            ("after", V2_PATH, "v2_batch"),
            ("after_2", V2_PATH, "v2_packed_batch"),
        ),
    }
    if before is not None:
        models = {"TABML_MODEL_DIR": str(before_models or ROOT / "models")}
        servers["before"] = tabml("before", PYTHONPATH=str(before), **models)
        servers["before_2"] = tabml("before_2", PYTHONPATH=str(before), **models)
        for workload, path in (
            ("row", "/predict"),
            ("v2_row", V2_PATH),
            ("batch", "/predict"),
            ("v2_batch", V2_PATH),
        ):
            pairs[f"{workload}: before vs after"] = (
                ("before", path, workload),
                ("after", path, workload),
            )
        pairs["before: /predict 1 row vs V2 1 row"] = (
            ("before", "/predict", "row"),
            ("before_2", V2_PATH, "v2_row"),
        )
    if mlserver:
        servers["mlserver_numeric"] = mlserver_numeric(mlserver_venv(), work)
        pairs["MLServer 1000 rows, one numeric tensor vs V2 1000 rows"] = (
            ("mlserver_numeric", "/v2/models/numeric/infer", "mlserver_numeric_batch"),
            ("after", V2_PATH, "v2_batch"),
        )
        pairs["MLServer 1000 rows, one numeric tensor vs V2 1000 rows, one numeric tensor"] = (
            ("mlserver_numeric", "/v2/models/numeric/infer", "mlserver_numeric_batch"),
            ("after", V2_PATH, "v2_packed_batch"),
        )
    results: dict[str, Any] = {}
    with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        for server in servers.values():
            stack.enter_context(running(server, work))
        for label, pair in pairs.items():
            runs: list[list[float]] = [[], []]
            p99: list[list[float]] = [[], []]
            for turn in range(rounds + 1):  # the first turn warms both up
                order = [0, 1] if turn % 2 == 0 else [1, 0]
                futures = {
                    side: pool.submit(
                        wrk,
                        servers[pair[side][0]].url + pair[side][1],
                        bodies[pair[side][2]],
                        connections=16,
                        seconds=seconds if turn else 1,
                        work=work,
                    )
                    for side in order
                }
                loads = {side: future.result() for side, future in futures.items()}
                if turn:
                    for side in (0, 1):
                        runs[side].append(loads[side].rps)
                        p99[side].append(loads[side].p99_ms)
            ratio = statistics.median(b / a for a, b in zip(runs[0], runs[1], strict=True))
            results[label] = {
                "first_rps": runs[0],
                "second_rps": runs[1],
                "first_p99_ms": statistics.median(p99[0]),
                "second_p99_ms": statistics.median(p99[1]),
                "second_to_first": ratio,
            }
            print(f"{label}: {ratio:.2f}", flush=True)
    return results


def to_markdown(figures: dict[str, Any]) -> str:
    lines = ["# Where a request's time goes", ""]
    profile = figures["in_process"]
    stages = list(next(iter(profile.values())))
    lines += [
        "In process (the ASGI app called directly, pinned to one core), microseconds per "
        "request; each stage timed alone, the fastest of seven repeats.",
        "",
        "| request | " + " | ".join(stages) + " |",
        "|---|" + "---:|" * len(stages),
    ]
    for workload, timings in profile.items():
        lines.append(
            f"| {workload} | " + " | ".join(f"{timings[name]:,.1f}" for name in stages) + " |"
        )
    lines += [
        "",
        "Over HTTP, side by side: two servers loaded by wrk at once on one core; the ratio "
        "is the second's requests/s over the first's (the median over rounds).",
        "",
        "| pair (first vs second) | first req/s | second req/s | second / first |",
        "|---|---:|---:|---:|",
    ]
    for label, result in figures["side_by_side"].items():
        lines.append(
            f"| {label} | {statistics.median(result['first_rps']):,.0f} | "
            f"{statistics.median(result['second_rps']):,.0f} | "
            f"{result['second_to_first']:.2f} |"
        )
    environment = figures["environment"]
    lines += [
        "",
        f"{environment['date']}, {environment['rounds']} rounds of "
        f"{environment['seconds']:g}-second runs; load average at start "
        + ", ".join(f"{value:.1f}" for value in environment["load_average"])
        + ". Absolute requests/s are of two servers sharing one core on a shared machine; "
        "the ratios are the figures.",
    ]
    if environment.get("before"):
        label = environment.get("before_label") or "an earlier commit"
        models = "the models it built" if environment.get("before_models") else "this tree's models"
        lines += ["", f"Before: the code of {label}, serving {models}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="a src folder of an earlier commit")
    parser.add_argument(
        "--before-models",
        type=Path,
        help="the models folder the earlier commit built (default: this tree's)",
    )
    parser.add_argument("--before-label", help="what the results call the earlier commit")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--skip-http", action="store_true", help="only the in-process profile")
    parser.add_argument(
        "--mlserver", action="store_true", help="also V2 1000-row batches against MLServer's"
    )
    arguments = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tabml-profile-") as temp:
        work = Path(temp)
        bodies = write_bodies(work)
        figures: dict[str, Any] = {
            "side_by_side": {}
            if arguments.skip_http
            else side_by_side(
                bodies,
                work,
                arguments.before,
                before_models=arguments.before_models,
                mlserver=arguments.mlserver,
                rounds=arguments.rounds,
                seconds=arguments.seconds,
            )
        }
        figures["in_process"] = in_process(bodies)
    figures["environment"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": arguments.rounds,
        "seconds": arguments.seconds,
        "load_average": load,
        "before": str(arguments.before) if arguments.before else None,
        "before_models": str(arguments.before_models) if arguments.before_models else None,
        "before_label": arguments.before_label,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_profile.json").write_text(json.dumps(figures, indent=2) + "\n")
    markdown = to_markdown(figures)
    (RESULTS / "serve_profile.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
