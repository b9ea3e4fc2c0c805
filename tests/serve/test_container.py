"""The real serving image: built from the Dockerfile with podman, run on 127.0.0.1.

No registry is reachable, so each base image is made once with debootstrap and cached
(under ~/.cache/tabml-test, or $TABML_TEST_CACHE) together with podman's storage;
podman's run root is kept short wherever that is (see run_root). Two bases, Debian bookworm
(Python 3.11) and trixie (Python 3.13), the oldest and newest Python that pyproject's
requires-python admits: most tests use bookworm's image, and one builds, starts and asks
both for a prediction. An image is built once for its build context, build args and
base (a lock and a tag naming their digest), however many test workers need it.
Skipped when podman or debootstrap is missing, except where the full suite is required
(tests/availability.py), where that fails.

The image is labelled the way the release workflow labels it: release_info.py turns the
model's metadata.json into facts, and release.yml's build-args turn facts into build args.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from filelock import FileLock

from tabml.config import Params
from tabml.lineage import LABELS
from tabml.stages import evaluate, model_card
from tabml.stages.train import model_input
from tests.availability import require_tool, unavailable
from tests.lineage import metrics_label, mismatches, read_card
from tests.ports import UVICORN_STARTED
from tests.serve.conftest import (
    REPO_ROOT,
    AsgiClient,
    ExportedModel,
    http,
    make_client,
    wait_ready,
)
from tests.tools import ToolError, check_exit, run_tool

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class DebianBase:
    """A minimal Debian release with its own python3, made with debootstrap."""

    suite: str
    python: str  # the python3 version the release ships

    @property
    def tag(self) -> str:
        return f"localhost/tabml-python-base:{self.suite}"


BOOKWORM = DebianBase("bookworm", "3.11")
TRIXIE = DebianBase("trixie", "3.13")
BASES = (BOOKWORM, TRIXIE)
BASE_IMAGE = BOOKWORM.tag
SERVE_IMAGE = "localhost/tabml-serve"
# Images this suite built that are older than this are removed after a new build.
STALE_IMAGE_HOURS = 24
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""
# podman refuses a longer --runroot ("the specified runroot is longer than 50 characters").
RUN_ROOT_MAX_CHARS = 50
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What the build context holds: the files the Dockerfile copies, and nothing from models/.
CONTEXT_FILES = [
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "uv.lock",
    "src/tabml/__init__.py",
    "src/tabml/validation.py",
    "src/tabml/contract.py",
    "src/tabml/errors.py",
]
RELEASE_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "release.yml"
RELEASE_INFO = REPO_ROOT / ".github" / "scripts" / "release_info.py"
# The github context release.yml's build step reads; the commit differs from the one the
# model was exported at (conftest's 0123456789abcdef), as after a code-only merge.
GITHUB_CONTEXT = {
    "github.sha": "feedc0de" * 5,
    "github.server_url": "https://github.com",
    "github.repository": "example/tabml",
}


def cache_dir() -> Path:
    return Path(os.environ.get("TABML_TEST_CACHE", Path.home() / ".cache" / "tabml-test"))


def require_tools() -> None:
    """podman and debootstrap, run as root (debootstrap needs it): skip when missing,
    fail where the full suite is required."""
    __tracebackhide__ = True
    for tool in ("podman", "debootstrap"):
        require_tool(tool)
    if os.geteuid() != 0:
        unavailable("root", "debootstrap builds the base image as root", install=None)


def run_root(root: Path) -> Path:
    """Where podman keeps the run state of the storage under `root`.

    podman refuses a run root longer than RUN_ROOT_MAX_CHARS, and records the run root
    in its database at first use, refusing any other one later for the same storage.
    So: root/run while that is short enough (as the storage was always used), else a
    short folder under the temp dir named after the storage, the same on every run.
    """
    beside = root / "run"
    if len(str(beside)) <= RUN_ROOT_MAX_CHARS:
        return beside
    # No project name in it: a renamed copy of the template keeps the same length.
    name = "podman-run-" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    for base in (Path(tempfile.gettempdir()), Path("/tmp")):
        if len(str(base / name)) <= RUN_ROOT_MAX_CHARS:
            return base / name
    raise AssertionError(f"no run root of at most {RUN_ROOT_MAX_CHARS} characters for {root}")


@dataclass(frozen=True)
class Podman:
    """podman with the tests' own storage under `root` and its containers.conf."""

    root: Path

    @classmethod
    def at(cls, root: Path) -> Podman:
        """The storage under `root`, its folders and containers.conf made."""
        root.mkdir(parents=True, exist_ok=True)
        (root / "containers.conf").write_text(CONTAINERS_CONF)
        podman = cls(root)
        podman.run_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return podman

    @property
    def run_root(self) -> Path:
        return run_root(self.root)

    @property
    def environ(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.root / "containers.conf")}

    @property
    def command(self) -> list[str]:
        """podman and its storage flags, before any subcommand."""
        return ["podman", "--root", str(self.root / "storage"), "--runroot", str(self.run_root)]

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True, **options: Any
    ) -> subprocess.CompletedProcess[str]:
        return run_tool(
            [*self.command, *args], env=self.environ, timeout=timeout, check=check, **options
        )


def debian_mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def ensure_base_image(podman: Podman, base: DebianBase = BOOKWORM) -> None:
    """`base` made once and kept in podman's storage; a lock keeps xdist workers (and
    concurrent runs on the same storage) from making it twice."""
    with FileLock(str(podman.root / f"base-image-{base.suite}.lock"), timeout=900):
        if podman("image", "exists", base.tag, check=False).returncode == 0:
            return
        with tempfile.TemporaryDirectory(dir=podman.root) as rootfs:
            run_tool(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates",
                    base.suite,
                    rootfs,
                    debian_mirror(),
                ],
                timeout=600,
            )
            run_tool(
                [
                    "chroot",
                    rootfs,
                    "sh",
                    "-c",
                    "apt-get clean; rm -rf "
                    "/var/lib/apt/lists/* /usr/lib/python3.*/EXTERNALLY-MANAGED",
                ]
            )
            tar_command = ["tar", "-C", rootfs, "--numeric-owner", "-cf", "-", "."]
            # tar's stderr goes to a file, not a pipe, so that it cannot fill up and stall
            # tar while podman reads the archive. The context manager closes the archive
            # pipe in this process once podman has read it.
            with tempfile.TemporaryFile() as tar_stderr:
                with subprocess.Popen(
                    tar_command, stdout=subprocess.PIPE, stderr=tar_stderr
                ) as tar:
                    podman(
                        "import",
                        "--change",
                        'CMD ["python3"]',
                        "--change",
                        "ENV LANG=C.UTF-8",
                        "-",
                        base.tag,
                        stdin=tar.stdout,
                        timeout=300,
                    )
                tar_stderr.seek(0)
                check_exit(tar_command, tar.returncode, tar_stderr.read())


def render_model_card(model: ExportedModel, params: Params) -> str:
    """The model_card stage's card for this model (its training rows stand in for test)."""
    # Model-card columns that this model's data lacks (params.yaml of a project that
    # `tabml init` retargeted at other data) give way to columns of this data.
    columns = list(model.schema.features)
    card_params = params.model_card
    slices = [column for column in card_params.slices if column in columns] or columns[:2]
    sensitive = card_params.sensitive_attribute
    card_params = card_params.model_copy(
        update={
            "slices": slices,
            "sensitive_attribute": sensitive if sensitive in columns else None,
        }
    )
    params = params.model_copy(update={"model_card": card_params})
    features = model_input(model.frame, model.schema)
    truth = model.frame[model.schema.target.name].astype(str).to_numpy()
    card = model_card.build_card(
        predicted=model.pipeline.predict(features).astype(str),
        train=model.frame,
        test=model.frame,
        schema=model.schema,
        params=params,
        metadata=model.metadata,
        importance=evaluate.feature_importance(model.pipeline, features, truth, params.evaluate),
    )
    return model_card.render_card(card)


def release_facts(metadata_path: Path, notes_path: Path) -> dict[str, str]:
    """release_info.py run as the release workflow runs it; its $GITHUB_OUTPUT, parsed."""
    output = notes_path.with_name("github-output.txt")
    output.write_text("")
    run_tool(
        [sys.executable, RELEASE_INFO, metadata_path, notes_path],
        cwd=REPO_ROOT,
        env={**os.environ, "GITHUB_OUTPUT": str(output)},
    )
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


def release_build_args(facts: dict[str, str]) -> dict[str, str]:
    """release.yml's build-args for the image it smoke-tests, its expressions filled in."""
    workflow = yaml.safe_load(RELEASE_WORKFLOW.read_text())
    [step] = [
        step
        for step in workflow["jobs"]["release"]["steps"]
        if step.get("name") == "Build the image"
    ]
    values = {**GITHUB_CONTEXT, **{f"steps.facts.outputs.{k}": v for k, v in facts.items()}}

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise AssertionError(f"release.yml's build-args use {match.group(0)}: not known here")
        return values[match.group(1)]

    lines = [line.strip() for line in step["with"]["build-args"].splitlines() if line.strip()]
    filled = [re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", fill, line) for line in lines]
    return dict(line.split("=", 1) for line in filled)


def build_context(model: ExportedModel, into: Path, card: str) -> None:
    for name in CONTEXT_FILES:
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, into / name)
    for package in ("serve", "score"):
        shutil.copytree(
            REPO_ROOT / "src" / "tabml" / package,
            into / "src" / "tabml" / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    (into / "models").mkdir()
    for name in ("model.onnx", "metadata.json"):
        shutil.copy2(model.directory / name, into / "models" / name)
    (into / "models" / "model_card.md").write_text(card, encoding="utf-8")


@dataclass(frozen=True)
class Image:
    podman: Podman
    tag: str
    # Seconds this test process spent building it; None: it was built already.
    build_seconds: float | None
    build_args: dict[str, str]
    facts: dict[str, str]
    card: str

    def built(self) -> str:
        if self.build_seconds is None:
            return "image built earlier for the same context"
        return f"image built in {self.build_seconds:.1f} s"


def build_key(context: Path, build_args: Mapping[str, str], base_id: str) -> str:
    """A digest of what a build depends on: every file of the context (path and bytes),
    the build args and the base image's ID."""
    digest = hashlib.sha256()
    for path in sorted(item for item in context.rglob("*") if item.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(sorted(build_args.items())).encode())
    digest.update(base_id.encode())
    return digest.hexdigest()[:24]


def build_once(
    podman: Podman, context: Path, build_args: Mapping[str, str], base: DebianBase
) -> tuple[str, float | None]:
    """The image of `context` on `base`: built unless an image of the same build key is
    already there, under a lock, so that xdist workers that all need it build it once.
    The tag and the seconds spent building it (None: it was there)."""
    base_id = podman("image", "inspect", "--format", "{{.Id}}", base.tag).stdout.strip()
    key = build_key(context, build_args, base_id)
    tag = f"{SERVE_IMAGE}:test-{key}"
    with FileLock(str(podman.root / f"build-{key}.lock"), timeout=900):
        if podman("image", "exists", tag, check=False).returncode == 0:
            return tag, None
        volume = [f"--volume={CA_BUNDLE}:{CA_BUNDLE}:ro"] if CA_BUNDLE.is_file() else []
        started = time.monotonic()
        podman(
            "build",
            "--pull=never",
            "--network=host",
            "--format=docker",
            *volume,
            f"--build-arg=BASE_IMAGE={base.tag}",
            *[f"--build-arg={name}={value}" for name, value in build_args.items()],
            "--tag",
            tag,
            str(context),
            timeout=900,
        )
        seconds = time.monotonic() - started
    remove_stale_images(podman, keep=tag)
    return tag, seconds


def remove_stale_images(podman: Podman, keep: str) -> None:
    """Images are kept for later runs with the same build key (workers of one run share
    them, so none removes its own); those built more than STALE_IMAGE_HOURS ago go."""
    listed = podman(
        "images",
        "--filter",
        f"reference={SERVE_IMAGE}:test-*",
        "--filter",
        f"until={STALE_IMAGE_HOURS}h",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        check=False,
    ).stdout.split()
    stale = [tag for tag in listed if tag != keep]
    if stale:
        podman("rmi", *stale, check=False)


def image_on(
    base: DebianBase,
    model: ExportedModel,
    params: Params,
    tmp_path_factory: pytest.TempPathFactory,
) -> Image:
    """The serving image of `model`, labelled as release.yml labels it, on `base`."""
    require_tools()
    podman = Podman.at(cache_dir() / "podman")
    ensure_base_image(podman, base)
    context = tmp_path_factory.mktemp("context")
    card = render_model_card(model, params)
    build_context(model, context, card)
    facts = release_facts(
        context / "models" / "metadata.json", tmp_path_factory.mktemp("release") / "notes.md"
    )
    build_args = release_build_args(facts)
    tag, seconds = build_once(podman, context, build_args, base)
    return Image(podman, tag, seconds, build_args, facts, card)


# A home at a longer path than /root, as a user's often is.
LONG_HOME = "home-of-a-rather-long-user-name.lastname-xyz"


@contextmanager
def scratch_podman(root: Path) -> Iterator[Podman]:
    """A podman storage of its own under `root`, removed afterwards: `system reset`
    unmounts what podman mounted there, which would otherwise outlive the test."""
    require_tool("podman")
    podman = Podman.at(root)
    try:
        yield podman
    finally:
        podman("system", "reset", "--force", check=False)
        shutil.rmtree(podman.run_root, ignore_errors=True)


def test_podman_storage_works_under_a_long_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """podman refuses a --runroot over 50 characters; the storage under a long home
    still works, with the same short run root every time (podman's database records it)."""
    monkeypatch.setenv("HOME", str(tmp_path / LONG_HOME))
    monkeypatch.delenv("TABML_TEST_CACHE", raising=False)
    root = cache_dir() / "podman"
    assert root == tmp_path / LONG_HOME / ".cache" / "tabml-test" / "podman"
    assert len(str(root / "run")) > RUN_ROOT_MAX_CHARS
    with scratch_podman(root) as podman:
        assert len(str(podman.run_root)) <= RUN_ROOT_MAX_CHARS
        assert podman("images", "--quiet").stdout == ""
        # Again, as a later test run would: the recorded run root is the one given.
        assert Podman.at(root)("images", "--quiet").stdout == ""
    # A storage at a short path keeps its run root beside it, where it always was.
    assert run_root(Path("/root/.cache/tabml-test/podman")) == Path(
        "/root/.cache/tabml-test/podman/run"
    )


def test_a_podman_failure_shows_podmans_reason(tmp_path: Path) -> None:
    with scratch_podman(tmp_path / "podman") as podman, pytest.raises(ToolError) as raised:
        podman("image", "inspect", "localhost/tabml-no-such-image:absent")
    message = str(raised.value)
    assert "image inspect localhost/tabml-no-such-image:absent` exited with status 125" in message
    assert "Error: inspecting object: localhost/tabml-no-such-image:absent: image not known" in (
        message
    )


def test_image_labels_user_and_contents(image: Image, breast_cancer_model: ExportedModel) -> None:
    [inspected] = json.loads(image.podman("image", "inspect", image.tag).stdout)
    config = inspected["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == GITHUB_CONTEXT["github.sha"]
    assert labels["org.opencontainers.image.version"] == image.facts["version"]
    assert labels["io.tabml.model.version"] == breast_cancer_model.metadata["model"]["version"]
    assert labels["io.tabml.data.version"] == "test-data-version"
    assert labels["org.opencontainers.image.source"] == "https://github.com/example/tabml"
    assert config["User"] == "10001:10001"
    healthcheck = inspected.get("Healthcheck") or config.get("Healthcheck")
    assert healthcheck is not None, "HEALTHCHECK missing (build with --format=docker)"
    assert healthcheck["Test"][0] == "CMD"
    assert "/ready" in healthcheck["Test"][-1]
    # Runtime dependencies only: no training stack in the image.
    found = image.podman(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint",
        "python",
        image.tag,
        "-c",
        "import importlib.util as u, shutil; print([m for m in ('sklearn', "
        "'dvc', 'pandas', 'skl2onnx') if u.find_spec(m)], shutil.which('cc'))",
    ).stdout
    # The C compiler that built the request-row reader stays in its build stage.
    assert found.strip() == "[] None"


def container_port(podman: Podman, name: str, timeout: float) -> int:
    """The port the server in container `name` bound, from uvicorn's startup line in
    the container's log."""
    deadline = time.monotonic() + timeout
    logs = ""
    while time.monotonic() < deadline:
        result = podman("logs", name, check=False)
        logs = result.stdout + result.stderr
        found = UVICORN_STARTED.search(logs.encode())
        if found:
            return int(found.group(1))
        time.sleep(0.1)
    raise AssertionError(f"no startup line from container {name} after {timeout} s:\n{logs}")


@contextmanager
def running(image: Image, env: Mapping[str, str] | None = None) -> Iterator[tuple[str, str, float]]:
    """The image running on 127.0.0.1, with the settings `env` adds: its URL, its
    container name and the seconds from `podman run` until /ready answered. The
    container is removed afterwards.

    It shares the host's network and binds port 0, so the operating system picks a free
    port, which the test reads from the container's log. (The image's HEALTHCHECK asks
    TABML_PORT, 0 here; these tests ask /ready themselves.)"""
    name = f"tabml-serve-test-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    try:
        image.podman(
            "run",
            "--detach",
            "--name",
            name,
            "--network=host",
            "--env=TABML_PORT=0",
            "--env=TABML_HOST=127.0.0.1",
            *[f"--env={variable}={value}" for variable, value in (env or {}).items()],
            image.tag,
        )
        url = f"http://127.0.0.1:{container_port(image.podman, name, timeout=60)}"
        wait_ready(f"{url}/ready", None, timeout=60)
        yield url, name, time.monotonic() - started
    finally:
        image.podman("rm", "--force", "--time=2", name, check=False)


def test_container_serves_and_stops_cleanly(
    image: Image, breast_cancer_model: ExportedModel
) -> None:
    podman = image.podman
    with running(image) as (url, name, ready_seconds):
        assert http("GET", f"{url}/health") == (200, b'{"status":"ok"}')
        assert http("GET", f"{url}/v2/health/live")[0] == 200

        rows = breast_cancer_model.feature_rows(20)
        status, body = http("POST", f"{url}/predict", json.dumps(rows).encode())
        assert status == 200, body
        with make_client(breast_cancer_model) as local:
            expected = local.post("/predict", rows).json()
            v2_expected = local.post(
                "/v2/models/tabml-classifier/infer", _v2_request(local, rows)
            ).json()
        served = json.loads(body)
        assert served["model_version"] == expected["model_version"]
        assert [p["label"] for p in served["predictions"]] == [
            p["label"] for p in expected["predictions"]
        ]
        assert np.allclose(
            [list(p["probabilities"].values()) for p in served["predictions"]],
            [list(p["probabilities"].values()) for p in expected["predictions"]],
            atol=1e-6,
        )

        with make_client(breast_cancer_model) as local:
            request = _v2_request(local, rows)
        status, body = http(
            "POST", f"{url}/v2/models/tabml-classifier/infer", json.dumps(request).encode()
        )
        assert status == 200, body
        outputs = json.loads(body)["outputs"]
        assert outputs[0]["data"] == v2_expected["outputs"][0]["data"]
        assert np.allclose(outputs[1]["data"], v2_expected["outputs"][1]["data"], atol=1e-6)

        status, body = http(
            "POST", f"{url}/predict", json.dumps({**rows[0], "mean_radius": "big"}).encode()
        )
        assert status == 422
        assert "mean_radius" in json.loads(body)["error"]

        # A value past its schema range is refused by default, and counted.
        status, body = http(
            "POST", f"{url}/predict", json.dumps({**rows[0], "mean_radius": 1e30}).encode()
        )
        assert status == 422, body
        low, high = _schema_range(breast_cancer_model, "mean_radius")
        assert json.loads(body)["details"] == [
            {
                "field": "mean_radius",
                "rule": f"must be within [{low}, {high}], the feature's range in the model's "
                "data schema",
                "value": "1e+30",
            }
        ]
        metrics = http("GET", f"{url}/metrics")[1].decode()
        assert 'tabml_out_of_range_values_total{feature="mean_radius"} 1.0' in metrics

        user = podman("exec", name, "id", "-u").stdout.strip()
        assert user == "10001"

        podman("kill", "--signal=TERM", name)
        exit_code = podman("wait", name, timeout=30).stdout.strip()
        # uvicorn re-raises SIGTERM after its graceful shutdown: 143 = 128 + SIGTERM.
        assert exit_code in {"0", "143"}
        logs = podman("logs", name).stderr + podman("logs", name).stdout
        assert "Application shutdown complete" in logs
        assert "Traceback" not in logs
        print(f"{image.built()}; ready {ready_seconds:.2f} s after `podman run`")


def test_container_accepts_and_counts_out_of_range_values_when_told_to(
    image: Image, breast_cancer_model: ExportedModel
) -> None:
    row = {**breast_cancer_model.feature_rows(1)[0], "mean_radius": -5.0}
    env = {
        "TABML_OUT_OF_RANGE": "count",
        "TABML_PREDICTION_LOG": "-",
        "TABML_PREDICTION_LOG_SAMPLE_RATE": "1",
    }
    with running(image, env) as (url, name, _):
        status, body = http("POST", f"{url}/predict", json.dumps(row).encode())
        assert status == 200, body
        with make_client(breast_cancer_model, out_of_range="count") as local:
            expected = local.post("/predict", row).json()
        assert json.loads(body)["predictions"][0]["label"] == expected["predictions"][0]["label"]
        metrics = http("GET", f"{url}/metrics")[1].decode()
        assert 'tabml_out_of_range_values_total{feature="mean_radius"} 1.0' in metrics
        assert 'tabml_out_of_range_values_total{feature="mean_texture"} 0.0' in metrics
        deadline = time.monotonic() + 10  # the log is flushed about once a second
        logged: list[dict[str, object]] = []
        while not logged and time.monotonic() < deadline:
            time.sleep(0.2)
            stdout = image.podman("logs", name).stdout
            logged = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert [line.get("out_of_range") for line in logged] == [["mean_radius"]]


def _schema_range(model: ExportedModel, name: str) -> tuple[float, float]:
    [feature] = [item for item in model.metadata["features"] if item["name"] == name]
    return feature["min"], feature["max"]


def test_running_container_traces_its_lineage(
    image: Image, breast_cancer_model: ExportedModel
) -> None:
    """GET /metadata, the image labels and GET /model-card name the same model version,
    data version, params and metrics; the image's revision label names the commit."""
    [inspected] = json.loads(image.podman("image", "inspect", image.tag).stdout)
    labels = inspected["Config"]["Labels"]
    with running(image) as (url, _, _):
        status, body = http("GET", f"{url}/metadata")
        assert status == 200, body
        served = json.loads(body)
        status, body = http("GET", f"{url}/model-card")
        assert status == 200, body
        card = body.decode()

    # What was shipped is what is served, and it is this model's.
    assert served == breast_cancer_model.metadata
    assert card == image.card
    assert mismatches(served, labels, card) == []
    # The facts themselves, so that three records agreeing on nothing would not pass.
    stated = read_card(card)
    metadata = breast_cancer_model.metadata
    assert stated["model"]["version"] == labels[LABELS["model version"]]
    assert labels[LABELS["model version"]] == metadata["model"]["version"]
    assert labels[LABELS["data version"]] == stated["data"]["version"] == "test-data-version"
    # The commit is the build's (github.sha); the model and its records do not depend on it.
    assert labels["org.opencontainers.image.revision"] == GITHUB_CONTEXT["github.sha"]
    assert "git" not in served and "git" not in stated
    assert stated["params"] == metadata["params"]
    assert stated["params"]["train"]["estimator"] == "logistic_regression"
    assert stated["metrics"] == metadata["metrics"] and "accuracy" in stated["metrics"]
    # The same comparison catches a label that says something else.
    wrong = metrics_label({**metadata["metrics"], "accuracy": 0.5})
    assert mismatches(served, {**labels, LABELS["metrics"]: wrong}, card)
    tabml_labels = {k: v for k, v in labels.items() if k.startswith("io.tabml.")}
    print(f"{image.built()}; lineage labels {tabml_labels}")


def _v2_request(client: AsgiClient, rows: list[dict[str, object]]) -> dict[str, object]:
    names = list(rows[0])
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(rows), 1],
                "datatype": "FP32",
                "data": [row[name] for row in rows],
            }
            for name in names
        ]
    }


def test_the_bases_are_the_oldest_and_newest_python_the_project_supports() -> None:
    """requires-python's bounds: at least the oldest minor version, below the one after
    the newest."""
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]
    oldest = re.search(r">=\s*3\.(\d+)", requires)
    below = re.search(r"<\s*3\.(\d+)", requires)
    assert oldest and below, requires
    assert [base.python for base in BASES] == [
        f"3.{oldest.group(1)}",
        f"3.{int(below.group(1)) - 1}",
    ]


@pytest.mark.parametrize("base", BASES, ids=[base.suite for base in BASES])
def test_image_serves_on_each_supported_python(
    base: DebianBase,
    breast_cancer_model: ExportedModel,
    serve_params: Params,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Built on each base, the image runs its base's Python, gets ready and predicts
    what the model predicts in process."""
    built = image_on(base, breast_cancer_model, serve_params, tmp_path_factory)
    version = built.podman(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint",
        "python",
        built.tag,
        "-c",
        "import sys; from tabml.serve.body_readers import BUILT; "
        "print('%d.%d' % sys.version_info[:2], BUILT)",
    ).stdout.split()
    # The C reader of request rows was compiled for the base's Python (Dockerfile).
    assert version == [base.python, "True"]
    rows = breast_cancer_model.feature_rows(3)
    with running(built) as (url, _, ready_seconds):
        status, body = http("POST", f"{url}/predict", json.dumps(rows).encode())
    assert status == 200, body
    with make_client(breast_cancer_model) as local:
        expected = local.post("/predict", rows).json()["predictions"]
    served = json.loads(body)["predictions"]
    assert [p["label"] for p in served] == [p["label"] for p in expected]
    assert np.allclose(
        [list(p["probabilities"].values()) for p in served],
        [list(p["probabilities"].values()) for p in expected],
        atol=1e-6,
    )
    print(f"{base.suite} (Python {version[0]}): {built.built()}; ready {ready_seconds:.2f} s")
