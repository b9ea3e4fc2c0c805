"""The HTTP plumbing of the ASGI app: responses, errors other than a refused body's
content, and the checks of headers and body that come before any handler's work."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tabml.serve.limits import BodyDeadlines
from tabml.serve.problems import RequestError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

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


def check_headers(scope: Scope, max_body_bytes: int) -> None:
    """Refuse a body that is not JSON, or that says it is larger than `max_body_bytes`."""
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
    if length is not None and length.isdigit() and int(length) > max_body_bytes:
        raise HTTPError(
            413,
            f"content-length = {int(length)}: the body may hold at most "
            f"{max_body_bytes} bytes (TABML_MAX_BODY_BYTES)",
        )


async def read_body(receive: Receive, limit: int, deadlines: BodyDeadlines) -> bytes:
    """The whole body, at most `limit` bytes, arrived before its deadline."""
    chunks: list[bytes] = []
    size = 0
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


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as strict_error:
        # orjson refuses NaN and Infinity (they are not JSON). Parse leniently once
        # more so the row checks can name the feature that holds one.
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise RequestError.one(
                400, "body", f"must be valid JSON ({strict_error})", has_value=False
            ) from None
