"""How the DVC remote's credentials reach the workflow steps.

On GitHub a step's own `env:` wins over what an earlier step wrote to $GITHUB_ENV, empty
values included (the runner merges the job's GITHUB_ENV into the env context first, then
the step's env block over it). A credential named in a step's `env:` from an unset secret
therefore blanks the keys an OIDC step exported. So the secrets go to $GITHUB_ENV once,
from remote-credentials.sh, and no other step names a credential.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .harness import REPO_ROOT, WORKFLOWS, load_workflow

SCRIPTS = REPO_ROOT / ".github" / "scripts"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_APPLICATION_CREDENTIALS",
}
SECRETS_STEP = "DVC remote credentials (repository secrets)"
OIDC_STEP = "DVC remote credentials (AWS role through OIDC)"


def parse_github_env(text: str) -> dict[str, str]:
    """The runner's reading of a GITHUB_ENV file: NAME=VALUE or NAME<<DELIMITER blocks."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            else:
                raise AssertionError(f"{name}: delimiter {delimiter!r} never closes")
            values[name] = "\n".join(body)
        elif line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


def hand_over(tmp_path: Path, **secrets: str) -> tuple[dict[str, str], str]:
    target = tmp_path / "github_env"
    target.write_text("")
    environ = {
        "PATH": os.environ["PATH"],
        "GITHUB_ENV": str(target),
        **{f"SECRET_{name}": value for name, value in secrets.items()},
    }
    result = subprocess.run(
        ["bash", str(SCRIPTS / "remote-credentials.sh")],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return parse_github_env(target.read_text()), result.stdout


def test_only_secrets_that_are_set_reach_github_env(tmp_path: Path) -> None:
    written, said = hand_over(
        tmp_path,
        AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY="s3cr=t/with+signs",
        AWS_SESSION_TOKEN="",
        AZURE_STORAGE_CONNECTION_STRING="",
    )
    assert written == {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "s3cr=t/with+signs",
    }
    assert "AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY" in said
    assert "AKIAEXAMPLE" not in said, "the values themselves are never printed"


def test_no_secrets_leave_github_env_untouched(tmp_path: Path) -> None:
    written, said = hand_over(tmp_path, AWS_ACCESS_KEY_ID="", AZURE_STORAGE_CONNECTION_STRING="")
    assert written == {}
    assert "come from another step (OIDC)" in said


def test_a_multiline_secret_stays_whole(tmp_path: Path) -> None:
    value = "DefaultEndpointsProtocol=https;\nAccountName=a;\nEOF\nAccountKey=k=="
    written, _ = hand_over(tmp_path, AZURE_STORAGE_CONNECTION_STRING=value)
    assert written == {"AZURE_STORAGE_CONNECTION_STRING": value}


def steps_of(workflow: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job_name, step)
        for job_name, job in workflow["jobs"].items()
        for step in job.get("steps", [])
    ]


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_no_step_names_a_credential_in_its_env(path: Path) -> None:
    workflow = load_workflow(path.name)
    scopes = [("workflow", workflow.get("env") or {})]
    scopes += [(f"job {name}", job.get("env") or {}) for name, job in workflow["jobs"].items()]
    scopes += [
        (f"job {job}, step {step.get('name', step.get('uses'))!r}", step.get("env") or {})
        for job, step in steps_of(workflow)
    ]
    for where, env in scopes:
        named = CREDENTIALS & set(env)
        assert not named, (
            f"{path.name}: {where} sets {sorted(named)} in env:, which would override the "
            "value an earlier step (OIDC) wrote to GITHUB_ENV; let remote-credentials.sh "
            "hand secrets over instead"
        )


def test_every_job_that_checks_the_remote_gets_credentials_first() -> None:
    checked = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in load_workflow(path.name)["jobs"].items():
            names = [step.get("name") for step in job.get("steps", [])]
            if "Check the DVC remote" not in names:
                continue
            checked += 1
            check = names.index("Check the DVC remote")
            assert SECRETS_STEP in names[:check], f"{path.name} job {name}"
            assert OIDC_STEP in names[:check], f"{path.name} job {name}"
            # The role, when configured, wins over key secrets: it comes second.
            assert names.index(SECRETS_STEP) < names.index(OIDC_STEP)
            assert job["permissions"].get("id-token") == "write", (
                f"{path.name} job {name}: the OIDC step needs id-token: write"
            )
    assert checked >= 3


def remote_check(tmp_path: Path, url: str, **env: str) -> str:
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    (project / ".dvc").mkdir()
    (project / ".dvc" / "config").write_text(
        f"[core]\n    remote = shared\n['remote \"shared\"']\n    url = {url}\n"
    )
    output = tmp_path / "output"
    output.write_text("")
    bin_dir = Path(os.environ.get("VIRTUAL_ENV", REPO_ROOT / ".venv")) / "bin"
    result = subprocess.run(
        ["bash", str(SCRIPTS / "dvc-remote.sh")],
        cwd=project,
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "GITHUB_OUTPUT": str(output),
            "DVC_NO_ANALYTICS": "1",
            "TRUSTED": "true",
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return output.read_text().strip()


@pytest.mark.parametrize(
    ("url", "env"),
    [
        ("s3://bucket/path", {"AWS_ACCESS_KEY_ID": "ASIA-from-a-role"}),
        ("s3://bucket/path", {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"}),
        ("azure://container/path", {"AZURE_STORAGE_CONNECTION_STRING": "x"}),
        ("azure://container/path", {"AZURE_CLIENT_ID": "an-app-id"}),
        ("gs://bucket/path", {"GOOGLE_APPLICATION_CREDENTIALS": "/tmp/creds.json"}),
    ],
)
def test_remote_is_enabled_by_any_credential_source(
    tmp_path: Path, url: str, env: dict[str, str]
) -> None:
    assert remote_check(tmp_path, url, **env) == "enabled=true"


def test_remote_without_credentials_is_skipped(tmp_path: Path) -> None:
    assert remote_check(tmp_path, "s3://bucket/path") == "enabled=false"


def test_forget_blanks_every_credential(tmp_path: Path) -> None:
    target = tmp_path / "github_env"
    target.write_text("AWS_ACCESS_KEY_ID<<EOF_x\nAKIAEXAMPLE\nEOF_x\n")
    result = subprocess.run(
        ["bash", str(SCRIPTS / "remote-credentials.sh"), "--forget"],
        env={"PATH": os.environ["PATH"], "GITHUB_ENV": str(target)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    written = parse_github_env(target.read_text())
    assert written["AWS_ACCESS_KEY_ID"] == ""
    assert {name for name, value in written.items() if value == ""} >= {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AZURE_STORAGE_CONNECTION_STRING",
        "GOOGLE_APPLICATION_CREDENTIALS",
    }


# A command a step runs that reaches the DVC remote.
REMOTE_COMMAND = re.compile(r"uv run [^\n]*\b(dvc (push|pull|repro|get-url|update)|refresh-data)\b")
FORGET_STEP = "Forget the DVC remote credentials"


def test_credentials_are_forgotten_after_the_last_step_that_uses_the_remote() -> None:
    checked = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in load_workflow(path.name)["jobs"].items():
            steps = job.get("steps", [])
            names = [step.get("name") for step in steps]
            if SECRETS_STEP not in names:
                continue
            checked += 1
            last_remote = max(
                i for i, step in enumerate(steps) if REMOTE_COMMAND.search(step.get("run", ""))
            )
            assert FORGET_STEP in names[last_remote + 1 :], (
                f"{path.name} job {name}: no {FORGET_STEP!r} after {names[last_remote]!r}"
            )
    assert checked >= 5
