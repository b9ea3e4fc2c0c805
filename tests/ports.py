"""Ports the operating system chose. A server binds port 0 and names the port it got in
its log; the test reads it from there. Never a port found free and handed to a server
later: another process may bind it in between, the more often the more tests run at
once.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

# What a server that lost its port to another process says (uvicorn's Errno 98).
ADDRESS_IN_USE = "address already in use"
# uvicorn's startup line (at log level info), as tabml's server and the image log it.
UVICORN_STARTED = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def port_from_log(
    log_path: Path,
    process: subprocess.Popen[bytes] | None,
    timeout: float,
    started_line: re.Pattern[bytes] = UVICORN_STARTED,
) -> int:
    """The port a server bound, from the line of its log (`log_path`) that `started_line`
    matches, its first group the port; fails when `process` exits first."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode} before listening")
        found = started_line.search(log_path.read_bytes()) if log_path.exists() else None
        if found:
            return int(found.group(1))
        time.sleep(0.02)
    raise AssertionError(f"no startup line in {log_path} after {timeout} s")


def unused_port() -> int:
    """A port that was free a moment ago. Only for a server that must be told its port
    and cannot report one it picked itself; another process may bind the port before it
    does, so the caller runs again when the server's output says ADDRESS_IN_USE."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
