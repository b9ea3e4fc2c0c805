"""Release facts for the model in models/metadata.json: version, tag, notes.

Usage: python3 release_info.py METADATA NOTES_OUT
       python3 release_info.py --build-args METADATA   (the image's lineage build args)

Writes to $GITHUB_OUTPUT:
  model-md5, data-md5, model-name  what the exported model and its data are (md5s, as in dvc.lock)
  params-sha256                    sha256 of the model's params as canonical JSON
  metrics                          the test metrics as name=value pairs, comma-separated
  version                          the semantic version, vX.Y.Z
  tag                              the GTO-compatible git tag, model@vX.Y.Z
  new                              true when this model has no release yet

A model gets a new minor version when its md5 differs from the one recorded in the
latest model@v* tag's message; an unchanged model (a code-only merge) keeps its version.
The lineage facts become the image's io.tabml.* labels; src/tabml/lineage.py reads
them back and checks them against GET /metadata and the model card (the same digest
and metrics format, written there with the project's code).
Only the standard library: it runs before the project environment exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

TAG_PREFIX = "model@v"
SEMVER = re.compile(r"^model@v(\d+)\.(\d+)\.(\d+)$")
MD5_LINE = re.compile(r"^model-md5: ([0-9a-f]{32})$", re.MULTILINE)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def latest_release() -> tuple[tuple[int, int, int], str | None] | None:
    """The highest model@vX.Y.Z tag, and the model md5 its message records."""
    versions = []
    for tag in git("tag", "--list", f"{TAG_PREFIX}*").split():
        match = SEMVER.match(tag)
        if match:
            versions.append((tuple(int(part) for part in match.groups()), tag))
    if not versions:
        return None
    version, tag = max(versions)
    message = git("tag", "--list", "--format=%(contents)", tag)
    found = MD5_LINE.search(message)
    return (version[0], version[1], version[2]), found.group(1) if found else None


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


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--build-args":
        read = read_metadata(Path(argv[2]))
        if read is None:
            return 2
        for arg, fact in BUILD_ARGS.items():
            print(f"{arg}={read[1][fact]}")
        return 0
    if len(argv) != 3:
        print("usage: release_info.py METADATA NOTES_OUT", file=sys.stderr)
        print("       release_info.py --build-args METADATA", file=sys.stderr)
        return 2
    metadata_path, notes_path = Path(argv[1]), Path(argv[2])
    read = read_metadata(metadata_path)
    if read is None:
        return 2
    metadata, facts = read
    model_md5 = facts["model-md5"]
    latest = latest_release()
    if latest is None:
        version, new = (1, 0, 0), True
    elif latest[1] == model_md5:
        version, new = latest[0], False
    else:
        version, new = (latest[0][0], latest[0][1] + 1, 0), True
    semver = "v{}.{}.{}".format(*version)
    tag = f"model@{semver}"
    card_path = metadata_path.parent / "model_card.md"
    card = card_path.read_text() if card_path.is_file() else None
    notes_path.write_text(notes(metadata, tag, card))
    facts = {
        **facts,
        "version": semver,
        "tag": tag,
        "new": "true" if new else "false",
    }
    with Path(os.environ.get("GITHUB_OUTPUT", "/dev/stdout")).open("a") as out:
        for key, value in facts.items():
            out.write(f"{key}={value}\n")
    print(("new release " if new else "model unchanged since ") + tag)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
