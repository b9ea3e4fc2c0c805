"""Lineage: /metadata, the image labels and the model card agree, and a mismatch is named.

The labels here are made the way an image gets them: release_info.py turns metadata.json
into build args, and the Dockerfile's LABEL lines turn build args into labels.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tabml.lineage import LABELS
from tests.lineage import (
    metrics_label,
    mismatches,
    params_digest,
    parse_metrics_label,
    read_card,
)
from tests.workflows.harness import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]

METADATA: dict[str, Any] = {
    "model": {"name": "tabml-classifier", "version": "a" * 32},
    "data": {"version": "d" * 32, "rows": 569},
    "params": {
        "data": {"source": "sklearn", "path": None},
        "train": {"estimator": "logistic_regression", "logistic_regression": {"C": 1.0}},
        "export": {"model_name": "tabml-classifier", "note": "naïve 'quoted' text"},
    },
    "metrics": {"accuracy": 0.964912, "f1": 0.95122, "log_loss": 0.077265, "test_rows": 114},
}


def release_info() -> ModuleType:
    return load_script("release_info")


def image_labels(metadata: dict[str, Any]) -> dict[str, str]:
    """metadata.json -> build args (release_info.py) -> labels (the Dockerfile's LABEL)."""
    script = release_info()
    facts = script.lineage(metadata)
    build_args = {arg: facts[fact] for arg, fact in script.BUILD_ARGS.items()}
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    # The project's own label namespace, io.<project>.*, whatever the project is called.
    label_args = dict(re.findall(r'(io\.[\w-]+\.[\w.]+)="\$\{(\w+)\}"', dockerfile))
    return {label: build_args[arg] for label, arg in label_args.items()}


def card_markdown(metadata: dict[str, Any]) -> str:
    """The two sections of a model card that state lineage, as render_card writes them."""
    lineage = {key: metadata[key] for key in ("model", "data", "metrics")}
    params = {**metadata["params"], "model_card": {"intended_use": "tests"}}
    return "\n".join(
        [
            "# Model card: tabml-classifier",
            "",
            "## Lineage",
            "",
            "```json",
            json.dumps(lineage, indent=2),
            "```",
            "",
            "## Params",
            "",
            "```json",
            json.dumps(params, indent=2),
            "```",
            "",
        ]
    )


def test_the_labels_carry_every_lineage_fact() -> None:
    labels = image_labels(METADATA)
    assert set(LABELS.values()) <= set(labels)
    assert labels["io.tabml.model.version"] == METADATA["model"]["version"]
    assert labels["io.tabml.data.version"] == METADATA["data"]["version"]
    # The commit is the build's own label (org.opencontainers.image.revision), not a
    # lineage fact: the model does not depend on it.
    assert not [label for label in labels if "revision" in label]
    # release_info.py (standard library only) writes what tabml.lineage reads.
    assert labels["io.tabml.params.sha256"] == params_digest(METADATA["params"])
    assert labels["io.tabml.metrics"] == metrics_label(METADATA["metrics"])
    assert parse_metrics_label(labels["io.tabml.metrics"]) == METADATA["metrics"]


def test_three_records_that_agree_have_no_mismatch() -> None:
    assert mismatches(METADATA, image_labels(METADATA), card_markdown(METADATA)) == []


def _set(record: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(record)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


Change = Callable[[dict[str, Any], dict[str, str], str], tuple[dict[str, Any], dict[str, str], str]]

CASES: dict[str, tuple[Change, str]] = {
    "label model version": (
        lambda m, labels, c: (m, {**labels, "io.tabml.model.version": "b" * 32}, c),
        "model version: /metadata says 'aaaa",
    ),
    "label data version": (
        lambda m, labels, c: (m, {**labels, "io.tabml.data.version": "unknown"}, c),
        "label io.tabml.data.version says 'unknown'",
    ),
    "label metrics": (
        lambda m, labels, c: (
            m,
            {**labels, "io.tabml.metrics": metrics_label({**m["metrics"], "f1": 0.95})},
            c,
        ),
        "metrics: ",
    ),
    "unreadable metrics label": (
        lambda m, labels, c: (m, {**labels, "io.tabml.metrics": "accuracy"}, c),
        "unreadable",
    ),
    "missing data version label": (
        lambda m, labels, c: (
            m,
            {k: v for k, v in labels.items() if k != "io.tabml.data.version"},
            c,
        ),
        "data version: ",
    ),
    "label params digest": (
        lambda m, labels, c: (m, {**labels, "io.tabml.params.sha256": params_digest({})}, c),
        "params: ",
    ),
    "card for other data": (
        lambda m, labels, c: (
            m,
            labels,
            card_markdown(_set(m, ("data", "version"), "f" * 32)),
        ),
        "the model card says 'ffff",
    ),
    "card from other params": (
        lambda m, labels, c: (
            m,
            labels,
            card_markdown(_set(m, ("params", "train", "logistic_regression", "C"), 0.5)),
        ),
        "params: sections ['train'] differ",
    ),
    "card from other metrics": (
        lambda m, labels, c: (m, labels, card_markdown(_set(m, ("metrics", "test_rows"), 113))),
        "metrics: ",
    ),
    "card without lineage": (
        lambda m, labels, c: (m, labels, c.replace("## Lineage", "## Provenance")),
        "no '## Lineage' section",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_disagreement_is_named(case: str) -> None:
    change, expected = CASES[case]
    metadata, labels, card = change(METADATA, image_labels(METADATA), card_markdown(METADATA))
    problems = mismatches(metadata, labels, card)
    assert problems, f"{case}: not detected"
    assert any(expected in problem for problem in problems), problems


def test_read_card_needs_both_blocks() -> None:
    card = card_markdown(METADATA)
    assert read_card(card)["params"] == METADATA["params"]
    without_params = card.split("## Params")[0]
    with pytest.raises(ValueError, match="no '## Params' section"):
        read_card(without_params)
    with pytest.raises(ValueError, match="no ```json block"):
        read_card(card.replace('```json\n{\n  "model"', '```\n{\n  "model"'))
