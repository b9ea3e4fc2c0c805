"""The image runs under the constraints of the rendered production Deployment and of the
KServe InferenceService: podman runs it
with the pod's user, a read-only root filesystem (no tmpfs added: Kubernetes adds none),
every capability dropped, no privilege escalation, the CPU and memory limits, the env
and the volumes, all read from the manifest rather than written here. It becomes ready
on the startup probe's path, answers a prediction, and writes its prediction log where
the manifest says.

The image is the serving container tests' own (tests/serve/test_container.py), built
once per build context and reused; podman and debootstrap as root, or a skip (a failure
where the full suite is required)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tabml.serve.settings import load_settings
from tests.deploy.dockerfile import final_stage
from tests.deploy.manifests import Manifest, env, one, pod_spec, rendered
from tests.serve.conftest import ExportedModel, http, wait_ready
from tests.serve.test_container import Image

pytestmark = pytest.mark.slow

# The rendered folders and the kind in each whose pod runs the image.
PODS = [("overlays/production", "Deployment"), ("kserve", "InferenceService")]
# Kubernetes quantities deploy/ uses -> podman's units.
MEMORY = re.compile(r"^(\d+)(Mi|Gi)$")
# STDOUT in tabml.serve.prediction_log.
STANDARD_OUTPUT = "-"


def podman_memory(quantity: str) -> str:
    found = MEMORY.match(quantity)
    assert found, f"memory {quantity!r}: expected a whole number of Mi or Gi"
    number, unit = found.groups()
    return f"{number}{unit[0].lower()}"


@dataclass(frozen=True)
class PodRun:
    """`podman run` options that give the container what the pod spec gives it."""

    options: list[str]
    # Volume name -> the host folder standing in for it (an emptyDir).
    volumes: dict[str, Path]
    port: int


def pod_run(spec: Manifest, container: Manifest, scratch: Path) -> PodRun:
    pod_context = spec.get("securityContext", {})
    context = {**pod_context, **container.get("securityContext", {})}
    assert context.get("runAsNonRoot") is True
    options = [f"--user={context['runAsUser']}:{context['runAsGroup']}"]
    if context.get("readOnlyRootFilesystem"):
        options += ["--read-only", "--read-only-tmpfs=false"]
    options += [f"--cap-drop={cap}" for cap in context["capabilities"]["drop"]]
    options += [f"--cap-add={cap}" for cap in context["capabilities"].get("add", [])]
    if context.get("allowPrivilegeEscalation") is False:
        options.append("--security-opt=no-new-privileges")
    # RuntimeDefault is podman's default seccomp profile; anything else is not run here.
    assert context["seccompProfile"]["type"] == "RuntimeDefault"
    limits = container["resources"]["limits"]
    options += [f"--cpus={limits['cpu']}", f"--memory={podman_memory(limits['memory'])}"]
    options += [f"--env={name}={value}" for name, value in env(container).items()]
    volumes: dict[str, Path] = {}
    for volume in spec.get("volumes", []):
        assert set(volume) == {"name", "emptyDir"}, f"volume {volume['name']}: only emptyDir"
        folder = scratch / volume["name"]
        folder.mkdir()
        folder.chmod(0o777)  # as the kubelet makes an emptyDir
        volumes[volume["name"]] = folder
    for mount in container.get("volumeMounts", []):
        mode = "ro" if mount.get("readOnly") else "rw"
        options.append(f"--volume={volumes[mount['name']]}:{mount['mountPath']}:{mode}")
    [port] = [item["containerPort"] for item in container["ports"]]
    return PodRun(options, volumes, port)


def v2_request(rows: list[dict[str, object]]) -> dict[str, object]:
    """An Open Inference Protocol request: one FP32 column per (numeric) feature."""
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(rows), 1],
                "datatype": "FP32",
                "data": [row[name] for row in rows],
            }
            for name in rows[0]
        ]
    }


@contextmanager
def running(image: Image, run: PodRun) -> Iterator[tuple[str, str]]:
    """The container on a network of its own, its port published on 127.0.0.1 at a port
    the host picks: its URL and name. Removed afterwards."""
    name = f"tabml-deploy-test-{uuid.uuid4().hex[:12]}"
    try:
        image.podman(
            "run",
            "--detach",
            "--name",
            name,
            # Kubernetes ignores the image's HEALTHCHECK; the probes stand in for it.
            "--no-healthcheck",
            f"--publish=127.0.0.1::{run.port}",
            *run.options,
            image.tag,
        )
        published = image.podman("port", name, f"{run.port}/tcp").stdout.strip()
        host_port = int(published.splitlines()[0].rsplit(":", 1)[1])
        yield f"http://127.0.0.1:{host_port}", name
    finally:
        image.podman("rm", "--force", "--time=2", name, check=False)


def prediction_log_lines(
    image: Image, name: str, log: str, run: PodRun, spec: Manifest
) -> list[str]:
    """The lines the server has written to its prediction log so far."""
    if log == STANDARD_OUTPUT:
        return image.podman("logs", name).stdout.splitlines()
    [container] = spec["containers"]
    for mount in container.get("volumeMounts", []):
        if Path(log).is_relative_to(mount["mountPath"]):
            on_host = run.volumes[mount["name"]] / Path(log).relative_to(mount["mountPath"])
            return on_host.read_text().splitlines() if on_host.exists() else []
    raise AssertionError(f"prediction log {log} is on no volume")


@pytest.mark.parametrize(("folder", "kind"), PODS)
def test_image_serves_under_the_manifests_constraints(
    folder: str, kind: str, image: Image, breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    spec = pod_spec(one(rendered(folder), kind))
    [container] = spec["containers"]
    assert spec["automountServiceAccountToken"] is False
    run = pod_run(spec, container, tmp_path)
    settings = load_settings({**final_stage().env, **env(container)})
    log = str(settings.prediction_log)
    rows = breast_cancer_model.feature_rows()
    started = time.monotonic()
    with running(image, run) as (url, name):
        wait_ready(url + container["startupProbe"]["httpGet"]["path"], None, timeout=60)
        ready_seconds = time.monotonic() - started
        for probe in ("livenessProbe", "readinessProbe"):
            assert http("GET", url + container[probe]["httpGet"]["path"])[0] == 200
        assert image.podman("exec", name, "id", "-u").stdout.strip() == str(
            spec["securityContext"]["runAsUser"]
        )

        # The Open Inference Protocol (V2), which the InferenceService declares.
        name_in_v2 = breast_cancer_model.metadata["model"]["name"]
        status, body = http(
            "POST", f"{url}/v2/models/{name_in_v2}/infer", json.dumps(v2_request(rows)).encode()
        )
        assert status == 200, body
        assert json.loads(body)["outputs"][0]["shape"][0] == len(rows)

        # The default sample rate logs one row in a hundred: whole batches until some are.
        logged: list[str] = []
        deadline = time.monotonic() + 30
        while not logged and time.monotonic() < deadline:
            status, body = http("POST", f"{url}/predict", json.dumps(rows).encode())
            assert status == 200, body
            assert len(json.loads(body)["predictions"]) == len(rows)
            time.sleep(1.5)  # the server flushes its log about once a second
            logged = prediction_log_lines(image, name, log, run, spec)
        stderr = image.podman("logs", name).stderr

    assert logged, f"no prediction log lines at {log} after 30 s"
    entries = [json.loads(line) for line in logged]  # every line is one JSON object
    assert {entry["prediction"]["label"] for entry in entries} <= {"benign", "malignant"}
    assert {entry["model_version"] for entry in entries} == {
        breast_cancer_model.metadata["model"]["version"]
    }
    # The root filesystem is read-only, so a write outside the volumes would have
    # failed the request or the startup, and shown here.
    assert "Application startup complete" in stderr and "Traceback" not in stderr
    print(
        f"{image.built()}; ready {ready_seconds:.2f} s after podman run; "
        f"{len(entries)} logged rows at {log}; options {' '.join(run.options)}"
    )
