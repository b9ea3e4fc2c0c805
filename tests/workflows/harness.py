"""Run the workflows with `act` in host mode on a temporary copy of the template.

act runs every `run:` step on this machine, in a copy of the project it makes under the
run's action cache. Third-party actions cannot be fetched here, so each one the
workflows pin is mapped (`--local-repository owner/name@sha=DIR`) to a local composite
stand-in (standins/), which records what it was asked to do. The mapping is read from
the workflows themselves, so a re-pinned action needs no change here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.availability import require_tool
from tests.integration.project import BIN, Project, uv_executable
from tests.tools import run_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
STANDINS = Path(__file__).resolve().parent / "standins"
SCRIPTS = REPO_ROOT / ".github" / "scripts"
# Stand-in folder per third-party action; actions/checkout is act's own (it uses the copy).
STANDIN_FOR = {
    "actions/setup-python": "setup-python",
    "astral-sh/setup-uv": "setup-uv",
    "actions/upload-artifact": "upload-artifact",
    "iterative/setup-cml": "setup-cml",
    "docker/setup-buildx-action": "setup-buildx-action",
    "docker/login-action": "login-action",
    "docker/build-push-action": "build-push-action",
    "aws-actions/configure-aws-credentials": "configure-aws-credentials",
    "actions/create-github-app-token": "create-github-app-token",
    "anchore/scan-action": "scan-action",
    "actions/attest-build-provenance": "attest-build-provenance",
    "sigstore/cosign-installer": "cosign-installer",
}
ACT_TIMEOUT = 900
# The repository act reports as github.repository (from the origin URL).
REPOSITORY = "acme/tabml-models"


def load_workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return loaded


def load_script(name: str) -> ModuleType:
    """One of the workflows' scripts (.github/scripts/NAME.py), imported from its file."""
    # The scripts import each other as they do when run: from their own folder.
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first, as an import would: dataclasses look their module up by name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pinned_actions() -> set[str]:
    """Every `owner/name@ref` that a workflow uses."""
    found = set()
    for path in WORKFLOWS.glob("*.yml"):
        found.update(re.findall(r"uses:\s*([\w.-]+/[\w.-]+@[^\s#]+)", path.read_text()))
    return found


def local_repository_flags() -> list[str]:
    flags = []
    for uses in sorted(pinned_actions()):
        action = uses.split("@")[0]
        if action == "actions/checkout":
            continue
        if action not in STANDIN_FOR:
            raise AssertionError(f"{uses}: no stand-in in {STANDINS} for this action")
        flags += ["--local-repository", f"{uses}={STANDINS / STANDIN_FOR[action]}"]
    return flags


def publish_origin(project: Project, bare: Path) -> None:
    """Give the project an origin on GitHub (as act sees it) that pushes to `bare`."""
    project.run("git", "init", "-q", "--bare", str(bare))
    project.git("remote", "add", "origin", f"https://github.com/{REPOSITORY}.git")
    project.git("config", "remote.origin.pushurl", str(bare))
    project.git("push", "-q", "origin", "main")
    # What a full-history checkout has: origin/main, as the bare repository holds it.
    project.git("fetch", "-q", str(bare), "+refs/heads/*:refs/remotes/origin/*")


def pr_event(number: int, head_repo: str, head_ref: str, base_ref: str = "main") -> dict[str, Any]:
    owner, name = REPOSITORY.split("/")
    return {
        "number": number,
        "action": "synchronize",
        "repository": {"full_name": REPOSITORY, "name": name, "owner": {"login": owner}},
        "pull_request": {
            "number": number,
            "head": {"ref": head_ref, "repo": {"full_name": head_repo}},
            "base": {"ref": base_ref, "repo": {"full_name": REPOSITORY}},
        },
    }


def push_event(ref: str = "refs/heads/main") -> dict[str, Any]:
    owner, name = REPOSITORY.split("/")
    return {
        "ref": ref,
        "repository": {
            "full_name": REPOSITORY,
            "name": name,
            "owner": {"login": owner},
            "default_branch": "main",
        },
    }


@dataclass
class ActRun:
    returncode: int
    output: str
    record: Path

    def calls(self, kind: str) -> list[dict[str, Any]]:
        path = self.record / "calls.jsonl"
        if not path.is_file():
            return []
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        return [entry for entry in entries if entry["kind"] == kind]

    def step_ran(self, name: str) -> bool:
        return f"Success - Main {name}" in self.output or f"Failure - Main {name}" in self.output

    def step_succeeded(self, name: str) -> bool:
        return f"Success - Main {name}" in self.output

    def step_failed(self, name: str) -> bool:
        return f"Failure - Main {name}" in self.output

    def explain(self) -> str:
        return f"act exited {self.returncode}; last output:\n{self.output[-12000:]}"


def run_act(
    project: Project,
    workflow: str,
    event_name: str,
    event: dict[str, Any],
    work: Path,
    *,
    secrets: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    path: list[Path] | None = None,
    job: str | None = None,
    variables: dict[str, str] | None = None,
) -> ActRun:
    """`act EVENT` for `workflow` in `project`, with every state folder under `work`."""
    act = require_tool("act")
    work.mkdir(parents=True, exist_ok=True)
    record = work / "record"
    event_file = work / "event.json"
    event_file.write_text(json.dumps(event))
    secret_file = work / "secrets.env"
    secret_file.write_text("".join(f"{k}={v}\n" for k, v in (secrets or {}).items()))
    environ = {
        key: value
        for key, value in project.env.items()
        if not key.startswith(("GITHUB_", "RUNNER_", "ACT", "INPUT_")) and key != "VIRTUAL_ENV"
    }
    uv = uv_executable()
    uv_cache = run_tool([uv, "cache", "dir"], check=False).stdout.strip()
    extra_path = [str(p) for p in (path or [])]
    # The workflow finds tools as a runner does: uv on PATH, not this checkout's venv.
    system_path = [
        entry for entry in environ.get("PATH", "").split(os.pathsep) if entry != str(BIN)
    ]
    environ.update(
        PATH=os.pathsep.join([*extra_path, str(Path(uv).parent), *system_path]),
        XDG_CACHE_HOME=str(work / "xdg-cache"),
        XDG_CONFIG_HOME=str(work / "xdg-config"),
        UV_CACHE_DIR=uv_cache or str(Path.home() / ".cache" / "uv"),
    )
    command = [
        act,
        event_name,
        "--eventpath",
        str(event_file),
        "--workflows",
        str(WORKFLOWS.relative_to(REPO_ROOT) / workflow),
        "--platform",
        "ubuntu-latest=-self-hosted",
        "--action-cache-path",
        str(work / "action-cache"),
        "--no-cache-server",
        "--secret-file",
        str(secret_file),
        "--env",
        f"STANDIN_RECORD={record}",
        "--env",
        f"STANDIN_SCRIPT={STANDINS / 'standin.py'}",
        *local_repository_flags(),
    ]
    for key, value in (env or {}).items():
        command += ["--env", f"{key}={value}"]
    for key, value in (variables or {}).items():
        command += ["--var", f"{key}={value}"]
    if job:
        command += ["--job", job]
    # act's failures are the tests' subject: ActRun.explain() shows its output.
    result = run_tool(command, cwd=project.path, env=environ, timeout=ACT_TIMEOUT, check=False)
    output = result.stdout + result.stderr
    (work / "act.log").write_text(output)
    return ActRun(result.returncode, output, record)
