"""Bounds on what one client can hold: a request slot, and the time its body may take.

uvicorn bounds the idle time between requests (keep-alive) but not the time a request's
body takes to arrive, so a client that sends headers and part of a body would hold its
connection and a request slot for as long as it likes. The app bounds both itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


class RequestSlots:
    """Counts requests with a body from their start until their answer is ready.

    The app answers 503 with Retry-After above `limit` rather than use uvicorn's
    `limit_concurrency`, which counts open connections (so idle keep-alive and stalled
    clients would turn normal ones away), sends no Retry-After and never reaches /metrics."""

    __slots__ = ("in_use", "limit", "rejected")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.rejected = 0


class BodyDeadlines:
    """Cuts off request bodies that have not fully arrived `timeout` seconds after the start.

    A request registers its task while it reads its body, and one sweeper task cancels
    those past their deadline, at most a tenth of the timeout (and a second) late. A timer
    per request (`loop.call_at` and its cancel) costs several times what the two dictionary
    updates here cost, on every request, for the rare one that stalls."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.sweep_seconds = min(timeout / 10, 1.0)
        self.timed_out = 0
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()

    def watch(self, task: asyncio.Task[Any]) -> None:
        self._reading[task] = time.monotonic() + self.timeout

    def unwatch(self, task: asyncio.Task[Any]) -> None:
        """The body is read, or its reading ended otherwise: the deadline no longer applies."""
        if self._reading.pop(task, None) is None:
            self._expired.discard(task)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the sweeper cancelled `task` because its body was late (and not, say,
        because the server is shutting down)."""
        return task in self._expired

    def sweep(self, now: float) -> int:
        """Cancel every body read past its deadline at `now`; returns how many."""
        late = [task for task, deadline in self._reading.items() if deadline <= now]
        for task in late:
            del self._reading[task]
            self._expired.add(task)
            self.timed_out += 1
            task.cancel()
        return len(late)

    async def sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_seconds)
            if self._reading:
                self.sweep(time.monotonic())
