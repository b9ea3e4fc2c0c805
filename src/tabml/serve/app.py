"""The prediction API: a plain ASGI application, served by uvicorn.

Written against ASGI directly rather than a web framework because, for rows of a few
dozen numbers, framework overhead and not inference decides the throughput. The model
is loaded by the lifespan startup event into the app instance, never at import.

Routes
  POST /predict                       one row (object) or a batch (array of objects)
  GET  /health  /ready  /metadata  /model-card  /metrics  /openapi.json
  Open Inference Protocol (KServe V2): GET /v2, /v2/health/live, /v2/health/ready,
  /v2/models/{name}[/versions/{version}], .../ready, POST .../infer
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import gc
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

import tabml
from tabml.serve.limits import BodyDeadlines, RequestSlots
from tabml.serve.model import LABEL_OUTPUT, PROBABILITIES_OUTPUT, ModelLoadError, OnnxModel
from tabml.serve.prediction_log import FLUSH_SECONDS, PredictionLog, open_sink
from tabml.serve.protocol import HeaderDeadlineProtocol
from tabml.serve.schema import (
    InputError,
    Outside,
    Problem,
    RowDecoder,
    openapi_document,
    records_response,
    v2_response,
)
from tabml.serve.settings import Settings, load_settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("tabml.serve")

JSON = b"application/json"
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class HTTPError(Exception):
    """A response other than 200 that is not about the request body's content."""

    def __init__(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


class ClientGoneError(Exception):
    """The client disconnected before the body arrived: nobody to answer."""


@dataclass
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(payload, option=_DUMPS_OPTIONS))


class _Tally:
    """A count, a sum and per-bucket counts: one histogram series (or a counter's)."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self, bounds: int) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (bounds + 1)  # the last one is +Inf

    def cumulative(self, bounds: tuple[float, ...]) -> list[tuple[str, float]]:
        running = 0
        points: list[tuple[str, float]] = []
        for bound, hits in zip((*map(str, bounds), "+Inf"), self.buckets, strict=True):
            running += hits
            points.append((bound, running))
        return points


class Metrics:
    """Prometheus metrics, in a registry of their own so each app counts only itself.

    prometheus_client's Counter and Histogram take a lock on every update, and four
    updates a request cost more than the rest of a single-row prediction's bookkeeping.
    The app runs in one thread per process, so requests add to plain numbers here and
    `collect()` turns them into metric families when /metrics is read."""

    LATENCY_BUCKETS = (
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
    )
    BATCH_BUCKETS = (1.0, 10.0, 100.0, 1000.0, 10_000.0)

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.model_info = Gauge(
            "tabml_model_info",
            "The loaded model (value 1)",
            ["name", "version", "data_version"],
            registry=self.registry,
        )
        # Readiness as a series, for alerts: `up` says /metrics answered, not that a
        # model is loaded, and a probe's answer never reaches Prometheus.
        self.ready = Gauge(
            "tabml_ready",
            "1 while the model is loaded and requests are served, else 0",
            registry=self.registry,
        )
        # The class mix of the training labels, from metadata.json: what the predicted
        # class mix (tabml_predicted_class_total) is held against as a fast drift signal.
        self.training_class_ratio = Gauge(
            "tabml_training_class_ratio",
            "Share of each class among the training rows' labels (metadata.json)",
            ["class"],
            registry=self.registry,
        )
        self._requests: dict[tuple[str, str, int], _Tally] = {}
        self._classes: collections.Counter[str] = collections.Counter()
        self._batch_rows = _Tally(len(self.BATCH_BUCKETS))
        # Values outside their feature's schema range, refused or accepted, by feature.
        self._out_of_range: dict[str, int] = {}
        self._numeric_names: Sequence[str] = ()
        self.prediction_log: PredictionLog | None = None
        self.slots: RequestSlots | None = None
        self.body_deadlines: BodyDeadlines | None = None
        self.registry.register(self)

    def watch_ranges(self, numeric_names: Sequence[str], ranged: Iterable[str]) -> None:
        """Count out-of-range values of the `ranged` features (each from zero, so that a
        rate is defined before the first one); `numeric_names` are the columns of the
        masks `observe_outside` gets."""
        self._numeric_names = numeric_names
        self._out_of_range = dict.fromkeys(ranged, 0)

    def observe_outside(self, outside: Outside) -> None:
        """Count accepted values outside their range: True cells of [rows, features]."""
        if outside is None:
            return
        for name, count in zip(self._numeric_names, outside.sum(axis=0).tolist(), strict=True):
            if count:
                self._out_of_range[name] += count

    def observe_refused(self, problems: Iterable[Problem]) -> None:
        """Count refused values outside their range among a request's problems."""
        for problem in problems:
            if problem.out_of_range is not None:
                self._out_of_range[problem.out_of_range] += 1

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        tally = self._requests.get((endpoint, method, status))
        if tally is None:
            tally = self._requests[endpoint, method, status] = _Tally(len(self.LATENCY_BUCKETS))
        tally.count += 1
        tally.total += seconds
        tally.buckets[bisect.bisect_left(self.LATENCY_BUCKETS, seconds)] += 1

    def observe_predictions(self, labels: list[str]) -> None:
        rows = len(labels)
        batch = self._batch_rows
        batch.count += 1
        batch.total += rows
        batch.buckets[bisect.bisect_left(self.BATCH_BUCKETS, rows)] += 1
        if rows == 1:
            self._classes[labels[0]] += 1
        else:
            self._classes.update(labels)

    def collect(self) -> Iterator[Metric]:
        """The metric families, for the registry (called when /metrics is read)."""
        requests = CounterMetricFamily(
            "tabml_http_requests",
            "HTTP requests by endpoint, method and status",
            labels=["endpoint", "method", "status"],
        )
        by_status: dict[tuple[str, str], _Tally] = {}
        for (endpoint, method, status), tally in sorted(self._requests.items()):
            requests.add_metric([endpoint, method, str(status)], tally.count)
            merged = by_status.setdefault(
                (endpoint, str(status)), _Tally(len(self.LATENCY_BUCKETS))
            )
            merged.count += tally.count
            merged.total += tally.total
            merged.buckets = [a + b for a, b in zip(merged.buckets, tally.buckets, strict=True)]
        yield requests
        latency = HistogramMetricFamily(
            "tabml_http_request_duration_seconds",
            "Time from request to response by endpoint and status",
            labels=["endpoint", "status"],
        )
        for labels, tally in by_status.items():
            latency.add_metric(
                list(labels), tally.cumulative(self.LATENCY_BUCKETS), sum_value=tally.total
            )
        yield latency
        predicted = CounterMetricFamily(
            "tabml_predicted_class", "Rows predicted per class", labels=["class"]
        )
        for label, count in sorted(self._classes.items()):
            predicted.add_metric([label], count)
        yield predicted
        batch = HistogramMetricFamily("tabml_prediction_batch_rows", "Rows per prediction request")
        batch.add_metric(
            [], self._batch_rows.cumulative(self.BATCH_BUCKETS), sum_value=self._batch_rows.total
        )
        yield batch
        out_of_range = CounterMetricFamily(
            "tabml_out_of_range_values",
            "Numeric values outside their feature's range in the model's data schema, by "
            "feature: refused, or accepted under TABML_OUT_OF_RANGE=count",
            labels=["feature"],
        )
        for name, count in self._out_of_range.items():
            out_of_range.add_metric([name], count)
        yield out_of_range
        if self.prediction_log is not None:
            logged = CounterMetricFamily(
                "tabml_prediction_log_rows",
                "Sampled rows by what became of their prediction-log line",
                labels=["outcome"],
            )
            logged.add_metric(["written"], self.prediction_log.written_rows)
            logged.add_metric(["dropped"], self.prediction_log.dropped_rows)
            logged.add_metric(["pending"], self.prediction_log.pending_rows)
            yield logged
        yield from self._collect_limits()

    def _collect_limits(self) -> Iterator[Metric]:
        if self.slots is None or self.body_deadlines is None:
            return
        rejected = CounterMetricFamily(
            "tabml_http_rejected",
            "Requests cut off or turned away to bound what clients hold, by reason",
            labels=["reason"],
        )
        rejected.add_metric(["body_timeout"], self.body_deadlines.timed_out)
        # Connections, not requests: the app never sees a request whose headers stall.
        rejected.add_metric(["header_timeout"], HeaderDeadlineProtocol.closed_for_header_timeout)
        rejected.add_metric(["overload"], self.slots.rejected)
        yield rejected
        yield GaugeMetricFamily(
            "tabml_http_requests_in_flight",
            "Requests with a body being received or answered",
            value=self.slots.in_use,
        )


class ServingApp:
    """The ASGI application. `create_app()` builds one from the environment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.model: OnnxModel | None = None
        self.decoder: RowDecoder | None = None
        self._metadata_body = b""
        self._openapi_body = b""
        self._v2_model_body = b""
        self._model_card_body: bytes | None = None
        self.prediction_log: PredictionLog | None = None
        self._log_flusher: asyncio.Task[None] | None = None
        self.slots = self.metrics.slots = RequestSlots(settings.max_concurrent_requests)
        self.body_deadlines = self.metrics.body_deadlines = BodyDeadlines(
            settings.body_timeout_seconds
        )
        self._deadline_sweeper: asyncio.Task[None] | None = None
        self._routes: dict[str, tuple[str, Callable[[Receive], Awaitable[Response]]]] = {
            "/predict": ("POST", self.predict),
            "/health": ("GET", self.health),
            "/ready": ("GET", self.ready),
            "/metadata": ("GET", self.metadata),
            "/model-card": ("GET", self.model_card),
            "/metrics": ("GET", self.prometheus),
            "/openapi.json": ("GET", self.openapi),
            "/v2": ("GET", self.v2_server),
            "/v2/health/live": ("GET", self.health_v2),
            "/v2/health/ready": ("GET", self.ready_v2),
        }

    # --- startup -----------------------------------------------------------------

    def load(self) -> None:
        """Load model.onnx and metadata.json; raises ModelLoadError with the reason."""
        model = OnnxModel.load(self.settings.model_path, self.settings.metadata_path)
        probabilities = next(
            item for item in model.session.get_outputs() if item.name == PROBABILITIES_OUTPUT
        )
        width = probabilities.shape[-1] if probabilities.shape else None
        if isinstance(width, int) and width != len(model.classes):
            raise ModelLoadError(
                f"{self.settings.model_path}: '{PROBABILITIES_OUTPUT}' has {width} columns but "
                f"metadata.json lists {len(model.classes)} classes"
            )
        self.decoder = RowDecoder(
            model.features, self.settings.max_batch_rows, out_of_range=self.settings.out_of_range
        )
        self.metrics.watch_ranges(self.decoder.numeric_names, list(self.decoder.range_rules))
        self._metadata_body = orjson.dumps(model.raw_metadata)
        self._openapi_body = orjson.dumps(
            openapi_document(
                model,
                self.settings.max_batch_rows,
                self.settings.max_body_bytes,
                tabml.__version__,
                out_of_range=self.settings.out_of_range,
            )
        )
        self._v2_model_body = orjson.dumps(self._v2_model_metadata(model))
        card = self.settings.model_card_path
        self._model_card_body = card.read_bytes() if card.is_file() else None
        self.metrics.model_info.labels(
            model.name, model.version, str(model.metadata.data.version)
        ).set(1)
        for label, share in (model.metadata.target.training_class_ratio or {}).items():
            self.metrics.training_class_ratio.labels(label).set(share)
        if self.settings.prediction_log is not None:
            target = str(self.settings.prediction_log)
            try:
                sink, chunk_bytes = open_sink(target)
            except OSError as error:
                raise ModelLoadError(f"TABML_PREDICTION_LOG = {target!r}: {error}") from None
            self.prediction_log = self.metrics.prediction_log = PredictionLog(
                sink,
                self.settings.prediction_log_sample_rate,
                model.version,
                model.classes,
                self.decoder.numeric_names,
                [feature.name for feature in self.decoder.categorical],
                chunk_bytes=chunk_bytes,
            )
        self.model = model
        log.info(
            "loaded model %s version %s (%d features, classes %s) from %s in %.0f ms",
            model.name,
            model.version,
            len(model.features),
            model.classes,
            self.settings.model_dir,
            model.load_seconds * 1000,
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.load()
                except ModelLoadError as error:
                    log.error("cannot start: %s", error)
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                except Exception as error:
                    log.exception("cannot start")
                    await send({"type": "lifespan.startup.failed", "message": repr(error)})
                    return
                # Everything alive now (modules, the model, the schemas: ~50k objects) lives
                # as long as the process. Frozen, it is left out of the garbage collector's
                # full passes, which would otherwise scan it all and stall a request for
                # ~15 ms every few seconds under load.
                gc.collect()
                gc.freeze()
                if self.prediction_log is not None:
                    self._log_flusher = asyncio.create_task(
                        self._flush_every_second(self.prediction_log)
                    )
                self._deadline_sweeper = asyncio.create_task(self.body_deadlines.sweep_forever())
                self.metrics.ready.set(1)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.metrics.ready.set(0)
                if self._deadline_sweeper is not None:
                    self._deadline_sweeper.cancel()
                if self._log_flusher is not None:
                    self._log_flusher.cancel()
                if self.prediction_log is not None:
                    self.prediction_log.close()
                    self.prediction_log.sink.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _flush_every_second(prediction_log: PredictionLog) -> None:
        """Lines of sampled rows reach the log within about a second, traffic or none."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            prediction_log.flush()

    # --- ASGI entry --------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        # Unknown paths share one label, so scanners cannot grow the metric series.
        endpoint = "unmatched"
        try:
            route = self._routes.get(path)
            if route is None:
                endpoint, allowed, handler = self._dynamic_route(path)
            else:
                endpoint = path
                allowed, handler = route
            if method != allowed:
                raise HTTPError(
                    405,
                    f"{method} {path}: method not allowed, use {allowed}",
                    [(b"allow", allowed.encode())],
                )
            if method == "POST":
                self._check_headers(scope)
                # Counted here rather than in a helper coroutine, whose extra await
                # would run on every prediction.
                slots = self.slots
                if slots.in_use >= slots.limit:
                    raise self._overloaded()
                slots.in_use += 1
                try:
                    response = await handler(receive)
                finally:
                    slots.in_use -= 1
            else:
                response = await handler(receive)
        except InputError as error:
            self.metrics.observe_refused(error.problems)
            response = json_response(error.body(), error.status)
        except HTTPError as error:
            response = json_response({"error": error.message}, error.status)
            response.headers = error.headers
        except ClientGoneError:
            self.metrics.observe_request(endpoint, method, 499, time.perf_counter() - started)
            return
        except Exception:
            log.exception("%s %s failed", method, path)
            response = json_response(
                {"error": "internal error; the server log has the details"}, 500
            )
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type),
                    (b"content-length", str(len(response.body)).encode()),
                    *response.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
        self.metrics.observe_request(
            endpoint, method, response.status, time.perf_counter() - started
        )

    def _dynamic_route(
        self, path: str
    ) -> tuple[str, str, Callable[[Receive], Awaitable[Response]]]:
        """The /v2/models/{name}[/versions/{version}][/ready|/infer] family."""
        if path.startswith("/v2/models/"):
            parts = path[len("/v2/models/") :].split("/")
            name, rest = parts[0], parts[1:]
            template = "/v2/models/{name}"
            if len(rest) >= 2 and rest[0] == "versions":
                version, rest = rest[1], rest[2:]
                template += "/versions/{version}"
            else:
                version = None
            action = rest[0] if len(rest) == 1 else ("" if not rest else None)
            if name and action in {"", "ready", "infer"}:
                template += f"/{action}" if action else ""

                async def handler(receive: Receive) -> Response:
                    model = self._model_named(name, version)
                    if action == "ready":
                        return json_response({"name": model.name, "ready": True})
                    if action == "infer":
                        return await self.infer_v2(receive, model)
                    return Response(200, self._v2_model_body)

                return template, "POST" if action == "infer" else "GET", handler
        raise HTTPError(404, f"no route {path}; /openapi.json lists the routes")

    def _overloaded(self) -> HTTPError:
        """A request with a body while every request slot is taken: 503 and Retry-After."""
        self.slots.rejected += 1
        return HTTPError(
            503,
            f"busy: {self.slots.limit} requests are being received or answered, the most "
            "this server takes at once (TABML_MAX_CONCURRENT_REQUESTS); retry shortly",
            [(b"retry-after", b"1"), (b"connection", b"close")],
        )

    def _check_headers(self, scope: Scope) -> None:
        content_type = b""
        length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
        media_type = content_type.split(b";", 1)[0].strip().lower()
        if media_type != JSON:
            raise HTTPError(
                415,
                f"content-type = {content_type.decode('latin-1')!r}: the body "
                "must be JSON, sent as application/json",
            )
        if length is not None and length.isdigit() and int(length) > self.settings.max_body_bytes:
            raise HTTPError(
                413,
                f"content-length = {int(length)}: the body may hold at most "
                f"{self.settings.max_body_bytes} bytes (TABML_MAX_BODY_BYTES)",
            )

    async def _read_body(self, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        deadlines = self.body_deadlines
        task = asyncio.current_task()
        if task is not None:
            deadlines.watch(task)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGoneError
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise HTTPError(
                        413,
                        f"body: more than {limit} bytes; the body may hold at most "
                        f"{limit} bytes (TABML_MAX_BODY_BYTES)",
                    )
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            if task is None or not deadlines.expired(task):
                raise
            task.uncancel()
            # Connection: close makes uvicorn close the socket once the answer is sent:
            # the rest of a late body must not start a request of its own.
            raise HTTPError(
                408,
                f"body: {size} bytes arrived within {deadlines.timeout:g} s, not the whole "
                "body; it must arrive within TABML_BODY_TIMEOUT_SECONDS of the request's "
                "start",
                [(b"connection", b"close")],
            ) from None
        finally:
            if task is not None:
                deadlines.unwatch(task)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @staticmethod
    def _parse_json(body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as strict_error:
            # orjson refuses NaN and Infinity (they are not JSON). Parse leniently once
            # more so the row checks can name the feature that holds one.
            try:
                return json.loads(body)
            except (ValueError, RecursionError):
                raise InputError.one(400, "body", f"must be valid JSON ({strict_error})") from None

    def _require_model(self) -> tuple[OnnxModel, RowDecoder]:
        if self.model is None or self.decoder is None:
            raise HTTPError(503, "the model is not loaded yet")
        return self.model, self.decoder

    def _model_named(self, name: str, version: str | None) -> OnnxModel:
        model, _ = self._require_model()
        if name != model.name:
            raise HTTPError(404, f"model {name!r} not found; this server serves {model.name!r}")
        if version is not None and version != model.version:
            raise HTTPError(
                404,
                f"model {name!r} version {version!r} not found; this server "
                f"serves version {model.version!r}",
            )
        return model

    # --- handlers ----------------------------------------------------------------

    async def predict(self, receive: Receive) -> Response:
        model, decoder = self._require_model()
        body = await self._read_body(receive)
        plain = decoder.decode_plain_records(body)
        outside: Outside = None  # the plain path takes only values within their ranges
        if plain is not None:
            feed, _, single = plain
        else:
            payload = self._parse_json(body)
            feed, _, outside = decoder.decode_records(payload)
            single = isinstance(payload, dict)
            self.metrics.observe_outside(outside)
        prediction = model.predict(feed)
        decoder.reject_non_finite(
            feed, prediction.probabilities, 422, lambda row: "body" if single else f"[{row}]"
        )
        self.metrics.observe_predictions(prediction.labels)
        if self.prediction_log is not None:
            self.prediction_log.record(
                feed, prediction.labels, prediction.probabilities, outside=outside
            )
        return json_response(records_response(model, prediction.labels, prediction.probabilities))

    async def infer_v2(self, receive: Receive, model: OnnxModel) -> Response:
        _, decoder = self._require_model()
        payload = self._parse_json(await self._read_body(receive))
        feed, _, outputs, outside = decoder.decode_v2(payload)
        self.metrics.observe_outside(outside)
        prediction = model.predict(feed)
        decoder.reject_non_finite(
            feed, prediction.probabilities, 400, lambda row: f"inputs[*].data[{row}]"
        )
        self.metrics.observe_predictions(prediction.labels)
        if self.prediction_log is not None:
            self.prediction_log.record(
                feed, prediction.labels, prediction.probabilities, outside=outside
            )
        return json_response(
            v2_response(
                model, prediction.labels, prediction.probabilities, outputs, payload.get("id")
            )
        )

    async def health(self, receive: Receive) -> Response:
        return json_response({"status": "ok"})

    async def ready(self, receive: Receive) -> Response:
        self._require_model()
        return json_response({"status": "ok"})

    async def health_v2(self, receive: Receive) -> Response:
        return json_response({"live": True})

    async def ready_v2(self, receive: Receive) -> Response:
        self._require_model()
        return json_response({"ready": True})

    async def v2_server(self, receive: Receive) -> Response:
        server = {"name": tabml.DISTRIBUTION, "version": tabml.__version__, "extensions": []}
        return json_response(server)

    async def metadata(self, receive: Receive) -> Response:
        self._require_model()
        return Response(200, self._metadata_body)

    async def model_card(self, receive: Receive) -> Response:
        self._require_model()
        if self._model_card_body is None:
            raise HTTPError(
                404,
                f"no model card: {self.settings.model_card_path} was not shipped with the model",
            )
        return Response(200, self._model_card_body, b"text/markdown; charset=utf-8")

    async def openapi(self, receive: Receive) -> Response:
        self._require_model()
        return Response(200, self._openapi_body)

    async def prometheus(self, receive: Receive) -> Response:
        return Response(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST.encode())

    @staticmethod
    def _v2_model_metadata(model: OnnxModel) -> dict[str, Any]:
        return {
            "name": model.name,
            "versions": [model.version],
            "platform": "onnxruntime_onnx",
            "inputs": [
                {
                    "name": feature.name,
                    "datatype": "FP32" if feature.numeric else "BYTES",
                    "shape": [-1, 1],
                }
                for feature in model.features
            ],
            "outputs": [
                {"name": LABEL_OUTPUT, "datatype": "BYTES", "shape": [-1]},
                {
                    "name": PROBABILITIES_OUTPUT,
                    "datatype": "FP32",
                    "shape": [-1, len(model.classes)],
                },
            ],
        }


def create_app(settings: Settings | None = None) -> ServingApp:
    """The ASGI app; uvicorn calls this as a factory (`--factory`)."""
    return ServingApp(settings if settings is not None else load_settings())
