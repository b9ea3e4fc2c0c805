"""The serving benchmark's harness: servers started pinned to a core and stopped, their
ports, wrk's load and its figures, cold starts, memory, and the results files.

What is measured (which servers, which requests, which tables) is benchmarks/serve.py's.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SERVER_CORE, LOAD_CORE = "0", "1"


# --- servers ---------------------------------------------------------------------------


# uvicorn's startup line (log level info) names the port a server bound when given 0.
UVICORN_STARTED = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")
# The port that means "the operating system picks one, the server's log names it".
PICKED_BY_THE_SYSTEM = 0


def port_in_log(read_log: Any, alive: Any, timeout: float = 120) -> int:
    """The port from uvicorn's startup line in what `read_log()` returns (bytes);
    fails when `alive()` turns false first."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = UVICORN_STARTED.search(read_log())
        if found:
            return int(found.group(1))
        if not alive():
            raise RuntimeError(f"server exited before listening:\n{read_log().decode()[-2000:]}")
        time.sleep(0.005)
    raise RuntimeError(f"no startup line after {timeout} s")


def unused_port() -> int:
    """A port that was free a moment ago, for MLServer alone: it reads its ports from
    its settings file and names none it picked itself. Another process may take the port
    first; the server then fails to start and its log says so."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def wait_ready(url: str, process: subprocess.Popen[bytes] | None, timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} was ready")
        if get_status(url) == 200:
            return time.monotonic() - started
        time.sleep(0.005)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in children:
            pids.extend(process_tree(int(child)))
    return pids


def rss_mib(pid: int) -> float:
    total_kib = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total_kib += int(match.group(1))
    return total_kib / 1024


@dataclass
class Server:
    name: str
    command: list[str]
    ready_path: str
    # The port the server is told in its command or settings; None: it binds port 0 and
    # its log names the port (set in `port` on each start).
    fixed_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    port: int = PICKED_BY_THE_SYSTEM

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def running(server: Server, log_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start the server pinned to SERVER_CORE; yield it with its cold start in seconds.
    A server given port 0 binds one the operating system picks; its log names it."""
    log_path = log_dir / f"{server.name}.log"
    log = log_path.open("wb")
    environ = {**os.environ, **server.env}
    started = time.monotonic()
    process = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *server.command],
        env=environ,
        cwd=server.cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        server.port = server.fixed_port or port_in_log(
            log_path.read_bytes, lambda: process.poll() is None
        )
        wait_ready(server.url + server.ready_path, process)
        yield process, time.monotonic() - started
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def ensure_venv(path: Path, packages: list[str]) -> Path:
    """The Python of a virtual environment at `path` holding `packages`: made on first
    use, and the packages installed again when the list differs from the one it was made
    with (a venv made by an older benchmark may lack one)."""
    python = path / "bin" / "python"
    installed = path / "tabml-bench-packages.txt"
    wanted = "\n".join(packages) + "\n"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    if not installed.exists() or installed.read_text() != wanted:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
        installed.write_text(wanted)
    return python


# --- wrk -------------------------------------------------------------------------------

LUA = """\
local file = io.open("{body}", "rb")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
{delay}
"""


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    connections: int


def write_script(script: Path, body: Path, delay_ms: int | None) -> None:
    """wrk's Lua script: POST `body` as JSON, pausing `delay_ms` between requests."""
    delay = f"function delay() return {delay_ms} end" if delay_ms else ""
    script.write_text(LUA.format(body=body, delay=delay))


def wrk_command(
    url: str, script: Path, connections: int, seconds: float, timeout: str | None = None
) -> list[str]:
    """wrk on LOAD_CORE, one thread, with latency percentiles (and a request `timeout`)."""
    timeout_flags = ["--timeout", timeout] if timeout else []
    return [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        *timeout_flags,
        "-s",
        str(script),
        url,
    ]


def read_wrk(out: str, connections: int) -> Load:
    """The figures in wrk's report; errors are non-2xx answers plus socket errors."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if sockets:
        errors += sum(int(value) for value in sockets.groups())
    return Load(rps, p50, p99, requests, errors, connections)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(
    url: str,
    body: Path,
    *,
    connections: int,
    seconds: float,
    work: Path,
    delay_ms: int | None = None,
) -> Load:
    # One script per thread: side-by-side runs must not rewrite a file another wrk reads.
    script = work / f"wrk-{body.stem}-{delay_ms}-{threading.get_ident()}.lua"
    write_script(script, body, delay_ms)
    result = subprocess.run(
        wrk_command(url, script, connections, seconds, timeout="10s"),
        capture_output=True,
        text=True,
        check=True,
    )
    return read_wrk(result.stdout, connections)


DELAY_MS = 20  # each connection's pause between requests when holding a rate


def connections_for(url: str, body: Path, rate: float, work: Path) -> int:
    """Connections that hold about `rate` requests/s with DELAY_MS pauses.

    wrk has no rate option; a connection sends one request per (pause + latency), so a
    first guess from the pause alone runs slow. A 3-second probe measures the real
    rate per connection and scales the count once.
    """
    guess = max(1, round(rate * DELAY_MS / 1000))
    probe = wrk(url, body, connections=guess, seconds=3, work=work, delay_ms=DELAY_MS)
    return max(1, round(guess * rate / max(probe.rps, 1.0)))


def held_rates(
    targets: dict[str, tuple[str, Path, float]], seconds: float, work: Path, rounds: int
) -> dict[str, dict[str, Any]]:
    """Each target (name -> url, body, rate) held at its rate `rounds` times, the targets
    taken in turn within each round: per target, the run with the median p99
    (`median_run`) and every round's p99 (`rounds_p99_ms`).

    A p99 from one few-second run is the 1% slowest of some 16,000 requests, so a single
    stall of the shared host moves it; the peak loads are medians over rounds for the
    same reason, and taken in turn, every target sees every minute of the drift.
    """
    connections = {
        name: connections_for(url, body, rate, work) for name, (url, body, rate) in targets.items()
    }
    runs: dict[str, list[Load]] = {name: [] for name in targets}
    for round_ in range(rounds):
        for name, (url, body, _) in targets.items():
            load = wrk(
                url,
                body,
                connections=connections[name],
                seconds=seconds,
                work=work,
                delay_ms=DELAY_MS,
            )
            runs[name].append(load)
            print(
                f"   round {round_ + 1} {name}: {load.rps:,.0f} req/s  p99 {load.p99_ms:.2f} ms",
                flush=True,
            )
    return {
        name: {
            **median_run(taken, lambda load: load.p99_ms),
            "rounds_p99_ms": [load.p99_ms for load in taken],
        }
        for name, taken in runs.items()
    }


def median_run(taken: list[Load], key: Callable[[Load], float]) -> dict[str, Any]:
    """The run of `taken` with the median `key` (the upper one for an even count), with
    every run's rate (`rounds_rps`) and the errors of all runs."""
    ranked = sorted(taken, key=key)
    return {
        **asdict(ranked[len(ranked) // 2]),
        "rounds_rps": [load.rps for load in taken],
        "errors": sum(load.errors for load in taken),
    }


# --- timing ----------------------------------------------------------------------------


def check_answers(server: Server, path: str, body: Path) -> None:
    request = urllib.request.Request(
        server.url + path, data=body.read_bytes(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise RuntimeError(f"{server.name} {path}: {response.status}")


def cold_starts(server: Server, log_dir: Path, trials: int) -> list[float]:
    times = []
    for _ in range(trials):
        with running(server, log_dir) as (_, seconds):
            times.append(seconds)
    return times


def interleaved_loads(
    every: list[Server],
    endpoints: Callable[[str], dict[str, tuple[str, str]]],
    bodies: dict[str, Path],
    work: Path,
    seconds: float,
    rounds: int,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each server's load per workload (`endpoints(server name)`: workload -> (path, body
    name)): the median of `rounds` runs, taken in rounds that visit every server in turn.

    This machine's speed drifts by tens of percent from one minute to the next (other
    tenants share the host). Measured one server after another, that drift lands on
    whichever server ran during a slow minute; taken in rounds, every server sees every
    minute, so the ratios between them hold. Each server runs from the start, pinned to
    the same core, and sits idle while another is under load.
    """
    for server in every:
        for path, body in endpoints(server.name).values():
            check_answers(server, path, bodies[body])
            wrk(server.url + path, bodies[body], connections=8, seconds=2, work=work)
    runs: dict[str, dict[str, list[Load]]] = {server.name: {} for server in every}
    for round_ in range(rounds):
        for server in every:
            for workload, (path, body) in endpoints(server.name).items():
                load = wrk(
                    server.url + path, bodies[body], connections=16, seconds=seconds, work=work
                )
                runs[server.name].setdefault(workload, []).append(load)
                print(
                    f"   round {round_ + 1} {server.name} {workload}: {load.rps:,.0f} req/s  "
                    f"p99 {load.p99_ms:.2f} ms  errors {load.errors}",
                    flush=True,
                )
    return {
        name: {
            workload: median_run(taken, lambda load: load.rps)
            for workload, taken in workloads.items()
        }
        for name, workloads in runs.items()
    }


def side_by_side(
    pool: ThreadPoolExecutor,
    servers: dict[str, Server],
    path: str,
    body: Path,
    seconds: float,
    work: Path,
    first: int = 0,
) -> dict[str, Load]:
    """One wrk run against each server's `path`, all at the same time; wrk starts first
    against server number `first` (modulo their count), so that turns can share out the
    head start."""
    order = list(servers.items())
    order = order[first % len(order) :] + order[: first % len(order)]
    loads = {
        name: pool.submit(wrk, server.url + path, body, connections=16, seconds=seconds, work=work)
        for name, server in order
    }
    return {name: loads[name].result() for name in servers}


def percent_below(measured: list[float], reference: list[float]) -> float:
    """How far `measured` falls below `reference`, in percent: the median over rounds of
    their ratio, round by round."""
    ratios = [value / base for value, base in zip(measured, reference, strict=True)]
    return (1 - statistics.median(ratios)) * 100


def soak(url: str, pid: int, body: Path, rate: float, seconds: float, work: Path) -> dict[str, Any]:
    """Load at `rate` for `seconds`, sampling RSS; growth is measured after a warm-up."""
    samples: list[float] = []
    connections = connections_for(url, body, rate, work)
    script = work / "soak.lua"
    write_script(script, body, DELAY_MS)
    command = wrk_command(url, script, connections, seconds)
    with tempfile.TemporaryFile("w+") as output:
        load = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True)
        while load.poll() is None:
            samples.append(rss_mib(pid))
            time.sleep(1)
        output.seek(0)
        text = output.read()
    figures = read_wrk(text, connections)
    rps, p99, errors = figures.rps, figures.p99_ms, figures.errors
    warm = samples[min(5, len(samples) - 1)]
    growth = (samples[-1] - warm) / warm * 100
    print(
        f"   soak: {rps:,.0f} req/s for {seconds:g} s, errors {errors}, RSS {warm:.1f} -> "
        f"{samples[-1]:.1f} MiB ({growth:+.1f}%)",
        flush=True,
    )
    return {
        "target_rps": rate,
        "rps": rps,
        "p99_ms": p99,
        "errors": errors,
        "rss_mib_samples": samples,
        "rss_growth_percent": growth,
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def venv_version(venv: Path, package: str) -> str | None:
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            f"from importlib.metadata import version; print(version({package!r}))",
        ],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() or None


# --- results ---------------------------------------------------------------------------


def write_results(figures: dict[str, Any] | None, markdown: str) -> None:
    """serve.json (unless only the report is rewritten) and serve.md, in RESULTS."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    if figures is not None:
        (RESULTS / "serve.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "serve.md").write_text("# Serving benchmark\n\n" + markdown)


def read_results() -> dict[str, Any]:
    figures: dict[str, Any] = json.loads((RESULTS / "serve.json").read_text())
    return figures
