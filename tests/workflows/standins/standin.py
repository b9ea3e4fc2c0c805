"""Local stand-ins for third-party actions and CLIs that cannot be reached offline.

Each stand-in does the part of the real thing that can run here and records what it
was asked to do as one JSON line in $STANDIN_RECORD/calls.jsonl, for the tests to read:

  setup-python, setup-uv     check the tool is on PATH (the host's; nothing is installed)
  upload-artifact            copy the paths into $STANDIN_RECORD/artifacts/NAME
  setup-cml                  put a `cml` command on PATH that records its arguments and
                             the report file it was given (nothing is posted)
  setup-buildx, login        check `docker` is on PATH / record the registry and user
  configure-aws-credentials  export the keys in the JSON file $STANDIN_AWS_ROLE_KEYS to
                             $GITHUB_ENV, as the real action exports an assumed role's
                             session (no step of the workflow sees them otherwise)
  build-push                 really build with `docker build` (podman here); with push,
                             `docker push` each tag (the stand-in registry below) and
                             output the digest; records the inputs (sbom, provenance...)
  scan-action                check that the image to scan is a local image, and report
                             the finding $STANDIN_SCAN_FINDING names (a severity, or none)
                             under the real action's rule: fail-build (default true)
                             fails on a finding at or above severity-cutoff (default medium)
  attest-build-provenance    refuse a subject without a name or a sha256 digest; record it
  cosign-installer           put a `cosign` command on PATH that records its arguments
  gh                         `gh release view/create/edit` against releases kept in
                             $STANDIN_GITHUB/releases.json; each call is recorded, and
                             $STANDIN_GH_FAIL=create makes `release create` fail (an
                             interrupted run); `gh attestation verify` passes for the
                             subjects and owners $STANDIN_GITHUB/attestations.json lists
  registry                   the registry side of `docker push` and `docker buildx
                             imagetools inspect/create`: tags and digests kept in
                             $STANDIN_REGISTRY/tags.json (a digest is the local image id)
  create-github-app-token    refuse an empty client id or key, as the real one does, and
                             output the token "ghs_installation_<client-id>"

Usage: standin.py KIND [ARGS...]; inputs come from INPUT_* variables, as for real actions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def record_dir() -> Path:
    path = Path(os.environ["STANDIN_RECORD"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def record(kind: str, **data: Any) -> None:
    with (record_dir() / "calls.jsonl").open("a") as out:
        out.write(json.dumps({"kind": kind, **data}) + "\n")


def inputs(*names: str) -> dict[str, str]:
    return {name: os.environ.get(f"INPUT_{name.upper()}", "") for name in names}


def lines(value: str) -> list[str]:
    return [line.strip() for line in value.replace(",", "\n").splitlines() if line.strip()]


def set_output(name: str, value: str) -> None:
    with Path(os.environ["GITHUB_OUTPUT"]).open("a") as out:
        out.write(f"{name}={value}\n")


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        sys.exit(f"stand-in: {tool} is not on PATH")
    return found


def setup_python() -> None:
    given = inputs("python-version")
    version = subprocess.run(
        [require("python3"), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"stand-in setup-python: asked for {given['python-version']}, using the host's {version}")
    record("setup-python", inputs=given, host=version)


def setup_uv() -> None:
    given = inputs("enable-cache", "cache-dependency-glob", "version")
    record("setup-uv", inputs=given, uv=require("uv"))


def upload_artifact() -> None:
    given = inputs("name", "path", "retention-days")
    workspace = Path(os.environ["GITHUB_WORKSPACE"])
    target = record_dir() / "artifacts" / given["name"]
    copied = []
    for entry in lines(given["path"].replace(",", "\n")):
        source = workspace / entry
        if not source.exists():
            sys.exit(f"stand-in upload-artifact: {entry} does not exist")
        destination = target / entry.rstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, dirs_exist_ok=True)
        else:
            shutil.copy2(source, destination)
        copied.append(entry)
    url = (
        f"{os.environ['GITHUB_SERVER_URL']}/{os.environ['GITHUB_REPOSITORY']}"
        f"/actions/runs/{os.environ['GITHUB_RUN_ID']}/artifacts/{given['name']}"
    )
    set_output("artifact-url", url)
    record("upload-artifact", inputs=given, copied=copied, url=url)


def command_shim(name: str) -> None:
    """A `name` command on PATH for the next steps that runs `standin.py name ...`."""
    bin_dir = Path(os.environ["RUNNER_TEMP"]) / "standin-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / name
    shim.write_text(f'#!/bin/sh\nexec python3 "{HERE / "standin.py"}" {name} "$@"\n')
    shim.chmod(0o755)
    with Path(os.environ["GITHUB_PATH"]).open("a") as out:
        out.write(f"{bin_dir}\n")


def setup_cml() -> None:
    command_shim("cml")
    record("setup-cml", inputs=inputs("version"))


def cml(args: list[str]) -> None:
    files = {arg: Path(arg).read_text() for arg in args if Path(arg).is_file()}
    record(
        "cml",
        args=args,
        files=files,
        token_set=bool(os.environ.get("REPO_TOKEN") or os.environ.get("GITHUB_TOKEN")),
    )


def gh_attestation(args: list[str]) -> None:
    """`gh attestation verify oci://NAME@DIGEST --repo OWNER/NAME --signer-workflow
    OWNER/NAME/.github/workflows/FILE`: verified when $STANDIN_GITHUB/attestations.json
    lists that subject signed by that workflow of that repository."""
    state = Path(os.environ["STANDIN_GITHUB"]) / "attestations.json"
    attested = json.loads(state.read_text()) if state.is_file() else []
    subject = args[2]
    repo = args[args.index("--repo") + 1]
    workflow = args[args.index("--signer-workflow") + 1]
    verified = {"subject": subject, "repo": repo, "signer_workflow": workflow} in attested
    record("gh-attestation", args=args, verified=verified)
    if args[:2] != ["attestation", "verify"] or not subject.startswith("oci://"):
        sys.exit(f"stand-in gh: unsupported {args}")
    if not verified:
        sys.exit(f"Error: failed to fetch attestations for subject: {subject}")
    print(f"Loaded 1 attestation from GitHub API\n{subject} was attested by {workflow}")


def gh(args: list[str]) -> None:
    if args[0] == "attestation":
        gh_attestation(args)
        return
    notes = None
    if "--notes-file" in args:
        notes = Path(args[args.index("--notes-file") + 1]).read_text()
    state = Path(os.environ["STANDIN_GITHUB"]) / "releases.json"
    releases = json.loads(state.read_text()) if state.is_file() else {}
    record("gh", args=args, notes=notes, token_set=bool(os.environ.get("GH_TOKEN")))
    verb, tag = args[1], args[2]
    if verb == "view":
        if tag not in releases:
            sys.exit("release not found")
        print(json.dumps({"tagName": tag}))
        return
    if verb == "create":
        if os.environ.get("STANDIN_GH_FAIL") == "create":
            sys.exit("HTTP 502: Bad Gateway (stand-in: the run is interrupted here)")
        if "--verify-tag" in args:
            subprocess.run(["git", "rev-parse", "--verify", f"refs/tags/{tag}"], check=True)
        if tag in releases:
            sys.exit(f"a release with tag {tag} already exists")
    elif verb == "edit" and tag not in releases:
        sys.exit("release not found")
    releases[tag] = {"notes": notes}
    state.write_text(json.dumps(releases))


def registry(args: list[str]) -> None:
    state = Path(os.environ["STANDIN_REGISTRY"]) / "tags.json"
    tags = json.loads(state.read_text()) if state.is_file() else {}
    if args[0] == "push":
        ref = args[1]
        image_id = subprocess.run(
            [require("docker"), "image", "inspect", "--format", "{{.Id}}", ref],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        digest = "sha256:" + image_id.removeprefix("sha256:")
        tags[ref] = digest
        record("push", ref=ref, digest=digest)
        print(f"{ref.rsplit(':', 1)[1]}: digest: {digest} size: 1234")
    elif args[:3] == ["buildx", "imagetools", "inspect"]:
        ref = args[-1]
        if ref not in tags:
            sys.exit(f"ERROR: {ref}: not found")
        print(
            json.dumps(
                {
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "digest": tags[ref],
                }
            )
        )
        return
    elif args[:3] == ["buildx", "imagetools", "create"]:
        target, source = args[args.index("--tag") + 1], args[-1]
        name, digest = source.split("@")
        if not any(ref.startswith(f"{name}:") and d == digest for ref, d in tags.items()):
            sys.exit(f"ERROR: {source}: not found")
        tags[target] = digest
        record("retag", ref=target, digest=digest)
    else:
        sys.exit(f"stand-in registry: unsupported {args}")
    state.write_text(json.dumps(tags))


def setup_buildx() -> None:
    record("setup-buildx", docker=require("docker"))


def login() -> None:
    given = inputs("registry", "username", "password")
    record(
        "login",
        registry=given["registry"],
        username=given["username"],
        password_set=bool(given["password"]),
    )


def configure_aws_credentials() -> None:
    given = inputs("role-to-assume", "aws-region")
    keys = json.loads(Path(os.environ["STANDIN_AWS_ROLE_KEYS"]).read_text())
    with Path(os.environ["GITHUB_ENV"]).open("a") as out:
        for name, value in {**keys, "AWS_REGION": given["aws-region"]}.items():
            out.write(f"{name}={value}\n")
    record("configure-aws-credentials", inputs=given, exported=sorted(keys))


def build_push() -> None:
    given = inputs(
        "context",
        "tags",
        "labels",
        "build-args",
        "load",
        "push",
        "cache-from",
        "sbom",
        "provenance",
    )
    tags = lines(given["tags"])
    labels = [line.strip() for line in given["labels"].splitlines() if line.strip()]
    build_args = [line.strip() for line in given["build-args"].splitlines() if line.strip()]
    command = [require("docker"), "build"]
    for tag in tags:
        command += ["--tag", tag]
    for label in labels:
        command += ["--label", label]
    for arg in build_args:
        command += ["--build-arg", arg]
    command.append(given["context"] or ".")
    print("stand-in build-push:", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    inspected = json.loads(
        subprocess.run(
            [require("docker"), "image", "inspect", tags[0]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )[0]
    record(
        "build-push",
        inputs=given,
        tags=tags,
        pushed=given["push"] == "true",
        image_labels=inspected["Config"]["Labels"],
    )
    if given["push"] == "true":
        digest = ""
        for tag in tags:
            # `docker push` is the stand-in registry's (see `registry`), which prints it.
            pushed = subprocess.run(
                [require("docker"), "push", tag], capture_output=True, text=True, check=True
            ).stdout
            digest = pushed.split("digest: ", 1)[1].split()[0]
        set_output("digest", digest)


SEVERITIES = ["negligible", "low", "medium", "high", "critical"]


def scan() -> None:
    given = inputs("image", "fail-build", "severity-cutoff", "output-format")
    image_id = subprocess.run(
        [require("docker"), "image", "inspect", "--format", "{{.Id}}", given["image"]],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not image_id:
        sys.exit(f"stand-in scan-action: no local image {given['image']!r}")
    finding = os.environ.get("STANDIN_SCAN_FINDING", "none")
    cutoff = given["severity-cutoff"] or "medium"
    failed = (
        (given["fail-build"] or "true") == "true"
        and finding in SEVERITIES
        and SEVERITIES.index(finding) >= SEVERITIES.index(cutoff)
    )
    record("scan", inputs=given, image_id=image_id, finding=finding, failed=failed)
    if finding in SEVERITIES:
        print(f"stand-in scan-action: CVE-0000-0001 ({finding}) in {given['image']}")
    if failed:
        sys.exit(f"stand-in scan-action: a {finding} finding, at or above {cutoff}")


def attest() -> None:
    given = inputs("subject-name", "subject-digest", "push-to-registry", "create-storage-record")
    if not given["subject-name"] or not given["subject-digest"].startswith("sha256:"):
        sys.exit(f"stand-in attest-build-provenance: bad subject {given}")
    record("attest", inputs=given)


def cosign_installer() -> None:
    command_shim("cosign")
    record("cosign-installer", inputs=inputs("cosign-release"))


def cosign(args: list[str]) -> None:
    record("cosign", args=args)


def app_token() -> None:
    given = inputs("client-id", "private-key", "permission-contents", "permission-pull-requests")
    if not given["client-id"] or not given["private-key"]:
        sys.exit("stand-in create-github-app-token: client-id and private-key are required")
    token = f"ghs_installation_{given['client-id']}"
    set_output("token", token)
    record(
        "create-github-app-token",
        client_id=given["client-id"],
        key_set=True,
        permissions={
            "contents": given["permission-contents"],
            "pull-requests": given["permission-pull-requests"],
        },
        token=token,
    )


HANDLERS = {
    "setup-python": setup_python,
    "setup-uv": setup_uv,
    "upload-artifact": upload_artifact,
    "setup-cml": setup_cml,
    "setup-buildx": setup_buildx,
    "login": login,
    "build-push": build_push,
    "configure-aws-credentials": configure_aws_credentials,
    "create-github-app-token": app_token,
    "scan": scan,
    "attest": attest,
    "cosign-installer": cosign_installer,
}

if __name__ == "__main__":
    kind, rest = sys.argv[1], sys.argv[2:]
    if kind == "cml":
        cml(rest)
    elif kind == "cosign":
        cosign(rest)
    elif kind == "gh":
        gh(rest)
    elif kind == "registry":
        registry(rest)
    else:
        HANDLERS[kind]()
