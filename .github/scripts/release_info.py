"""Release facts and the release plan for the model in models/metadata.json.

Usage:
  release_info.py METADATA NOTES_OUT    the facts below, to $GITHUB_OUTPUT, and the notes
  release_info.py --build-args METADATA the image's lineage build args (`make image`)
  release_info.py current               is $GITHUB_SHA what the default branch releases?
  release_info.py plan                  what this run still has to do (env: see `plan_main`)

Facts (METADATA NOTES_OUT), from metadata.json, the model@v* tags and $GITHUB_SHA:
  model-md5, data-md5, model-name  what the exported model and its data are (md5s, as in dvc.lock)
  params-sha256                    sha256 of the model's params as canonical JSON
  metrics                          the test metrics as name=value pairs, comma-separated
  version, tag                     the semantic version vX.Y.Z and its git tag model@vX.Y.Z
  new                              true when no model@v* tag records this model yet
  image-tag                        the image tag this commit is released under
  created                          the commit time of $GITHUB_SHA (the image's created label)

A version belongs to a model md5 (recorded as `model-md5: ...` in the model@v* tag's
annotation) for good: a model seen before, under any tag, gets that tag's version back;
a new model gets the next minor version after the highest tag. The image of the commit
that registered a version is tagged vX.Y.Z; any later commit that ships the same model
(a code-only merge) gets vX.Y.Z-<short sha>, so no image tag is ever pushed twice.
The lineage facts become the image's io.tabml.* labels; the tests (tests/lineage.py) read
them back and checks them against GET /metadata and the model card.
Only the standard library: it runs before the project environment exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from github_glob import glob_regex

Version = tuple[int, int, int]

TAG_PREFIX = "model@v"
SEMVER = re.compile(r"^model@v(\d+)\.(\d+)\.(\d+)$")
MD5_LINE = re.compile(r"^model-md5: ([0-9a-f]{32})$", re.MULTILINE)
# Changes that never make a release: release.yml's `paths-ignore` lists the same globs
# (a test holds them equal), and a run whose commit is followed on the default branch
# only by such changes still releases.
DOCS_ONLY = ("**.md", "docs/**", "LICENSE", ".github/ISSUE_TEMPLATE/**")
# `git for-each-ref` fields and records, split by the ASCII unit and record separators.
TAG_FORMAT = "%(refname:strip=2)%1f%(objectname)%1f%(*objectname)%1f%(contents)%1e"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


@dataclass(frozen=True)
class ModelTag:
    """A model@vX.Y.Z tag: its version, the model md5 it records and the commit it names."""

    name: str
    version: Version
    model_md5: str | None
    commit: str


def semver(version: Version) -> str:
    return "v{}.{}.{}".format(*version)


def parse_model_tags(listing: str) -> list[ModelTag]:
    """The model@vX.Y.Z tags in `git for-each-ref --format=TAG_FORMAT refs/tags/model@v*`
    output; other names (model@latest) are not versions and are left out."""
    tags = []
    for record in listing.split("\x1e"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) != 4:
            continue
        name, objectname, peeled, contents = fields
        match = SEMVER.match(name)
        if match is None:
            continue
        found = MD5_LINE.search(contents)
        major, minor, patch = (int(part) for part in match.groups())
        tags.append(
            ModelTag(
                name=name,
                version=(major, minor, patch),
                model_md5=found.group(1) if found else None,
                # An annotated tag names its commit through the tag object (peeled).
                commit=peeled or objectname,
            )
        )
    return tags


def read_model_tags() -> list[ModelTag]:
    return parse_model_tags(
        git("for-each-ref", f"--format={TAG_FORMAT}", f"refs/tags/{TAG_PREFIX}*")
    )


def version_for(model_md5: str, tags: Iterable[ModelTag]) -> tuple[Version, ModelTag | None]:
    """The version of `model_md5`: that of the first tag that recorded it, across all
    model tags (a model brought back keeps its old version), else the next minor version
    after the highest tag, or v1.0.0 for the first. The tag is None for a new version."""
    tags = list(tags)
    recorded = sorted((tag for tag in tags if tag.model_md5 == model_md5), key=lambda t: t.version)
    if recorded:
        return recorded[0].version, recorded[0]
    if not tags:
        return (1, 0, 0), None
    major, minor, _ = max(tag.version for tag in tags)
    return (major, minor + 1, 0), None


def image_tag(version: Version, registered: ModelTag | None, sha: str) -> str:
    """vX.Y.Z for the commit that registers (or registered) the version, else
    vX.Y.Z-<short sha>: every commit's image has a tag of its own that never moves."""
    if registered is None or registered.commit == sha:
        return semver(version)
    return f"{semver(version)}-{sha[:7]}"


def releases_on_change(paths: Iterable[str]) -> list[str]:
    """The paths among `paths` that a release ships or builds from (not DOCS_ONLY)."""
    ignored = [glob_regex(pattern) for pattern in DOCS_ONLY]
    return [path for path in paths if not any(rx.fullmatch(path) for rx in ignored)]


@dataclass(frozen=True)
class Currency:
    """Whether a run's commit is what the default branch releases now, and why."""

    current: bool
    reason: str


def is_current(
    *, sha: str, ref: str, default_branch: str, tip: str, ancestor: bool, changed_since: list[str]
) -> Currency:
    """A release ships the tip of the default branch: a run from another branch, or an
    older run (a re-run keeps its original commit) that later merges have overtaken,
    releases nothing. Commits after it that change only docs (which start no release)
    do not overtake it."""
    if ref != f"refs/heads/{default_branch}":
        return Currency(
            False, f"{ref} is not the default branch ({default_branch}): only its tip is released"
        )
    if sha == tip:
        return Currency(True, f"{sha[:7]} is the tip of {default_branch}")
    if not ancestor:
        return Currency(False, f"{sha[:7]} is not on {default_branch} (tip {tip[:7]})")
    later = releases_on_change(changed_since)
    if later:
        shown = ", ".join(later[:5]) + (", ..." if len(later) > 5 else "")
        return Currency(
            False,
            f"{default_branch} has moved on from {sha[:7]} to {tip[:7]} ({shown}); "
            "the run for the tip releases it",
        )
    return Currency(True, f"{sha[:7]} is followed on {default_branch} by docs changes only")


@dataclass(frozen=True)
class Plan:
    """What a run still has to do; each part is skipped when an earlier run did it."""

    build: bool  # the image tag is not in the registry: build, smoke-test, push it
    tag: bool  # no model@vX.Y.Z tag records this model yet
    release: bool  # the version's GitHub release does not exist
    record_image: bool  # the existing release gets the digest of its image, pushed now
    move_latest: bool  # `latest` does not name this commit's image yet

    def summary(self) -> str:
        todo = [name.replace("_", " ") for name, value in vars(self).items() if value]
        return "to do: " + ", ".join(todo) if todo else "nothing to do: already released"


def plan(
    *,
    new: bool,
    image_tag: str,
    version: str,
    image_digest: str,
    latest_digest: str,
    release_exists: bool,
) -> Plan:
    """`image_digest`/`latest_digest` are what the registry holds under the image tag and
    `latest` ("" for none); `release_exists` whether the version's GitHub release does."""
    build = image_digest == ""
    return Plan(
        build=build,
        tag=new,
        release=not release_exists,
        record_image=release_exists and build and image_tag == version,
        move_latest=build or latest_digest != image_digest,
    )


def created_label(epoch_seconds: int) -> str:
    """The OCI `created` label (RFC 3339, UTC) for a commit time: the same commit gives
    the same label on every re-run."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def lineage(metadata: dict) -> dict[str, str]:
    """The facts the image labels carry: model, data, params digest, metrics. The commit
    is the build's own (REVISION, the image's org.opencontainers.image.revision)."""
    model, data = metadata["model"], metadata["data"]
    params = metadata.get("params")
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return {
        "model-name": model["name"],
        "model-md5": model["version"],
        "data-md5": data["version"],
        "params-sha256": hashlib.sha256(canonical.encode()).hexdigest()
        if isinstance(params, dict)
        else "unknown",
        "metrics": ",".join(
            f"{name}={json.dumps(value)}" for name, value in metadata.get("metrics", {}).items()
        ),
    }


# The Dockerfile's build args, from the lineage facts (as release.yml passes them).
BUILD_ARGS = {
    "MODEL_NAME": "model-name",
    "MODEL_VERSION": "model-md5",
    "DATA_VERSION": "data-md5",
    "PARAMS_SHA256": "params-sha256",
    "METRICS": "metrics",
}


def notes(metadata: dict, tag: str, model_card: str | None = None) -> str:
    model, data = metadata["model"], metadata["data"]
    lines = [
        f"## {model['name']} {tag.removeprefix('model@')}",
        "",
        f"- estimator: `{model['estimator']}`",
        f"- model version (md5 of model.onnx): `{model['version']}`",
        f"- data version (md5 of the raw data): `{data['version']}` ({data['rows']} rows)",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for name, value in metadata["metrics"].items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"| {name} | {shown} |")
    hyperparameters = json.dumps(model["hyperparameters"], indent=2)
    lines += ["", "Hyperparameters:", "", "```json", hyperparameters, "```", ""]
    if model_card:
        # The card's own headings sit one level below the release title.
        card = "\n".join(
            "#" + line if line.startswith("#") else line for line in model_card.splitlines()
        )
        lines += ["<details><summary>Model card</summary>", "", card, "", "</details>", ""]
    return "\n".join(lines)


def read_metadata(path: Path) -> tuple[dict, dict[str, str]] | None:
    try:
        metadata = json.loads(path.read_text())
        return metadata, lineage(metadata)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        print(f"::error::{path}: cannot read the model and data versions: {error!r}")
        return None


def write_outputs(values: dict[str, str]) -> None:
    with Path(os.environ.get("GITHUB_OUTPUT", "/dev/stdout")).open("a") as out:
        for key, value in values.items():
            out.write(f"{key}={value}\n")


def facts_main(metadata_path: Path, notes_path: Path) -> int:
    read = read_metadata(metadata_path)
    if read is None:
        return 2
    metadata, facts = read
    sha = os.environ.get("GITHUB_SHA") or git("rev-parse", "HEAD").strip()
    version, registered = version_for(facts["model-md5"], read_model_tags())
    tag = f"{TAG_PREFIX}{semver(version).removeprefix('v')}"
    card_path = metadata_path.parent / "model_card.md"
    card = card_path.read_text() if card_path.is_file() else None
    notes_path.write_text(notes(metadata, tag, card))
    commit_time = int(git("show", "-s", "--format=%ct", sha).strip())
    write_outputs(
        {
            **facts,
            "version": semver(version),
            "tag": tag,
            "new": "true" if registered is None else "false",
            "image-tag": image_tag(version, registered, sha),
            "created": created_label(commit_time),
        }
    )
    if registered is None:
        print(f"new model version {tag}")
    else:
        print(f"model {facts['model-md5']} is {tag} (registered at {registered.commit[:7]})")
    return 0


def current_main() -> int:
    """Reads GITHUB_SHA, GITHUB_REF and DEFAULT_BRANCH; the tip is origin/DEFAULT_BRANCH
    as the full-history checkout fetched it."""
    sha, ref = os.environ["GITHUB_SHA"], os.environ["GITHUB_REF"]
    branch = os.environ["DEFAULT_BRANCH"]
    tip = git("rev-parse", f"refs/remotes/origin/{branch}").strip()
    ancestor = (
        subprocess.run(["git", "merge-base", "--is-ancestor", sha, tip], check=False).returncode
        == 0
    )
    changed = git("diff", "--name-only", sha, tip).split() if ancestor else []
    verdict = is_current(
        sha=sha, ref=ref, default_branch=branch, tip=tip, ancestor=ancestor, changed_since=changed
    )
    if verdict.current:
        print(verdict.reason)
    else:
        print(f"::notice title=Nothing released::{verdict.reason}")
    write_outputs({"current": "true" if verdict.current else "false"})
    return 0


def plan_main() -> int:
    """Reads NEW, IMAGE_TAG, VERSION, IMAGE_DIGEST, LATEST_DIGEST and RELEASE_EXISTS."""
    env = os.environ
    todo = plan(
        new=env["NEW"] == "true",
        image_tag=env["IMAGE_TAG"],
        version=env["VERSION"],
        image_digest=env.get("IMAGE_DIGEST", ""),
        latest_digest=env.get("LATEST_DIGEST", ""),
        release_exists=env["RELEASE_EXISTS"] == "true",
    )
    print(todo.summary())
    write_outputs(
        {name.replace("_", "-"): str(value).lower() for name, value in vars(todo).items()}
    )
    return 0


USAGE = """usage: release_info.py METADATA NOTES_OUT
       release_info.py --build-args METADATA
       release_info.py current
       release_info.py plan"""


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--build-args":
        read = read_metadata(Path(argv[2]))
        if read is None:
            return 2
        for arg, fact in BUILD_ARGS.items():
            print(f"{arg}={read[1][fact]}")
        return 0
    if argv[1:] == ["current"]:
        return current_main()
    if argv[1:] == ["plan"]:
        return plan_main()
    if len(argv) == 3 and not argv[1].startswith("-"):
        return facts_main(Path(argv[1]), Path(argv[2]))
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
