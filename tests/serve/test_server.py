"""The API as it runs in production: `python -m tabml.serve` under uvicorn, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tabml.serve.settings import Settings, SettingsError, load_settings
from tests.serve.conftest import (
    REPO_ROOT,
    ExportedModel,
    LiveServer,
    free_port,
    http,
    start_server,
    stop_server,
    wait_ready,
)
from tests.tools import run_tool


def test_settings_from_environment() -> None:
    settings = load_settings(
        {
            "TABML_PORT": "9000",
            "TABML_MODEL_DIR": "/srv/model",
            "TABML_MAX_BATCH_ROWS": "5",
            "TABML_ACCESS_LOG": "true",
            "TABML_LOG_LEVEL": "debug",
            "OTHER": "ignored",
        }
    )
    assert settings.port == 9000
    assert settings.model_path == Path("/srv/model/model.onnx")
    assert settings.max_batch_rows == 5
    assert settings.access_log is True
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
    port = free_port()
    environ = {
        **os.environ,
        "TABML_HOST": "127.0.0.1",
        "TABML_PORT": str(port),
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
    url = f"http://127.0.0.1:{port}"
    try:
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
