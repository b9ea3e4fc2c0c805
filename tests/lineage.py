"""Reading lineage back: the facts a model card states, and every fact on which
/metadata, the image labels and the model card disagree.

The package writes the records (src/tabml/lineage.py names their sections and labels);
the tests read them back. Params are compared as a digest (sha256 of their canonical
JSON) and metrics as `name=value` pairs, the way release_info.py writes the labels.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tabml.lineage import CARD_SECTION, LABELS, LINEAGE_HEADING, PARAMS_HEADING


def params_digest(params: dict[str, Any]) -> str:
    """sha256 of the params as canonical JSON (sorted keys, no spaces, ASCII)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def metrics_label(metrics: dict[str, Any]) -> str:
    """`accuracy=0.9649,f1=0.9512,...`: no quotes or spaces, so any builder keeps it."""
    return ",".join(f"{name}={json.dumps(value)}" for name, value in metrics.items())


def parse_metrics_label(text: str) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for pair in filter(None, text.split(",")):
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"metrics label: {pair!r} is not name=value")
        metrics[name] = json.loads(value)
    return metrics


def json_block(markdown: str, heading: str) -> Any:
    """The first ```json block under `heading`, before the next section, parsed."""
    lines = markdown.splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        raise ValueError(f"no {heading!r} section") from None
    block: list[str] | None = None
    for line in lines[start + 1 :]:
        if block is None:
            if line.startswith("## "):
                break
            if line.strip() == "```json":
                block = []
        elif line.strip() == "```":
            return json.loads("\n".join(block))
        else:
            block.append(line)
    raise ValueError(f"no ```json block in the {heading!r} section")


def read_card(markdown: str) -> dict[str, Any]:
    """The lineage a rendered model card states: model, data, metrics, params."""
    lineage = json_block(markdown, LINEAGE_HEADING)
    if not isinstance(lineage, dict):
        raise ValueError(f"the {LINEAGE_HEADING!r} block is not a JSON object")
    params = json_block(markdown, PARAMS_HEADING)
    if not isinstance(params, dict):
        raise ValueError(f"the {PARAMS_HEADING!r} block is not a JSON object")
    params.pop(CARD_SECTION, None)
    return {**lineage, "params": params}


def _get(record: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def mismatches(metadata: dict[str, Any], labels: dict[str, str], card: str) -> list[str]:
    """Every fact on which /metadata, the image labels and the model card disagree."""
    try:
        stated = read_card(card)
    except ValueError as error:
        return [f"model card: cannot read its lineage: {error}"]
    problems = []

    def compare(fact: str, from_metadata: Any, from_label: Any, from_card: Any) -> None:
        if not from_metadata == from_label == from_card:
            problems.append(
                f"{fact}: /metadata says {from_metadata!r}, label {LABELS[fact]} says "
                f"{from_label!r}, the model card says {from_card!r}"
            )

    for fact, path in (
        ("model name", ("model", "name")),
        ("model version", ("model", "version")),
        ("data version", ("data", "version")),
    ):
        compare(fact, _get(metadata, *path), labels.get(LABELS[fact]), _get(stated, *path))

    metadata_params, card_params = metadata.get("params"), stated["params"]
    compare(
        "params",
        params_digest(metadata_params) if isinstance(metadata_params, dict) else None,
        labels.get(LABELS["params"]),
        params_digest(card_params),
    )
    if isinstance(metadata_params, dict) and metadata_params != card_params:
        differ = sorted(
            key
            for key in metadata_params.keys() | card_params.keys()
            if metadata_params.get(key) != card_params.get(key)
        )
        problems.append(f"params: sections {differ} differ between /metadata and the card")

    label = labels.get(LABELS["metrics"])
    label_metrics: dict[str, Any] | str | None = None
    if label is not None:
        try:
            label_metrics = parse_metrics_label(label)
        except ValueError as error:
            label_metrics = f"unreadable ({error})"
    compare("metrics", metadata.get("metrics"), label_metrics, stated.get("metrics"))
    return problems
