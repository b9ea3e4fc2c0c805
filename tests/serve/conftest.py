"""Serving fixtures: models exported into temp folders, an in-process ASGI client, a live server.

Every model here is trained and exported by the pipeline's own functions, so the tests
never depend on a models/ folder left by an earlier `dvc repro`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from tabml.config import DataSchema, Params, load_params, load_schema, parse_schema
from tabml.onnx_graph import to_onnx
from tabml.parity import check_parity
from tabml.parity_report import build_report
from tabml.serve.app import ServingApp
from tabml.serve.settings import Settings
from tabml.stages import export, train
from tabml.stages.ingest import bundled_frame
from tests.ports import port_from_log

if TYPE_CHECKING:
    from tests.serve.test_container import Image

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ExportedModel:
    """model.onnx + metadata.json in `directory`, and the scikit-learn pipeline behind them."""

    directory: Path
    pipeline: Pipeline
    frame: pd.DataFrame
    schema: DataSchema
    metadata: dict[str, Any]

    def feature_rows(self, count: int | None = None) -> list[dict[str, Any]]:
        """Rows as JSON records (NaN as null), the way a client sends them."""
        features = self.frame[list(self.schema.features)]
        if count is not None:
            features = features.head(count)
        records = json.loads(features.to_json(orient="records"))
        return list(records)

    def expected(self, rows: list[dict[str, Any]]) -> tuple[list[str], np.ndarray]:
        """What scikit-learn predicts for `rows`: labels and probabilities."""
        frame = pd.DataFrame(rows, columns=list(self.schema.features))
        for name in self.schema.numeric_features:
            frame[name] = frame[name].astype(float)
        return (
            [str(label) for label in self.pipeline.predict(frame)],
            self.pipeline.predict_proba(frame),
        )


def export_model(
    frame: pd.DataFrame, schema: DataSchema, params: Params, out: Path
) -> ExportedModel:
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
        metrics={
            "accuracy": float(
                (pipeline.predict(frame[list(schema.features)]) == frame[schema.target.name]).mean()
            )
        },
        parity=build_report(
            parity,
            tolerance=tolerance,
            classes=[str(c) for c in pipeline.classes_],
            graph=onnx_bytes,
        ),
        data_version="test-data-version",
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
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return ExportedModel(out, pipeline, frame, schema, metadata)


@pytest.fixture(scope="session")
def serve_params() -> Params:
    return load_params(REPO_ROOT / "params.yaml")


@pytest.fixture(scope="session")
def breast_cancer_model(
    tmp_path_factory: pytest.TempPathFactory, serve_params: Params
) -> ExportedModel:
    """The default dataset and params, as `dvc repro` would export them."""
    schema = load_schema(REPO_ROOT / "schemas" / "breast_cancer.yaml")
    return export_model(
        bundled_frame("breast_cancer"),
        schema,
        serve_params,
        tmp_path_factory.mktemp("breast_cancer_model"),
    )


@pytest.fixture(scope="module")
def image(
    breast_cancer_model: ExportedModel,
    serve_params: Params,
    tmp_path_factory: pytest.TempPathFactory,
) -> Image:
    """The serving image of the default model on Debian bookworm, labelled as release.yml
    labels it (built once per build context: `test_container.build_once`)."""
    # Imported here: the container module imports this conftest.
    from tests.serve.test_container import BOOKWORM, image_on

    return image_on(BOOKWORM, breast_cancer_model, serve_params, tmp_path_factory)


MIXED_SCHEMA = {
    "target": {"name": "label", "classes": ["no", "yes"]},
    "features": {
        "size": {"dtype": "float", "min": 0, "max": 100, "max_null_fraction": 0.2},
        "count": {"dtype": "int", "min": 0, "max": 50},
        "colour": {
            "dtype": "category",
            "allowed": ["red", "green", "blue"],
            "max_null_fraction": 0.0,
        },
    },
}


@pytest.fixture(scope="session")
def mixed_model(tmp_path_factory: pytest.TempPathFactory, serve_params: Params) -> ExportedModel:
    """Float (nullable), int and category features: every decoding path the API has."""
    rng = np.random.default_rng(0)
    size = rng.uniform(0, 100, 200).round(3)
    size[::10] = np.nan
    count = rng.integers(0, 50, 200)
    colour = rng.choice(["red", "green", "blue"], 200)
    score = np.nan_to_num(size, nan=50) / 100 + (colour == "red") * 0.4 - count / 100
    frame = pd.DataFrame(
        {
            "size": size,
            "count": count,
            "colour": colour,
            "label": np.where(score > 0.4, "yes", "no"),
        }
    )
    return export_model(
        frame, parse_schema(MIXED_SCHEMA), serve_params, tmp_path_factory.mktemp("mixed_model")
    )


def with_metadata(
    model: ExportedModel, folder: Path, edit: Callable[[dict[str, Any]], None]
) -> Path:
    """A copy of `model` in `folder`, its metadata.json changed by `edit`."""
    metadata = json.loads(json.dumps(model.metadata))
    edit(metadata)
    (folder / "metadata.json").write_text(json.dumps(metadata))
    (folder / "model.onnx").write_bytes((model.directory / "model.onnx").read_bytes())
    return folder


# --- an in-process client that speaks ASGI directly -------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The scope uvicorn hands the app for one HTTP request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
    }


class ManualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when told to (`advance`): timers, such as
    the prediction log's once-a-second flush, fire when the test says, never because
    the machine was slow."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock on and run what came due, and what that woke, to a standstill."""
        self.now += seconds

        async def settle() -> None:
            for _ in range(10):
                await asyncio.sleep(0)

        self.run_until_complete(settle())


@dataclass
class AsgiClient:
    """Drives the app's lifespan and requests on one event loop, without a server."""

    app: ServingApp
    lifespan: bool = True
    startup: dict[str, Any] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    def __enter__(self) -> AsgiClient:
        if self.lifespan:
            self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            self._sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
            self._task = self.loop.create_task(self.app(scope, self._events.get, self._sent.put))  # type: ignore[arg-type]
            self._events.put_nowait({"type": "lifespan.startup"})
            self.startup = self.loop.run_until_complete(
                asyncio.wait_for(self._sent.get(), timeout=30)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.lifespan and not self._task.done():
            self._events.put_nowait({"type": "lifespan.shutdown"})
            self.loop.run_until_complete(self._task)
        self.loop.close()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        json_body: Any = None,
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
        chunks: list[bytes] | None = None,
    ) -> Reply:
        if json_body is not None:
            body = json.dumps(json_body).encode()
        parts = chunks if chunks is not None else [body or b""]
        sent_headers = [
            (name.lower().encode(), value.encode()) for name, value in (headers or {}).items()
        ]
        if content_type is not None and method == "POST":
            sent_headers.append((b"content-type", content_type.encode()))
        if chunks is None and method == "POST":
            sent_headers.append((b"content-length", str(len(parts[0])).encode()))
        scope = http_scope(method, path, sent_headers)
        messages = [
            {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
            for index, part in enumerate(parts)
        ]
        replies: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            replies.append(message)

        self.loop.run_until_complete(
            asyncio.wait_for(self.app(scope, receive, send), timeout=30)  # type: ignore[arg-type]
        )
        start, *bodies = replies
        return Reply(
            start["status"],
            {name.decode(): value.decode() for name, value in start["headers"]},
            b"".join(message.get("body", b"") for message in bodies),
        )

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, payload: Any) -> Reply:
        return self.request("POST", path, json_body=payload)


def make_client(
    model: ExportedModel, *, loop: asyncio.AbstractEventLoop | None = None, **settings: Any
) -> AsgiClient:
    app = ServingApp(Settings(model_dir=model.directory, **settings))
    return AsgiClient(app) if loop is None else AsgiClient(app, loop=loop)


@pytest.fixture
def client(breast_cancer_model: ExportedModel) -> Iterator[AsgiClient]:
    with make_client(breast_cancer_model) as started:
        assert started.startup == {"type": "lifespan.startup.complete"}
        yield started


@pytest.fixture
def mixed_client(mixed_model: ExportedModel) -> Iterator[AsgiClient]:
    with make_client(mixed_model, max_batch_rows=50, max_body_bytes=4096) as started:
        assert started.startup == {"type": "lifespan.startup.complete"}
        yield started


# --- a real server in a subprocess --------------------------------------------------


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 10,
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"content-type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_ready(url: str, process: subprocess.Popen[bytes] | None, timeout: float) -> float:
    """Seconds until GET url answers 200; fails if the process exits first."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode} before ready")
        try:
            if http("GET", url, timeout=1)[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{url} not ready after {timeout} s")


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    url: str
    ready_seconds: float

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def start_server(model_dir: Path, log_path: Path, **env: str) -> LiveServer:
    """`python -m tabml.serve` on a port the operating system picks (TABML_PORT=0)."""
    environ = {
        **os.environ,
        "TABML_HOST": "127.0.0.1",
        "TABML_PORT": "0",
        "TABML_MODEL_DIR": str(model_dir),
        "TABML_LOG_LEVEL": "info",
        **env,
    }
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tabml.serve"], env=environ, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port_from_log(log_path, process, timeout=30)}"
        wait_ready(f"{url}/ready", process, timeout=30)
    except AssertionError:
        stop_server(process)
        raise AssertionError(log_path.read_text(errors="replace")) from None
    return LiveServer(process, url, time.monotonic() - started)


def stop_server(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.fixture(scope="module")
def live_server(
    breast_cancer_model: ExportedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_server(
        breast_cancer_model.directory, tmp_path_factory.mktemp("live") / "server.log"
    )
    try:
        yield server
    finally:
        stop_server(server.process)
