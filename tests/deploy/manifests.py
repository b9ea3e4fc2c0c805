"""The manifests under deploy/, rendered by the real `kubectl kustomize`, and what the
tests read from them: objects by kind, pod specs, containers, images and env."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.availability import require_tool
from tests.tools import run_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
OVERLAYS = ("staging", "production")
# Every folder with a kustomization.yaml that is meant to be applied (the base and the
# component are only ever rendered through an overlay).
APPLIED = (
    *(f"overlays/{name}" for name in OVERLAYS),
    "kserve",
    "batch",
    "gitops/argocd",
    "gitops/flux",
)
# Where pods are, in the kinds deploy/ has: a Deployment's template, a CronJob's job
# template and a KServe predictor (a pod spec inlined in the component).
POD_SPEC_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "InferenceService": ("spec", "predictor"),
}
# registry/name@sha256:<64 hex>, the form that names one image for good.
PINNED_IMAGE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")

Manifest = dict[str, Any]


def render(folder: Path) -> list[Manifest]:
    """`kubectl kustomize folder`, parsed: one dict per object."""
    kubectl = require_tool("kubectl")
    output = run_tool([kubectl, "kustomize", str(folder)], timeout=60).stdout
    return [document for document in yaml.safe_load_all(output) if document]


@cache
def rendered(name: str) -> tuple[Manifest, ...]:
    """The objects of deploy/`name`, rendered once per test process."""
    return tuple(render(DEPLOY / name))


def of_kind(objects: tuple[Manifest, ...] | list[Manifest], kind: str) -> list[Manifest]:
    return [item for item in objects if item["kind"] == kind]


def one(objects: tuple[Manifest, ...] | list[Manifest], kind: str) -> Manifest:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec(manifest: Manifest) -> Manifest:
    node: Manifest = manifest
    for key in POD_SPEC_PATHS[manifest["kind"]]:
        node = node[key]
    return node


def pod_specs(objects: tuple[Manifest, ...] | list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """(kind/name, pod spec) of every object that runs pods."""
    for item in objects:
        if item["kind"] in POD_SPEC_PATHS:
            yield f"{item['kind']}/{item['metadata']['name']}", pod_spec(item)


def containers(spec: Manifest) -> list[Manifest]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def unpinned_images(objects: tuple[Manifest, ...] | list[Manifest]) -> list[str]:
    """Each image, named as `kind/name: image`, that no sha256 digest pins."""
    return [
        f"{where}: {container['image']}"
        for where, spec in pod_specs(objects)
        for container in containers(spec)
        if not PINNED_IMAGE.match(container["image"])
    ]


def env(container: Manifest) -> dict[str, str]:
    """The container's literal env values (deploy/ uses no valueFrom)."""
    return {item["name"]: item["value"] for item in container.get("env", [])}


def named_port(container: Manifest, name: str) -> int:
    [port] = [item["containerPort"] for item in container["ports"] if item.get("name") == name]
    return int(port)


def load_yaml(path: Path) -> Manifest:
    loaded: Manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded
