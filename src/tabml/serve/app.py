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
import gc
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import tabml
from tabml.serve.decode import Feed, RowDecoder
from tabml.serve.http import (
    ClientGoneError,
    HTTPError,
    Receive,
    Response,
    Scope,
    Send,
    check_headers,
    json_response,
    parse_json,
    read_body,
)
from tabml.serve.limits import BodyDeadlines, RequestSlots
from tabml.serve.metrics import Metrics
from tabml.serve.model import ModelLoadError, OnnxModel, Prediction
from tabml.serve.numbers import Outside
from tabml.serve.openapi import openapi_document
from tabml.serve.prediction_log import FLUSH_SECONDS, PredictionLog, open_sink
from tabml.serve.problems import RequestError
from tabml.serve.records_response import RecordsResponse
from tabml.serve.settings import Settings, load_settings
from tabml.serve.v2 import V2Decoder, v2_model_metadata, v2_response

log = logging.getLogger("tabml.serve")


class ServingApp:
    """The ASGI application. `create_app()` builds one from the environment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.model: OnnxModel | None = None
        self.decoder: RowDecoder | None = None
        self.v2_decoder: V2Decoder | None = None
        self.records_response: RecordsResponse | None = None
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
        # The loaded model's inference paths, resolved once rather than per request:
        # path -> (the metric's endpoint label, method, handler).
        self._model_routes: dict[
            str, tuple[str, str, Callable[[Receive], Awaitable[Response]]]
        ] = {}

    # --- startup -----------------------------------------------------------------

    def load(self) -> None:
        """Load model.onnx and metadata.json; raises ModelLoadError with the reason."""
        model = OnnxModel.load(self.settings.model_path, self.settings.metadata_path)
        self.decoder = RowDecoder(
            model.features, self.settings.max_batch_rows, out_of_range=self.settings.out_of_range
        )
        self.v2_decoder = V2Decoder(self.decoder)
        self.records_response = RecordsResponse(model.name, model.version, model.classes)
        self.metrics.watch_ranges(self.decoder.numeric_names, list(self.decoder.rule.range_rules))
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
        self._v2_model_body = orjson.dumps(v2_model_metadata(model))
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
        for path in (
            f"/v2/models/{model.name}/infer",
            f"/v2/models/{model.name}/versions/{model.version}/infer",
        ):
            # The served model's inference paths go straight to the handler: the name
            # and version a dynamic route checks on each request are known to match.
            template, method, _ = self._dynamic_route(path)
            self._model_routes[path] = (template, method, self.infer_v2)
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
                model_route = self._model_routes.get(path)
                endpoint, allowed, handler = (
                    model_route if model_route is not None else self._dynamic_route(path)
                )
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
                check_headers(scope, self.settings.max_body_bytes)
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
        except RequestError as error:
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
                        return await self.infer_v2(receive)
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

    def require_model(self) -> tuple[OnnxModel, RowDecoder, V2Decoder, RecordsResponse]:
        """What load() made of the model: the model, both decoders and the REST responses;
        503 until a model is loaded. Handlers call it, and so does the request profile
        (benchmarks/serve_profile.py), which times each part of a request alone."""
        if (
            self.model is None
            or self.decoder is None
            or self.v2_decoder is None
            or self.records_response is None
        ):
            raise HTTPError(503, "the model is not loaded yet")
        return self.model, self.decoder, self.v2_decoder, self.records_response

    def _model_named(self, name: str, version: str | None) -> OnnxModel:
        model, _, _, _ = self.require_model()
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
        model, decoder, _, records = self.require_model()
        body = await read_body(receive, self.settings.max_body_bytes, self.body_deadlines)
        plain = decoder.decode_plain_records(body)
        outside: Outside = None  # the plain path takes only values within their ranges
        if plain is not None:
            feed, _, single = plain
        else:
            payload = parse_json(body)
            feed, _, outside = decoder.decode_records(payload)
            single = isinstance(payload, dict)
        prediction = self._predict(
            model,
            decoder,
            feed,
            outside,
            status=422,
            locate_row=lambda row: "body" if single else f"[{row}]",
        )
        return Response(200, records.body(prediction.labels, prediction.probabilities))

    async def infer_v2(self, receive: Receive) -> Response:
        model, decoder, v2_decoder, _ = self.require_model()
        body = await read_body(receive, self.settings.max_body_bytes, self.body_deadlines)
        feed, _, outputs, outside, request_id = v2_decoder.decode_body(body)
        prediction = self._predict(
            model,
            decoder,
            feed,
            outside,
            status=400,
            locate_row=lambda row: f"inputs[*].data[{row}]",
        )
        return json_response(
            v2_response(model, prediction.labels, prediction.probabilities, outputs, request_id)
        )

    def _predict(
        self,
        model: OnnxModel,
        decoder: RowDecoder,
        feed: Feed,
        outside: Outside,
        *,
        status: int,
        locate_row: Callable[[int], str],
    ) -> Prediction:
        """The one prediction path of /predict and V2 inference: count the values outside
        their ranges, run the model, refuse rows whose probabilities are not finite (with
        `status`, each row named by `locate_row`), count the predictions and log them."""
        if outside is not None:
            self.metrics.observe_outside(outside)
        prediction = model.predict(feed)
        decoder.reject_non_finite(feed, prediction.probabilities, status, locate_row)
        self.metrics.observe_predictions(prediction.labels)
        if self.prediction_log is not None:
            self.prediction_log.record(
                feed, prediction.labels, prediction.probabilities, outside=outside
            )
        return prediction

    async def health(self, receive: Receive) -> Response:
        return json_response({"status": "ok"})

    async def ready(self, receive: Receive) -> Response:
        self.require_model()
        return json_response({"status": "ok"})

    async def health_v2(self, receive: Receive) -> Response:
        return json_response({"live": True})

    async def ready_v2(self, receive: Receive) -> Response:
        self.require_model()
        return json_response({"ready": True})

    async def v2_server(self, receive: Receive) -> Response:
        server = {"name": tabml.DISTRIBUTION, "version": tabml.__version__, "extensions": []}
        return json_response(server)

    async def metadata(self, receive: Receive) -> Response:
        self.require_model()
        return Response(200, self._metadata_body)

    async def model_card(self, receive: Receive) -> Response:
        self.require_model()
        if self._model_card_body is None:
            raise HTTPError(
                404,
                f"no model card: {self.settings.model_card_path} was not shipped with the model",
            )
        return Response(200, self._model_card_body, b"text/markdown; charset=utf-8")

    async def openapi(self, receive: Receive) -> Response:
        self.require_model()
        return Response(200, self._openapi_body)

    async def prometheus(self, receive: Receive) -> Response:
        return Response(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST.encode())


def create_app(settings: Settings | None = None) -> ServingApp:
    """The ASGI app; uvicorn calls this as a factory (`--factory`)."""
    return ServingApp(settings if settings is not None else load_settings())
