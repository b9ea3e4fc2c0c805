"""The rules and the dashboard against a real Prometheus that scrapes a real server under
load: every expression returns a series, every rule evaluates without error, and every
label an alert's text or a panel's legend names is on what it returns. A metric or label
renamed in the server, the rules or the dashboard fails here."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.availability import require_tool
from tests.monitoring.conftest import JOB, RULES, as_prometheus_sees_it, dashboard_targets
from tests.monitoring.promql import parts_that_must_return_series, selectors
from tests.ports import port_from_log
from tests.serve.conftest import (
    ExportedModel,
    LiveServer,
    http,
    start_server,
    stop_server,
    wait_ready,
)

pytestmark = pytest.mark.slow

# Prometheus's line once its web listener is bound (it binds port 0 and names the port).
PROMETHEUS_LISTENING = re.compile(rb'msg="Listening on" address=127\.0\.0\.1:(\d+)')
# Two request slots, both held by the stalled bodies below: the next request gets a 503.
SLOTS = 2
# Long enough for three scrapes and rule evaluations at the 1 s interval.
SETTLE_SECONDS = 25.0
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
ANNOTATION_LABEL = re.compile(r"\$labels\.(\w+)")


@dataclass
class Prometheus:
    process: subprocess.Popen[bytes]
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` returns now; fails on a query Prometheus refuses."""
        status, body = http(
            "GET", f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        )
        reply = json.loads(body)
        assert status == 200 and reply["status"] == "success", f"{expr}: {reply}"
        result: list[dict[str, Any]] = reply["data"]["result"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        reply = json.loads(http("GET", f"{self.url}/api/v1/rules")[1])
        return [rule for group in reply["data"]["groups"] for rule in group["rules"]]


def start_prometheus(target: str, workdir: Path) -> Prometheus:
    """Prometheus on a port the OS gave it, scraping `target` as job JOB every second and
    evaluating rules.yml every second."""
    binary = require_tool("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                "--web.listen-address=127.0.0.1:0",
                f"--storage.tsdb.path={workdir / 'data'}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        port = port_from_log(log_path, process, timeout=30, started_line=PROMETHEUS_LISTENING)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/-/ready", process, timeout=30)
    except AssertionError:
        stop_server(process)
        raise AssertionError(log_path.read_text(errors="replace")) from None
    return Prometheus(process, url)


@pytest.fixture(scope="module")
def server(
    breast_cancer_model: ExportedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("monitored")
    started = start_server(
        breast_cancer_model.directory,
        workdir / "server.log",
        TABML_PREDICTION_LOG=str(workdir / "predictions.jsonl"),
        TABML_PREDICTION_LOG_SAMPLE_RATE="0.5",
        TABML_MAX_CONCURRENT_REQUESTS=str(SLOTS),
    )
    try:
        yield started
    finally:
        stop_server(started.process)


@pytest.fixture(scope="module")
def prometheus(
    server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    started = start_prometheus(server.url.removeprefix("http://"), tmp_path_factory.mktemp("prom"))
    try:
        yield started
    finally:
        stop_server(started.process)


def v2_request(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": name,
                "datatype": "FP32",
                "shape": [len(rows), 1],
                "data": [row[name] for row in rows],
            }
            for name in rows[0]
        ]
    }


def stalled_body(port: int) -> socket.socket:
    """A connection that sent its headers and part of a promised body: it holds a
    request slot until the body deadline or until it closes."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(
        b"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 1000\r\n\r\n[{"
    )
    return connection


def wait_for_slots_in_use(server: LiveServer, count: int, timeout: float = 10) -> None:
    """Until /metrics shows `count` requests in flight (the stalled bodies' headers read)."""
    deadline = time.monotonic() + timeout
    line = f"tabml_http_requests_in_flight {float(count)}"
    while line not in http("GET", f"{server.url}/metrics")[1].decode():
        assert time.monotonic() < deadline, f"no {line} after {timeout} s"
        time.sleep(0.02)


def send_load(server: LiveServer, model: ExportedModel) -> dict[int, int]:
    """A few hundred prediction requests, single rows and batches, some of them bad, and
    one turned away while stalled bodies hold every slot; returns the count by status."""
    rows = model.feature_rows(500)
    good: list[tuple[str, bytes, str]] = []
    for index in range(300):
        size = (1, 1, 1, 5, 50, 500)[index % 6]
        start = index % (len(rows) - size + 1)
        good.append(
            ("/predict", json.dumps(rows[start : start + size]).encode(), "application/json")
        )
    good += [
        (
            "/v2/models/tabml-classifier/infer",
            json.dumps(v2_request(rows[:20])).encode(),
            "application/json",
        )
    ] * 20
    missing = {key: value for key, value in rows[0].items() if key != "mean_radius"}
    bad = [
        ("/predict", json.dumps(missing).encode(), "application/json"),  # 422
        ("/predict", b"[{", "application/json"),  # 400
        ("/predict", json.dumps(rows[0]).encode(), "text/plain"),  # 415
    ] * 10
    requests = good + bad

    def send(request: tuple[str, bytes, str]) -> int:
        path, body, content_type = request
        return http("POST", server.url + path, body, content_type=content_type)[0]

    with ThreadPoolExecutor(max_workers=SLOTS) as pool:
        statuses = list(pool.map(send, requests))
    stalled = [stalled_body(server.port) for _ in range(SLOTS)]
    try:
        wait_for_slots_in_use(server, SLOTS)
        statuses.append(send(good[0]))
    finally:
        for connection in stalled:
            connection.close()
    statuses.append(http("GET", f"{server.url}/nowhere")[0])
    counts: dict[int, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return counts


def missing_series(prometheus: Prometheus, checks: list[tuple[str, str, set[str]]]) -> list[str]:
    """For each (where, expression, labels) check: what is wrong now, if anything: no
    series, or a series without one of the labels."""
    problems = []
    for where, expr, labels in checks:
        result = prometheus.query(expr)
        if not result:
            problems.append(f"{where}: {expr} returns no series")
            continue
        for series in result:
            absent = labels - set(series["metric"])
            if absent:
                problems.append(f"{where}: {expr} returns {series['metric']} without {absent}")
    return problems


def test_every_rule_and_panel_returns_series_from_a_scraped_server(
    server: LiveServer,
    prometheus: Prometheus,
    breast_cancer_model: ExportedModel,
    rules: list[dict[str, Any]],
    dashboard: dict[str, Any],
) -> None:
    started = time.monotonic()
    counts = send_load(server, breast_cancer_model)
    assert counts == {200: 320, 422: 10, 400: 10, 415: 10, 503: 1, 404: 1}, counts
    load_seconds = time.monotonic() - started

    checks: list[tuple[str, str, set[str]]] = []
    for rule in rules:
        name = rule.get("record") or rule["alert"]
        for selector in selectors(rule["expr"]):
            checks.append((f"rules.yml {name}", selector.promql(), set()))
        if "record" in rule:
            checks.append((f"rules.yml {name}", rule["record"], set()))
            continue
        # An alert's text may name only labels its expression returns.
        wanted = set(ANNOTATION_LABEL.findall(" ".join(rule["annotations"].values())))
        for part in parts_that_must_return_series(rule["expr"]):
            labels = wanted if part.labelled else set()
            checks.append((f"rules.yml {name}", part.query, labels))
    for title, target in dashboard_targets(dashboard):
        expr = as_prometheus_sees_it(target["expr"])
        checks.append(
            (f"dashboard {title!r}", expr, set(LEGEND_LABEL.findall(target["legendFormat"])))
        )
        for selector in selectors(expr):
            checks.append((f"dashboard {title!r}", selector.promql(), set()))

    deadline = time.monotonic() + SETTLE_SECONDS
    problems = missing_series(prometheus, checks)
    while problems and time.monotonic() < deadline:
        time.sleep(1)
        problems = missing_series(prometheus, checks)
    settled_seconds = time.monotonic() - started - load_seconds
    assert problems == [], "\n".join(problems)

    evaluated = prometheus.rules()
    assert len(evaluated) == len(rules) == 13
    # Prometheus lists its groups by name, not in the file's order.
    assert sorted(
        (rule["name"], rule["health"], rule.get("lastError", "")) for rule in evaluated
    ) == sorted((rule.get("record") or rule["alert"], "ok", "") for rule in rules)
    print(
        f"load {load_seconds:.1f} s; every expression answered {settled_seconds:.1f} s "
        f"later; {len(checks)} checks"
    )
