"""Write the openAPIV3Schema of one version of a CustomResourceDefinition as JSON.

    python tests/deploy/crds/extract.py CRD.yaml VERSION OUT.json

Descriptions (documentation, not validation) are left out to keep the files small; the
schema is otherwise as the project publishes it. README.md beside this file names the
source of each file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def without_descriptions(node: Any) -> Any:
    """`node` with every schema's "description" text removed. A property that is itself
    named "description" maps to a schema (a dict), not to text, and stays."""
    if isinstance(node, dict):
        return {
            key: without_descriptions(value)
            for key, value in node.items()
            if not (key == "description" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [without_descriptions(item) for item in node]
    return node


def version_schema(crd: dict[str, Any], version: str) -> dict[str, Any]:
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    names = [served["name"] for served in crd["spec"]["versions"]]
    raise SystemExit(f"{crd['metadata']['name']} has no version {version!r} (it has {names})")


def main(argv: list[str]) -> int:
    source, version, target = argv
    crd = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    schema = without_descriptions(version_schema(crd, version))
    document = {
        "group": crd["spec"]["group"],
        "kind": crd["spec"]["names"]["kind"],
        "version": version,
        "openAPIV3Schema": schema,
    }
    Path(target).write_text(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
