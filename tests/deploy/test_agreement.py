"""The manifests agree with the image and the server, read from both sides: a port, a
probe path, a setting's name, the user or the model folder renamed on one side fails
here.

Sides: deploy/ rendered by kubectl; the Dockerfile's final stage (its ENV, USER, EXPOSE
and COPY); the server's settings (tabml.serve.settings) and its routes (the app itself,
asked over ASGI)."""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

import pytest

from tabml.serve.app import ServingApp
from tabml.serve.settings import Settings, env_name, load_settings
from tests.deploy.dockerfile import final_stage
from tests.deploy.manifests import (
    OVERLAYS,
    REPO_ROOT,
    Manifest,
    env,
    named_port,
    one,
    pod_specs,
    rendered,
)
from tests.serve.conftest import AsgiClient, ExportedModel, make_client

SERVE_BENCHMARK = REPO_ROOT / "benchmarks" / "results" / "serve.json"
MEBIBYTES = re.compile(r"^(\d+)Mi$")
SERVER_SETTINGS = {env_name(field) for field in Settings.model_fields}
# Variables KServe itself reads from a custom predictor's container (its CustomPredictor
# takes the protocol from PROTOCOL); the server ignores them.
KSERVE_ENV = {"PROTOCOL"}
# The rendered folders that run the image, and the env names other than settings each may set.
RUNS_THE_IMAGE = {
    **{f"overlays/{name}": set[str]() for name in OVERLAYS},
    "kserve": KSERVE_ENV,
}
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
# STDOUT in tabml.serve.prediction_log: the value of TABML_PREDICTION_LOG for standard
# output.
STANDARD_OUTPUT = "-"


def server_container(folder: str) -> tuple[Manifest, Manifest]:
    """The pod spec in deploy/`folder` that runs the image, and its one container."""
    [(_, spec)] = list(pod_specs(rendered(folder)))
    [container] = spec["containers"]
    return spec, container


def settings_in(container: Manifest) -> Settings:
    """The settings the server starts with in this container: the image's ENV, then the
    manifest's env over it."""
    return load_settings({**final_stage().env, **env(container)})


@pytest.mark.parametrize("folder", RUNS_THE_IMAGE)
def test_every_env_name_is_a_setting_the_server_reads(folder: str) -> None:
    _, container = server_container(folder)
    names = set(env(container))
    assert names - SERVER_SETTINGS == RUNS_THE_IMAGE[folder]
    settings_in(container)  # every value is one the server starts with


def test_a_renamed_setting_fails_the_name_check() -> None:
    renamed = {"TABML_PREDICTIONS_LOG": "-"}
    assert set(renamed) - SERVER_SETTINGS == {"TABML_PREDICTIONS_LOG"}


@pytest.mark.parametrize("folder", RUNS_THE_IMAGE)
def test_port_agrees_with_the_image_and_the_server(folder: str) -> None:
    _, container = server_container(folder)
    settings = settings_in(container)
    [port] = [item["containerPort"] for item in container["ports"]]
    assert port == settings.port == int(final_stage().env["TABML_PORT"])
    assert final_stage().exposed == (port,)
    # Reachable from outside the pod: the server binds every address.
    assert settings.host == "0.0.0.0"
    for probe in PROBES:
        assert container[probe]["httpGet"]["port"] in {port, container["ports"][0]["name"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_sends_traffic_to_the_servers_port(overlay: str) -> None:
    objects = rendered(f"overlays/{overlay}")
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    [port] = one(objects, "Service")["spec"]["ports"]
    assert named_port(container, port["targetPort"]) == settings_in(container).port


@pytest.mark.parametrize("folder", RUNS_THE_IMAGE)
def test_user_is_the_images_user(folder: str) -> None:
    spec, container = server_container(folder)
    user, group = final_stage().user.split(":")
    for context in (spec["securityContext"], container["securityContext"]):
        assert (context["runAsUser"], context["runAsGroup"]) == (int(user), int(group))
        assert context["runAsNonRoot"] is True


@pytest.mark.parametrize("folder", RUNS_THE_IMAGE)
def test_model_folder_is_where_the_image_copies_the_model(folder: str) -> None:
    _, container = server_container(folder)
    copied = PurePosixPath(final_stage().copies["models/"])
    assert PurePosixPath(settings_in(container).model_dir) == copied


@pytest.mark.parametrize("folder", RUNS_THE_IMAGE)
def test_prediction_log_goes_where_the_root_filesystem_is_not(folder: str) -> None:
    """The root filesystem is read-only, so the log is standard output or a file on a
    mounted volume that is not read-only."""
    _, container = server_container(folder)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    log = settings_in(container).prediction_log
    assert log is not None, "no prediction log: drift checks would have no sample"
    if str(log) == STANDARD_OUTPUT:
        return
    writable = [
        PurePosixPath(mount["mountPath"])
        for mount in container.get("volumeMounts", [])
        if not mount.get("readOnly")
    ]
    assert any(PurePosixPath(log).is_relative_to(path) for path in writable), (log, writable)


@pytest.mark.parametrize("folder", RUNS_THE_IMAGE)
def test_probes_ask_the_servers_own_endpoints(
    folder: str, breast_cancer_model: ExportedModel
) -> None:
    """Startup and readiness answer 200 only once the model is loaded (503 before);
    liveness answers 200 while the model loads, so a slow load is not a restart."""
    _, container = server_container(folder)
    paths = {probe: container[probe]["httpGet"]["path"] for probe in PROBES}
    not_started = ServingApp(Settings(model_dir=breast_cancer_model.directory))
    with AsgiClient(not_started, lifespan=False) as loading:
        before = {probe: loading.get(path).status for probe, path in paths.items()}
    with make_client(breast_cancer_model) as loaded:
        after = {probe: loaded.get(path).status for probe, path in paths.items()}
        assert loaded.get("/healthz").status == 404  # a path the server lacks fails here
    assert before == {"startupProbe": 503, "livenessProbe": 200, "readinessProbe": 503}
    assert after == dict.fromkeys(PROBES, 200)


def mebibytes(quantity: str) -> int:
    found = MEBIBYTES.match(quantity)
    assert found, f"memory {quantity!r}: deploy/ states memory in Mi"
    return int(found.group(1))


@pytest.mark.parametrize("folder", RUNS_THE_IMAGE)
def test_memory_fits_the_benchmarks_figure_and_the_request_bound(folder: str) -> None:
    """The request covers the benchmark's resident memory with a fifth to spare at least;
    the limit also covers every request slot buffering a body of the largest size."""
    _, container = server_container(folder)
    resident = json.loads(SERVE_BENCHMARK.read_text())["servers"]["tabml"]["rss_mib_after_load"]
    settings = settings_in(container)
    bodies = settings.max_concurrent_requests * settings.max_body_bytes / 2**20
    resources = container["resources"]
    assert mebibytes(resources["requests"]["memory"]) >= 1.2 * resident
    assert mebibytes(resources["limits"]["memory"]) >= resident + bodies
