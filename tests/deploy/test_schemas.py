"""The rendered objects are valid Kubernetes objects, checked offline: built-in kinds
against the Kubernetes JSON schemas that kubernetes-validate ships, custom resources
(KServe, Argo CD, Flux) against their projects' CRD schemas in crds/ (README.md there
names the sources). Unknown fields are refused in both, as `kubectl apply` refuses them
(its default field validation is strict)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.manifests import APPLIED, Manifest, rendered

# The kubectl these manifests are rendered with (1.32) and the oldest API server they are
# written for: autoscaling/v2 and policy/v1 are there since 1.23 and 1.21.
KUBERNETES_VERSION = "1.32"
CRDS = Path(__file__).parent / "crds"
# apiVersion and kind -> the file in crds/ holding that version's schema.
CRD_SCHEMAS = {
    (
        "serving.kserve.io/v1beta1",
        "InferenceService",
    ): "serving.kserve.io_v1beta1_inferenceservice.json",
    ("argoproj.io/v1alpha1", "Application"): "argoproj.io_v1alpha1_application.json",
    (
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
    ): "kustomize.toolkit.fluxcd.io_v1_kustomization.json",
    (
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
    ): "source.toolkit.fluxcd.io_v1_gitrepository.json",
}


def strict(schema: Any) -> Any:
    """`schema` with unknown fields refused wherever it lists properties and neither
    allows extra ones nor preserves unknown fields, as the API server's strict field
    validation does for a CRD."""
    if isinstance(schema, dict):
        result = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            result["additionalProperties"] = False
        if "properties" in schema:
            result["properties"] = {
                name: strict(value) for name, value in schema["properties"].items()
            }
        return result
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft4Validator:
    stored = json.loads((CRDS / CRD_SCHEMAS[api_version, kind]).read_text(encoding="utf-8"))
    assert f"{stored['group']}/{stored['version']}" == api_version and stored["kind"] == kind
    schema = strict(stored["openAPIV3Schema"])
    # metadata is the API server's ObjectMeta, which a CRD schema leaves open.
    schema["properties"]["metadata"]["additionalProperties"] = True
    return jsonschema.Draft4Validator(schema)


def crd_errors(manifest: Manifest) -> list[str]:
    validator = crd_validator(manifest["apiVersion"], manifest["kind"])
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]


def is_custom(manifest: Manifest) -> bool:
    return (manifest["apiVersion"], manifest["kind"]) in CRD_SCHEMAS


def kubernetes_errors(manifest: Manifest) -> list[str]:
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path)) or '(root)'}: {error.message}"]
    return []


def errors(manifest: Manifest) -> list[str]:
    return crd_errors(manifest) if is_custom(manifest) else kubernetes_errors(manifest)


@pytest.mark.parametrize("name", APPLIED)
def test_rendered_objects_are_valid(name: str) -> None:
    found = {f"{item['kind']}/{item['metadata']['name']}": errors(item) for item in rendered(name)}
    assert {where: problems for where, problems in found.items() if problems} == {}


def test_each_stored_crd_schema_is_used() -> None:
    """A kind with neither a CRD schema here nor a Kubernetes schema in
    kubernetes-validate fails test_rendered_objects_are_valid (SchemaNotFoundError)."""
    kinds = {(item["apiVersion"], item["kind"]) for name in APPLIED for item in rendered(name)}
    assert set(CRD_SCHEMAS) <= kinds


def test_a_kind_without_any_schema_is_an_error() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        errors(unknown)


def misspelled(manifest: Manifest, path: tuple[str | int, ...], wrong: str) -> Manifest:
    """`manifest` with the key at `path` renamed to `wrong`."""
    changed = copy.deepcopy(manifest)
    node: Any = changed
    for key in path[:-1]:
        node = node[key]
    node[wrong] = node.pop(path[-1])
    return changed


@pytest.mark.parametrize(
    ("name", "kind", "path", "wrong"),
    [
        (
            "overlays/production",
            "Deployment",
            ("spec", "template", "spec", "securityContext", "runAsNonRoot"),
            "runAsNonroot",
        ),
        ("overlays/staging", "HorizontalPodAutoscaler", ("spec", "maxReplicas"), "maxReplica"),
        ("kserve", "InferenceService", ("spec", "predictor", "minReplicas"), "minReplica"),
        (
            "kserve",
            "InferenceService",
            ("spec", "predictor", "containers", 0, "readinessProbe"),
            "readynessProbe",
        ),
        ("gitops/argocd", "Application", ("spec", "source", "path"), "paht"),
        ("gitops/flux", "Kustomization", ("spec", "prune"), "purne"),
        ("gitops/flux", "GitRepository", ("spec", "ref", "branch"), "brnach"),
    ],
)
def test_a_misspelled_field_is_refused(
    name: str, kind: str, path: tuple[str | int, ...], wrong: str
) -> None:
    [manifest] = [item for item in rendered(name) if item["kind"] == kind][:1]
    assert errors(manifest) == []
    assert errors(misspelled(manifest, path, wrong)), f"{kind} with {wrong} was accepted"


def test_a_wrong_type_is_refused_by_the_crd_schema() -> None:
    [service] = [item for item in rendered("kserve") if item["kind"] == "InferenceService"]
    changed = copy.deepcopy(service)
    changed["spec"]["predictor"]["maxReplicas"] = "six"
    assert any("maxReplicas" in problem for problem in crd_errors(changed))
