"""checkov, a policy linter, finds nothing in the rendered overlays and the batch
CronJob; waivers, if any,
are in checkov.yaml with their reasons.

checkov pins many packages (packaging, networkx, boto3 among them) at versions older
than the project's lock holds, so it is not in uv.lock: it runs from its own
environment with `uv tool run`, at the version pinned here (PyPI must be reachable the
first time; uv caches it). Its Kubernetes checks know built-in kinds only: the KServe
InferenceService is checked by the CRD schema and the agreement tests instead."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.availability import INSTALL_PYTHON_TOOLS, unavailable
from tests.deploy.manifests import OVERLAYS, REPO_ROOT, rendered
from tests.tools import run_tool

pytestmark = pytest.mark.slow

CHECKOV = "checkov==3.3.30"
CONFIG = Path(__file__).parent / "checkov.yaml"


def uv() -> str:
    """The uv that `make setup` uses: on PATH, else the one it fetched into .tools/."""
    __tracebackhide__ = True
    found = shutil.which("uv") or REPO_ROOT / ".tools" / "bin" / "uv"
    if not Path(found).is_file():
        unavailable("uv", "uv runs checkov in its own environment", install=INSTALL_PYTHON_TOOLS)
    return str(found)


def checkov(folder: Path) -> dict[str, Any]:
    """checkov's JSON report on the manifests in `folder`."""
    result = run_tool(
        [uv(), "tool", "run", "--from", CHECKOV, "checkov", "--config-file", CONFIG, "-d", folder],
        check=False,
        timeout=600,
    )
    assert result.returncode in {0, 1}, result.stderr[-4000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def weakened(deployment_yaml: str) -> str:
    """The rendered production objects with a writable root filesystem."""
    documents = list(yaml.safe_load_all(deployment_yaml))
    for document in documents:
        if document["kind"] == "Deployment":
            [container] = document["spec"]["template"]["spec"]["containers"]
            container["securityContext"]["readOnlyRootFilesystem"] = False
    return yaml.safe_dump_all(documents)


def test_checkov_finds_nothing_in_the_overlays_and_catches_a_weakened_copy(
    tmp_path: Path,
) -> None:
    for overlay in OVERLAYS:
        text = yaml.safe_dump_all(rendered(f"overlays/{overlay}"))
        (tmp_path / f"{overlay}.yaml").write_text(text)
    (tmp_path / "batch.yaml").write_text(yaml.safe_dump_all(rendered("batch")))
    production = (tmp_path / "production.yaml").read_text()
    (tmp_path / "weakened.yaml").write_text(weakened(production))

    report = checkov(tmp_path)
    results = report["results"]
    failed = sorted((check["file_path"], check["check_id"]) for check in results["failed_checks"])
    passed = {check["file_path"] for check in results["passed_checks"]}
    skipped = results["skipped_checks"]
    print(f"checkov {report['summary']['checkov_version']}: {report['summary']}")
    assert failed == [("/weakened.yaml", "CKV_K8S_22")]
    assert passed == {"/staging.yaml", "/production.yaml", "/batch.yaml", "/weakened.yaml"}
    assert skipped == []


def test_each_waiver_gives_its_reason() -> None:
    """A check in checkov.yaml's skip-check has a comment on the line above it."""
    waived = yaml.safe_load(CONFIG.read_text())["skip-check"] or []
    lines = CONFIG.read_text().splitlines()
    for check in waived:
        [index] = [i for i, line in enumerate(lines) if line.strip() == f"- {check}"]
        assert lines[index - 1].strip().startswith("# "), f"{check} is waived without a reason"
