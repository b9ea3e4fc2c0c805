"""What one client can hold, in-process: the body deadline and the request slots."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tabml.serve.limits import BodyDeadlines
from tests.serve.conftest import AsgiClient, ExportedModel, http_scope, make_client
from tests.serve.test_api import metric

JSON_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"1000")]


@dataclass
class StalledRequest:
    """A POST whose body starts and never finishes, running on the client's loop."""

    task: asyncio.Task[None]
    sent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])


def start_stalled(client: AsgiClient, path: str = "/predict") -> StalledRequest:
    pending = [{"type": "http.request", "body": b'{"mean radius": ', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # the rest of the body never comes
        raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = http_scope("POST", path, JSON_HEADERS)
    task = client.loop.create_task(client.app(scope, receive, send))  # type: ignore[arg-type]
    client.loop.run_until_complete(asyncio.sleep(0.01))  # into its body's second receive
    assert not task.done()
    return StalledRequest(task, sent)


def finish(client: AsgiClient, request: StalledRequest, timeout: float) -> float:
    """Seconds until the stalled request's task ends (its answer sent)."""
    started = time.monotonic()
    client.loop.run_until_complete(asyncio.wait_for(asyncio.shield(request.task), timeout))
    return time.monotonic() - started


@pytest.fixture
def quick_timeout_client(breast_cancer_model: ExportedModel) -> Iterator[AsgiClient]:
    with make_client(breast_cancer_model, body_timeout_seconds=0.3) as started:
        yield started


def test_a_body_that_stops_arriving_gets_408_and_the_connection_closed(
    quick_timeout_client: AsgiClient,
) -> None:
    client = quick_timeout_client
    request = start_stalled(client)
    assert metric(client.get("/metrics").body.decode(), "tabml_http_requests_in_flight") == 1
    waited = finish(client, request, timeout=5)
    # The sweeper runs every tenth of the timeout: cut off within 0.3 s to 0.33 s of the
    # start, with room for a loaded machine.
    assert 0.2 < waited < 1.5
    assert request.status == 408
    assert request.headers[b"connection"] == b"close"
    error = json.loads(request.sent[1]["body"])["error"]
    assert "TABML_BODY_TIMEOUT_SECONDS" in error
    assert error.startswith("body: 16 bytes arrived within 0.3 s")
    text = client.get("/metrics").body.decode()
    assert metric(text, 'tabml_http_rejected_total{reason="body_timeout"}') == 1
    assert metric(text, 'tabml_http_rejected_total{reason="overload"}') == 0
    assert (
        metric(text, 'tabml_http_requests_total{endpoint="/predict",method="POST",status="408"}')
        == 1
    )
    assert metric(text, "tabml_http_requests_in_flight") == 0


def test_a_slow_body_that_arrives_within_the_timeout_is_answered(
    quick_timeout_client: AsgiClient, breast_cancer_model: ExportedModel
) -> None:
    body = json.dumps(breast_cancer_model.feature_rows(1)[0]).encode()
    pieces = [body[:10], body[10:20], body[20:]]

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    client = quick_timeout_client
    scope = http_scope("POST", "/predict", JSON_HEADERS)
    client.loop.run_until_complete(client.app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 200


def test_a_body_that_trickles_is_cut_off_at_the_deadline_not_after_each_byte(
    quick_timeout_client: AsgiClient,
) -> None:
    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.02)
        return {"type": "http.request", "body": b" ", "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    client = quick_timeout_client
    scope = http_scope("POST", "/predict", JSON_HEADERS)
    started = time.monotonic()
    client.loop.run_until_complete(
        asyncio.wait_for(client.app(scope, receive, send), 5)  # type: ignore[arg-type]
    )
    assert time.monotonic() - started < 1.5
    assert sent[0]["status"] == 408


def test_cancellation_from_elsewhere_is_not_taken_for_a_late_body(
    quick_timeout_client: AsgiClient,
) -> None:
    """A server shutting down cancels requests too: they must stay cancelled."""
    client = quick_timeout_client
    request = start_stalled(client)
    request.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        client.loop.run_until_complete(request.task)
    assert request.sent == []
    text = client.get("/metrics").body.decode()
    assert metric(text, 'tabml_http_rejected_total{reason="body_timeout"}') == 0
    assert metric(text, "tabml_http_requests_in_flight") == 0


def test_requests_past_the_slot_limit_get_503_with_retry_after(
    breast_cancer_model: ExportedModel,
) -> None:
    row = breast_cancer_model.feature_rows(1)[0]
    with make_client(breast_cancer_model, max_concurrent_requests=2) as client:
        infer = f"/v2/models/{breast_cancer_model.metadata['model']['name']}/infer"
        stalled = [start_stalled(client), start_stalled(client, infer)]
        refused = client.post("/predict", row)
        assert refused.status == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["connection"] == "close"
        assert "TABML_MAX_CONCURRENT_REQUESTS" in refused.json()["error"]
        # Requests without a body take no slot: probes and scrapes still get through.
        assert client.get("/health").status == 200
        text = client.get("/metrics").body.decode()
        assert metric(text, 'tabml_http_rejected_total{reason="overload"}') == 1
        assert metric(text, "tabml_http_requests_in_flight") == 2
        assert (
            metric(
                text, 'tabml_http_requests_total{endpoint="/predict",method="POST",status="503"}'
            )
            == 1
        )
        for request in stalled:
            request.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                client.loop.run_until_complete(request.task)
        assert client.post("/predict", row).status == 200
        text = client.get("/metrics").body.decode()
        assert metric(text, "tabml_http_requests_in_flight") == 0


def test_sweep_cancels_only_the_bodies_past_their_deadline() -> None:
    async def scenario() -> None:
        deadlines = BodyDeadlines(timeout=10)
        assert deadlines.sweep_seconds == 1.0
        never = asyncio.Event()
        early, late = (asyncio.create_task(never.wait()) for _ in range(2))
        deadlines.watch(early)
        deadlines.watch(late)
        deadlines._reading[early] -= 20  # started 20 s ago
        assert deadlines.sweep(time.monotonic()) == 1
        await asyncio.sleep(0)
        assert early.cancelled()
        assert not late.done()
        assert deadlines.expired(early)
        assert not deadlines.expired(late)
        assert deadlines.timed_out == 1
        deadlines.unwatch(early)
        deadlines.unwatch(late)
        assert not deadlines.expired(early)
        assert deadlines.sweep(time.monotonic() + 60) == 0
        late.cancel()

    asyncio.run(scenario())


def test_short_timeouts_are_swept_a_tenth_as_often() -> None:
    assert BodyDeadlines(timeout=0.5).sweep_seconds == pytest.approx(0.05)
