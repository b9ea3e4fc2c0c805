"""uvicorn's HTTP/1.1 protocol (httptools), with a bound on the time request headers take.

uvicorn closes a connection left idle after a response (TABML_KEEP_ALIVE_TIMEOUT_SECONDS),
but not one that never sends a request, or sends part of its headers and stops: either
is held for as long as the client likes (measured with a keep-alive timeout of 1 s:
still open after 12 s). The app never sees such a connection, so the bound lives here.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Set
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tabml.serve.settings import load_settings


@functools.cache
def header_timeout() -> float:
    """TABML_HEADER_TIMEOUT_SECONDS, read once per process: each uvicorn worker builds its
    protocol objects from the class alone, as the app reads its own settings."""
    return load_settings().header_timeout_seconds


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """Closes a connection whose request headers are not complete `header_timeout`
    seconds after the connection opened (its first request) or the request's first byte
    arrived (later ones).

    One sweeper task per process checks the open connections every tenth of the timeout
    (at most every second), so a request costs two attribute writes rather than a timer."""

    closed_for_header_timeout: ClassVar[int] = 0
    _sweeper: ClassVar[asyncio.Task[None] | None] = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.header_timeout = header_timeout()
        self.headers_due: float | None = time.monotonic() + self.header_timeout
        sweeper = HeaderDeadlineProtocol._sweeper
        if sweeper is None or sweeper.done():
            HeaderDeadlineProtocol._sweeper = self.loop.create_task(
                sweep_forever(self.connections, min(self.header_timeout / 10, 1.0))
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.headers_due is None:
            self.headers_due = time.monotonic() + self.header_timeout

    def on_headers_complete(self) -> None:
        self.headers_due = None
        super().on_headers_complete()

    def close_for_header_timeout(self) -> None:
        self.headers_due = None
        if not self.transport.is_closing():
            HeaderDeadlineProtocol.closed_for_header_timeout += 1
            self.transport.close()


def sweep(connections: Set[Any], now: float) -> int:
    """Close every connection whose request headers were due before `now`; how many."""
    late = [
        connection
        for connection in connections
        if isinstance(connection, HeaderDeadlineProtocol)
        and connection.headers_due is not None
        and connection.headers_due <= now
    ]
    for connection in late:
        connection.close_for_header_timeout()
    return len(late)


async def sweep_forever(connections: Set[Any], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        sweep(connections, time.monotonic())
