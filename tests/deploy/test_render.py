"""Every kustomization under deploy/ renders with `kubectl kustomize`, and every image an
applied folder renders is pinned by a sha256 digest, never by a tag that can move."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.deploy.manifests import (
    APPLIED,
    DEPLOY,
    OVERLAYS,
    containers,
    of_kind,
    pod_specs,
    render,
    rendered,
    unpinned_images,
)

# RFC 1123 labels: what a namespace, a Service and most object names must be (a project
# renamed with an underscore in these names would fail here, not in the cluster).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
KINDS_PER_OVERLAY = {
    "Namespace",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
}


@pytest.mark.parametrize("name", APPLIED)
def test_each_applied_folder_renders(name: str) -> None:
    assert rendered(name), f"deploy/{name} rendered no objects"


def test_every_kustomization_is_applied_or_reached_from_an_overlay() -> None:
    """A kustomization that nothing renders would go unchecked."""
    folders = {path.parent.relative_to(DEPLOY).as_posix() for path in DEPLOY.rglob("*.yaml")}
    kustomized = {
        path.parent.relative_to(DEPLOY).as_posix() for path in DEPLOY.rglob("kustomization.yaml")
    }
    assert kustomized - set(APPLIED) == {"base", "components/network-policy"}
    assert folders == kustomized


@pytest.mark.parametrize("name", APPLIED)
def test_object_names_and_namespaces_are_dns_labels(name: str) -> None:
    for item in rendered(name):
        metadata = item["metadata"]
        for value in (metadata["name"], metadata.get("namespace", "default")):
            assert DNS_LABEL.match(value), f"{item['kind']} {value!r} is not an RFC 1123 label"
        for reference in ("sourceRef", "scaleTargetRef"):
            target = item.get("spec", {}).get(reference)
            if target:
                assert DNS_LABEL.match(target["name"]), f"{item['kind']} {reference} {target}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_has_every_object_in_its_own_namespace(overlay: str) -> None:
    objects = rendered(f"overlays/{overlay}")
    assert {item["kind"] for item in objects} == KINDS_PER_OVERLAY
    namespace = f"tabml-{overlay}"
    for item in objects:
        if item["kind"] != "Namespace":
            assert item["metadata"]["namespace"] == namespace, item["metadata"]["name"]


@pytest.mark.parametrize("name", [*(f"overlays/{o}" for o in OVERLAYS), "kserve", "batch"])
def test_every_image_is_pinned_by_digest(name: str) -> None:
    objects = rendered(name)
    assert [c["image"] for _, spec in pod_specs(objects) for c in containers(spec)]
    assert unpinned_images(objects) == []


def test_the_base_alone_names_no_pullable_image() -> None:
    """The base's image is a bare name every overlay replaces, so the digest check fails
    on it; an overlay that forgot `images:` would fail the same way."""
    assert unpinned_images(render(DEPLOY / "base")) == ["Deployment/tabml-serve: tabml-serve"]


def test_an_overlay_pinned_by_tag_fails_the_digest_check(tmp_path: Path) -> None:
    overlay = tmp_path / "by-tag"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources: [{os.path.relpath(DEPLOY / 'base', overlay)}]\n"
        "images:\n"
        "  - name: tabml-serve\n"
        "    newName: ghcr.io/example/tabml\n"
        "    newTag: v1.2.3\n"
    )
    assert unpinned_images(render(overlay)) == [
        "Deployment/tabml-serve: ghcr.io/example/tabml:v1.2.3"
    ]


def test_staging_scales_smaller_than_production() -> None:
    [staging] = of_kind(rendered("overlays/staging"), "HorizontalPodAutoscaler")
    [production] = of_kind(rendered("overlays/production"), "HorizontalPodAutoscaler")
    assert (staging["spec"]["minReplicas"], staging["spec"]["maxReplicas"]) == (1, 2)
    assert (production["spec"]["minReplicas"], production["spec"]["maxReplicas"]) == (2, 10)
