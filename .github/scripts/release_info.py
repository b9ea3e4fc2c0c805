"""Release facts for the model in models/metadata.json: version, tag, notes.

Usage: python3 release_info.py METADATA NOTES_OUT

Writes to $GITHUB_OUTPUT:
  model-md5, data-md5, model-name  what the exported model and its data are (md5s, as in dvc.lock)
  version                          the semantic version, vX.Y.Z
  tag                              the GTO-compatible git tag, model@vX.Y.Z
  new                              true when this model has no release yet

A model gets a new minor version when its md5 differs from the one recorded in the
latest model@v* tag's message; an unchanged model (a code-only merge) keeps its version.
Only the standard library: it runs before the project environment exists.
"""

from __future__ import annotations

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


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: release_info.py METADATA NOTES_OUT", file=sys.stderr)
        return 2
    metadata_path, notes_path = Path(argv[1]), Path(argv[2])
    try:
        metadata = json.loads(metadata_path.read_text())
        model_md5, data_md5 = metadata["model"]["version"], metadata["data"]["version"]
    except (OSError, ValueError, KeyError) as error:
        print(f"::error::{metadata_path}: cannot read the model and data versions: {error!r}")
        return 2
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
        "model-name": metadata["model"]["name"],
        "model-md5": model_md5,
        "data-md5": data_md5,
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
