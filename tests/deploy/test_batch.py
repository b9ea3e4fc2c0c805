"""The batch-scoring CronJob (deploy/batch) runs the serving image as hardened as the
Deployment does, with a command the image's scoring entry point accepts, reading from a
read-only volume and writing to a writable one."""

from __future__ import annotations

import argparse
from pathlib import PurePosixPath

from tabml.score.command import add_arguments
from tests.deploy.dockerfile import final_stage
from tests.deploy.manifests import REPO_ROOT, Manifest, env, one, pod_spec, rendered

HARDENING = ("automountServiceAccountToken", "enableServiceLinks")


def cron_job() -> tuple[Manifest, Manifest, Manifest]:
    """The CronJob, its pod spec and its one container."""
    job = one(rendered("batch"), "CronJob")
    spec = pod_spec(job)
    [container] = spec["containers"]
    return job, spec, container


def deployment() -> tuple[Manifest, Manifest]:
    spec = pod_spec(one(rendered("overlays/production"), "Deployment"))
    [container] = spec["containers"]
    return spec, container


def scoring_args(container: Manifest) -> argparse.Namespace:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser, defaults_from="ScoreOptions")
    return parser.parse_args(container["args"])


def test_the_pod_is_hardened_as_the_deployment_is() -> None:
    _, spec, container = cron_job()
    served_spec, served = deployment()
    for key in HARDENING:
        assert spec[key] is served_spec[key] is False
    pod_context = {key: value for key, value in spec["securityContext"].items() if key != "fsGroup"}
    assert pod_context == served_spec["securityContext"]
    assert container["securityContext"] == served["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_it_runs_the_serving_image_with_the_scoring_entry_point() -> None:
    _, _, container = cron_job()
    _, served = deployment()
    # The same repository; each folder moves to a released digest on its own.
    assert container["image"].split("@")[0] == served["image"].split("@")[0]
    assert container["command"] == ["python", "-m", "tabml.score"]
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for module in ("score/", "errors.py"):
        assert f"COPY src/tabml/{module} /opt/app/tabml/{module}\n" in dockerfile
    stage = final_stage()
    assert PurePosixPath(env(container)["TABML_MODEL_DIR"]) == PurePosixPath(
        stage.copies["models/"]
    )


def test_it_reads_a_read_only_volume_and_writes_a_writable_one() -> None:
    job, spec, container = cron_job()
    args = scoring_args(container)
    mounts = {PurePosixPath(mount["mountPath"]): mount for mount in container["volumeMounts"]}

    def mount_of(path: str) -> Manifest:
        [found] = [m for where, m in mounts.items() if PurePosixPath(path).is_relative_to(where)]
        return found

    assert mount_of(str(args.input)).get("readOnly") is True
    assert not mount_of(str(args.output)).get("readOnly")
    assert args.output.suffix == args.input.suffix == ".csv"  # the image has no pyarrow
    claims = {volume["name"]: volume["persistentVolumeClaim"] for volume in spec["volumes"]}
    objects = rendered("batch")
    names = {
        item["metadata"]["name"] for item in objects if item["kind"] == "PersistentVolumeClaim"
    }
    assert {claim["claimName"] for claim in claims.values()} == names
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    assert spec["restartPolicy"] == "Never"
