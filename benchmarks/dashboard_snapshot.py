"""A picture of the Grafana dashboard from real data: the served model in models/ under a
scripted load, scraped by a real Prometheus, drawn by deploy/monitoring/render_dashboard.py.

The load runs in three phases of PHASE_SECONDS each: healthy traffic (single rows and
batches of 10 and 100), the same with one request in five refused (a missing feature,
a body that is not JSON), then only rows of the minority class, which moves the
predicted class mix away from training's.

Needs: a model in models/ (`make repro`) and Prometheus (Debian: prometheus).

    uv run python benchmarks/dashboard_snapshot.py      # about 4 minutes

Writes docs/images/dashboard.svg.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tabml.stages.ingest import bundled_frame

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy" / "monitoring"))
import render_dashboard  # noqa: E402

OUT = ROOT / "docs" / "images" / "dashboard.svg"
PHASE_SECONDS = 70
SCRAPE_SECONDS = 2
REQUESTS_PER_SECOND = 40  # per phase, across both client threads
UVICORN_PORT = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")
PROMETHEUS_PORT = re.compile(rb'msg="Listening on" address=127\.0\.0\.1:(\d+)')


def started(
    command: list[str], log: Path, line: re.Pattern[bytes], env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `command`, logging to `log`; its URL once its log names the port it bound."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = line.search(log.read_bytes())
        if found:
            return process, f"http://127.0.0.1:{int(found.group(1))}"
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{command[0]} did not start:\n{log.read_text(errors='replace')}")


def post(url: str, body: bytes, content_type: str = "application/json") -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"content-type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.read()
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


def drive(url: str, seconds: float, next_request: Callable[[int], tuple[bytes, str]]) -> None:
    """Two client threads, each sending REQUESTS_PER_SECOND / 2 requests a second."""
    interval = 2 / REQUESTS_PER_SECOND

    def client(offset: int) -> None:
        index = offset
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            body, content_type = next_request(index)
            post(f"{url}/predict", body, content_type)
            index += 2
            time.sleep(interval)

    threads = [threading.Thread(target=client, args=(offset,), daemon=True) for offset in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    prometheus_binary = shutil.which("prometheus")
    if prometheus_binary is None or not (ROOT / "models" / "model.onnx").is_file():
        raise SystemExit("needs prometheus on PATH and a model in models/ (make repro)")
    frame = bundled_frame("breast_cancer")
    features = [name for name in frame.columns if name != "diagnosis"]
    rows = json.loads(frame[features].to_json(orient="records"))
    minority = json.loads(
        frame.loc[frame["diagnosis"] == "malignant", features].to_json(orient="records")
    )

    def healthy(index: int) -> tuple[bytes, str]:
        size = (1, 1, 1, 1, 1, 1, 1, 10, 10, 100)[index % 10]
        start = index % (len(rows) - size)
        return json.dumps(
            rows[start] if size == 1 else rows[start : start + size]
        ).encode(), "application/json"

    def with_refusals(index: int) -> tuple[bytes, str]:
        if index % 10 == 3:
            return json.dumps(
                {k: v for k, v in rows[index % len(rows)].items() if k != "mean_area"}
            ).encode(), "application/json"
        if index % 10 == 8:
            return json.dumps(rows[0]).encode(), "text/plain"
        return healthy(index)

    def shifted(index: int) -> tuple[bytes, str]:
        return json.dumps(minority[index % len(minority)]).encode(), "application/json"

    with tempfile.TemporaryDirectory(prefix="tabml-dashboard-") as work:
        workdir = Path(work)
        server, server_url = started(
            [sys.executable, "-m", "tabml.serve"],
            workdir / "server.log",
            UVICORN_PORT,
            {
                **os.environ,
                "TABML_HOST": "127.0.0.1",
                "TABML_PORT": "0",
                "TABML_MODEL_DIR": str(ROOT / "models"),
                "TABML_PREDICTION_LOG": str(workdir / "predictions.jsonl"),
                "TABML_PREDICTION_LOG_SAMPLE_RATE": "0.1",
            },
        )
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_SECONDS}s",
                "evaluation_interval": f"{SCRAPE_SECONDS}s",
            },
            "rule_files": [str(ROOT / "deploy" / "monitoring" / "rules.yml")],
            "scrape_configs": [
                {
                    "job_name": "tabml",
                    "static_configs": [{"targets": [server_url.removeprefix("http://")]}],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(json.dumps(config), encoding="utf-8")
        prometheus, prometheus_url = started(
            [
                prometheus_binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                "--web.listen-address=127.0.0.1:0",
                f"--storage.tsdb.path={workdir / 'data'}",
            ],
            workdir / "prometheus.log",
            PROMETHEUS_PORT,
            dict(os.environ),
        )
        try:
            began = time.time()
            for name, phase in (
                ("healthy", healthy),
                ("refusals", with_refusals),
                ("class shift", shifted),
            ):
                print(f"phase {name}: {PHASE_SECONDS} s", flush=True)
                drive(server_url, PHASE_SECONDS, phase)
            time.sleep(3 * SCRAPE_SECONDS)
            end = time.time()
            dashboard = json.loads(render_dashboard.DASHBOARD.read_text(encoding="utf-8"))
            variables = {"$__rate_interval": "30s", "$job": "tabml"}
            panels = render_dashboard.fetch(prometheus_url, dashboard, began, end, variables)
            title = (
                f"{dashboard['title']}: {PHASE_SECONDS} s healthy, {PHASE_SECONDS} s with "
                f"refusals, {PHASE_SECONDS} s of minority-class rows (models/, "
                f"{time.strftime('%Y-%m-%d', time.gmtime(end))})"
            )
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(render_dashboard.render(dashboard, panels, title), encoding="utf-8")
            print(f"wrote {OUT.relative_to(ROOT)}")
        finally:
            for process in (prometheus, server):
                process.terminate()
                process.wait(timeout=15)


if __name__ == "__main__":
    main()
