"""The API as it runs in production: `python -m tabml.serve` under uvicorn, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tabml.serve.settings import Settings, SettingsError, load_settings
from tests.ports import port_from_log
from tests.serve.conftest import (
    REPO_ROOT,
    ExportedModel,
    LiveServer,
    http,
    start_server,
    stop_server,
    wait_ready,
)
from tests.serve.test_api import metric
from tests.tools import run_tool


def test_settings_from_environment() -> None:
    settings = load_settings(
        {
            "TABML_PORT": "9000",
            "TABML_MODEL_DIR": "/srv/model",
            "TABML_MAX_BATCH_ROWS": "5",
            "TABML_ACCESS_LOG": "true",
            "TABML_LOG_LEVEL": "debug",
            "TABML_BODY_TIMEOUT_SECONDS": "2.5",
            "TABML_MAX_CONCURRENT_REQUESTS": "64",
            "TABML_KEEP_ALIVE_TIMEOUT_SECONDS": "30",
            "TABML_OUT_OF_RANGE": "count",
            "OTHER": "ignored",
        }
    )
    assert (settings.body_timeout_seconds, settings.max_concurrent_requests) == (2.5, 64)
    assert settings.keep_alive_timeout_seconds == 30
    assert settings.port == 9000
    assert settings.model_path == Path("/srv/model/model.onnx")
    assert settings.max_batch_rows == 5
    assert settings.access_log is True
    assert settings.out_of_range == "count"
    assert Settings().out_of_range == "reject"
    assert load_settings({}) == Settings()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TABML_PORT": "http"}, "TABML_PORT = 'http': Input should be a valid integer"),
        ({"TABML_PORT": "70000"}, "TABML_PORT = '70000': Input should be less than or equal"),
        ({"TABML_WORKERS": "0"}, "TABML_WORKERS = '0': Input should be greater than or equal"),
        ({"TABML_LOG_LEVEL": "loud"}, "TABML_LOG_LEVEL = 'loud': Input should be"),
        ({"TABML_MAX_BODY_BYTES": "-1"}, "TABML_MAX_BODY_BYTES = '-1'"),
        ({"TABML_PREDICTION_LOG_SAMPLE_RATE": "1.5"}, "TABML_PREDICTION_LOG_SAMPLE_RATE = '1.5'"),
        (
            {"TABML_BODY_TIMEOUT_SECONDS": "0"},
            "TABML_BODY_TIMEOUT_SECONDS = '0': Input should be greater than 0",
        ),
        (
            {"TABML_BODY_TIMEOUT_SECONDS": "inf"},
            "TABML_BODY_TIMEOUT_SECONDS = 'inf': Input should be a finite number",
        ),
        (
            {"TABML_BODY_TIMEOUT_SECONDS": "soon"},
            "TABML_BODY_TIMEOUT_SECONDS = 'soon': Input should be a valid number",
        ),
        (
            {"TABML_HEADER_TIMEOUT_SECONDS": "-1"},
            "TABML_HEADER_TIMEOUT_SECONDS = '-1': Input should be greater than 0",
        ),
        (
            {"TABML_MAX_CONCURRENT_REQUESTS": "0"},
            "TABML_MAX_CONCURRENT_REQUESTS = '0': Input should be greater than or equal",
        ),
        (
            {"TABML_KEEP_ALIVE_TIMEOUT_SECONDS": "0"},
            "TABML_KEEP_ALIVE_TIMEOUT_SECONDS = '0': Input should be greater than or equal",
        ),
        ({"TABML_PORT": "-1"}, "TABML_PORT = '-1': Input should be greater than or equal to 0"),
        (
            {"TABML_OUT_OF_RANGE": "warn"},
            "TABML_OUT_OF_RANGE = 'warn': Input should be 'reject' or 'count'",
        ),
    ],
)
def test_bad_settings_name_variable_value_and_rule(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match="^" + message.replace("(", r"\(")):
        load_settings(environ)


def test_serving_imports_nothing_from_training() -> None:
    code = (
        "import sys, tabml.serve.app, tabml.serve.__main__\n"
        "training = ('sklearn', 'skl2onnx', 'dvc', 'pandas', 'pandera', 'tabml.config',"
        " 'tabml.stages', 'tabml.cli')\n"
        "print([m for m in sys.modules if m.startswith(training)])\n"
    )
    result = run_tool([sys.executable, "-c", code], cwd=REPO_ROOT)
    assert result.stdout.strip() == "[]"


def test_the_contract_with_export_imports_nothing_but_the_standard_library() -> None:
    """Training and serving both import tabml.contract: it takes in neither side's code
    nor any library of theirs."""
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import tabml.contract\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = run_tool([sys.executable, "-c", code], cwd=REPO_ROOT)
    loaded = json.loads(result.stdout)
    assert "tabml.contract" in loaded
    others = {name.split(".")[0] for name in loaded} - {"tabml"}
    assert sorted(others - sys.stdlib_module_names) == []
    assert [name for name in loaded if name.startswith("tabml.")] == ["tabml.contract"]


@pytest.mark.slow
def test_live_server_predicts_and_reports(
    live_server: LiveServer, breast_cancer_model: ExportedModel
) -> None:
    assert http("GET", f"{live_server.url}/health") == (200, b'{"status":"ok"}')
    rows = breast_cancer_model.feature_rows(5)
    status, body = http("POST", f"{live_server.url}/predict", json.dumps(rows).encode())
    assert status == 200
    labels, _ = breast_cancer_model.expected(rows)
    assert [item["label"] for item in json.loads(body)["predictions"]] == labels
    status, body = http("POST", f"{live_server.url}/predict", b"{", "application/json")
    assert status == 400
    status, body = http("GET", f"{live_server.url}/metrics")
    assert b'tabml_http_requests_total{endpoint="/predict",method="POST",status="400"}' in body


@pytest.mark.slow
def test_server_stops_cleanly_on_sigterm(
    breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    server = start_server(
        breast_cancer_model.directory, tmp_path / "server.log", TABML_LOG_LEVEL="info"
    )
    try:
        assert server.ready_seconds < 10
        server.process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once shut down, so the status says "SIGTERM".
        assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        stop_server(server.process)
    log = (tmp_path / "server.log").read_text()
    assert "loaded model tabml-classifier" in log
    assert "Application shutdown complete" in log
    assert "Finished server process" in log


@pytest.mark.slow
def test_server_refuses_to_start_without_a_model(tmp_path: Path) -> None:
    environ = {**os.environ, "TABML_MODEL_DIR": str(tmp_path / "absent"), "TABML_PORT": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "tabml.serve"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "metadata.json: cannot read the metadata" in result.stderr


@pytest.mark.slow
def test_server_refuses_bad_settings(tmp_path: Path) -> None:
    environ = {**os.environ, "TABML_PORT": "eighty"}
    result = subprocess.run(
        [sys.executable, "-m", "tabml.serve"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "TABML_PORT = 'eighty'" in result.stderr


@pytest.mark.slow
def test_prediction_log_on_standard_output_holds_whole_json_lines_only(
    breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    """A container runtime collects standard output: with two workers writing to one
    pipe and the access log on, it must still hold whole JSON lines and nothing else,
    and they must arrive while the server runs, not only at shutdown."""
    environ = {
        **os.environ,
        "TABML_HOST": "127.0.0.1",
        "TABML_PORT": "0",
        "TABML_MODEL_DIR": str(breast_cancer_model.directory),
        "TABML_WORKERS": "2",
        "TABML_ACCESS_LOG": "true",
        "TABML_LOG_LEVEL": "info",
        "TABML_PREDICTION_LOG": "-",
        "TABML_PREDICTION_LOG_SAMPLE_RATE": "1",
    }
    with (tmp_path / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tabml.serve"],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    stdout = process.stdout
    collected = bytearray()

    def read() -> None:
        while chunk := os.read(stdout.fileno(), 1 << 16):
            collected.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    rows = breast_cancer_model.feature_rows(5)
    requests = 120
    try:
        # The port the server bound, from its startup line on standard error.
        url = f"http://127.0.0.1:{port_from_log(tmp_path / 'stderr.log', process, timeout=60)}"
        wait_ready(f"{url}/ready", process, timeout=60)
        body = json.dumps(rows).encode()
        with ThreadPoolExecutor(8) as pool:
            replies = pool.map(lambda _: http("POST", f"{url}/predict", body), range(requests))
            assert {status for status, _ in replies} == {200}
        deadline = time.monotonic() + 10
        while collected.count(b"\n") < requests * len(rows) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert collected.count(b"\n") == requests * len(rows), "lines missing before shutdown"
    finally:
        stop_server(process)
        reader.join(timeout=30)
        stdout.close()
    lines = bytes(collected).splitlines()
    assert len(lines) == requests * len(rows)
    logged = [json.loads(line) for line in lines]
    assert {tuple(line["features"]) for line in logged} == {tuple(rows[0])}
    expected, _ = breast_cancer_model.expected(rows)
    assert sorted(line["prediction"]["label"] for line in logged) == sorted(expected * requests)
    assert b'"POST /predict HTTP/1.1" 200' in (tmp_path / "stderr.log").read_bytes()


# --- what one client can hold, over raw sockets -------------------------------------


def partial_post(server: LiveServer, sent: bytes = b'{"mean radius": ') -> socket.socket:
    """A POST /predict that promises 1,000 bytes of body and sends only `sent`."""
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    connection.sendall(
        b"POST /predict HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
        b"content-length: 1000\r\n\r\n" + sent
    )
    return connection


def read_until_closed(connection: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection."""
    connection.settimeout(timeout)
    received = bytearray()
    while chunk := connection.recv(65536):
        received.extend(chunk)
    return bytes(received)


def read_metrics(server: LiveServer) -> str:
    status, body = http("GET", f"{server.url}/metrics")
    assert status == 200
    return body.decode()


def wait_for_metric(server: LiveServer, series: str, value: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while metric(read_metrics(server), series) != value:
        assert time.monotonic() < deadline, f"{series} never reached {value}"
        time.sleep(0.05)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.mark.slow
def test_a_partial_body_is_cut_off_within_the_body_timeout(
    breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    server = start_server(
        breast_cancer_model.directory,
        tmp_path / "server.log",
        TABML_BODY_TIMEOUT_SECONDS="1",
        TABML_KEEP_ALIVE_TIMEOUT_SECONDS="1",
    )
    try:
        started = time.monotonic()
        with partial_post(server) as connection:
            answer = read_until_closed(connection, timeout=10)
        cut_off = time.monotonic() - started
        print(f"partial body cut off after {cut_off:.3f} s (TABML_BODY_TIMEOUT_SECONDS=1)")
        # Swept every tenth of the timeout: 1.0 to 1.1 s, with room for a busy machine.
        assert 1.0 <= cut_off < 2.5
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 408 ")
        assert b"\r\nconnection: close" in head
        text = read_metrics(server)
        assert metric(text, 'tabml_http_rejected_total{reason="body_timeout"}') == 1
        assert metric(text, "tabml_http_requests_in_flight") == 0

        # An idle keep-alive connection is closed after TABML_KEEP_ALIVE_TIMEOUT_SECONDS.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
            answered = time.monotonic()
            answer = read_until_closed(connection, timeout=10)
            idle = time.monotonic() - answered
        print(f"idle keep-alive connection closed after {idle:.3f} s")
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"status":"ok"}')
        assert 0.9 <= idle < 2.5
    finally:
        stop_server(server.process)


@pytest.mark.slow
def test_connections_whose_request_headers_stall_are_closed(
    breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    server = start_server(
        breast_cancer_model.directory,
        tmp_path / "server.log",
        TABML_HEADER_TIMEOUT_SECONDS="1",
        TABML_KEEP_ALIVE_TIMEOUT_SECONDS="30",
    )
    address = ("127.0.0.1", server.port)
    try:
        with (
            socket.create_connection(address, timeout=10) as silent,
            socket.create_connection(address, timeout=10) as partial,
        ):
            started = time.monotonic()
            partial.sendall(b"POST /predict HTTP/1.1\r\nhost: test\r\n")
            assert read_until_closed(silent, timeout=10) == b""
            assert read_until_closed(partial, timeout=10) == b""
            closed = time.monotonic() - started
        # A later request on a kept-alive connection gets its own deadline, from its
        # first byte.
        with socket.create_connection(address, timeout=10) as second:
            second.sendall(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
            # The whole answer: its head and body may arrive in separate reads.
            first = b""
            while not first.endswith(b'{"status":"ok"}'):
                chunk = second.recv(65536)
                assert chunk, f"closed after {first!r}"
                first += chunk
            assert first.startswith(b"HTTP/1.1 200 ")
            time.sleep(1.5)
            second.sendall(b"GET /health HTTP/1.1\r\n")
            began = time.monotonic()
            assert read_until_closed(second, timeout=10) == b""
            second_closed = time.monotonic() - began
        print(f"stalled headers closed after {closed:.3f} s, {second_closed:.3f} s")
        assert 0.9 <= closed < 2.5
        assert 0.9 <= second_closed < 2.5
        assert (
            metric(read_metrics(server), 'tabml_http_rejected_total{reason="header_timeout"}') == 3
        )
    finally:
        stop_server(server.process)


@pytest.mark.slow
def test_two_hundred_slow_clients_do_not_hold_up_a_normal_one(
    breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    """With the default request slots, 200 clients each holding a partial body leave a
    normal client its prediction within a second, cost the server little memory, and are
    all cut off once the body timeout passes."""
    slow_clients = 200
    server = start_server(
        breast_cancer_model.directory, tmp_path / "server.log", TABML_BODY_TIMEOUT_SECONDS="5"
    )
    body = json.dumps(breast_cancer_model.feature_rows(1)[0]).encode()
    connections: list[socket.socket] = []
    try:
        for _ in range(20):  # warm up: the first predictions allocate what later ones reuse
            assert http("POST", f"{server.url}/predict", body)[0] == 200
        rss_before = rss_bytes(server.process.pid)
        opened = time.monotonic()
        connections = [partial_post(server) for _ in range(slow_clients)]
        wait_for_metric(server, "tabml_http_requests_in_flight", slow_clients, timeout=5)
        latencies = []
        for _ in range(20):
            started = time.monotonic()
            status, _ = http("POST", f"{server.url}/predict", body, timeout=5)
            latencies.append(time.monotonic() - started)
            assert status == 200
        rss_during = rss_bytes(server.process.pid)
        held = time.monotonic() - opened
        assert held < 4.5, "the slow clients were not all held while the normal one asked"
        growth = rss_during - rss_before
        print(
            f"{slow_clients} slow clients: normal /predict max {max(latencies) * 1000:.1f} ms, "
            f"median {sorted(latencies)[10] * 1000:.1f} ms; RSS {rss_before / 2**20:.1f} MiB "
            f"before, {rss_during / 2**20:.1f} MiB during (+{growth / 2**20:.1f} MiB)"
        )
        assert max(latencies) < 1.0
        assert growth < 50 * 2**20
        answers = [read_until_closed(connection, timeout=10) for connection in connections]
        assert {answer[:13] for answer in answers} == {b"HTTP/1.1 408 "}
        text = read_metrics(server)
        assert metric(text, 'tabml_http_rejected_total{reason="body_timeout"}') == slow_clients
        assert metric(text, "tabml_http_requests_in_flight") == 0
    finally:
        for connection in connections:
            connection.close()
        stop_server(server.process)


@pytest.mark.slow
def test_a_request_past_the_slot_limit_gets_503_with_retry_after_not_a_hang(
    breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    server = start_server(
        breast_cancer_model.directory,
        tmp_path / "server.log",
        TABML_MAX_CONCURRENT_REQUESTS="4",
        TABML_BODY_TIMEOUT_SECONDS="2",
    )
    body = json.dumps(breast_cancer_model.feature_rows(1)[0]).encode()
    connections: list[socket.socket] = []
    try:
        connections = [partial_post(server) for _ in range(4)]
        wait_for_metric(server, "tabml_http_requests_in_flight", 4, timeout=5)
        started = time.monotonic()
        with partial_post(server, body.ljust(1000)) as connection:
            answer = read_until_closed(connection, timeout=5)
        refused_in = time.monotonic() - started
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 503 ")
        assert b"\r\nretry-after: 1" in head
        assert b"\r\nconnection: close" in head
        assert refused_in < 1.0
        assert http("GET", f"{server.url}/health")[0] == 200
        assert metric(read_metrics(server), 'tabml_http_rejected_total{reason="overload"}') == 1
        # The body timeout frees the slots the stalled bodies held.
        wait_for_metric(server, 'tabml_http_rejected_total{reason="body_timeout"}', 4, timeout=5)
        assert http("POST", f"{server.url}/predict", body)[0] == 200
    finally:
        for connection in connections:
            connection.close()
        stop_server(server.process)
