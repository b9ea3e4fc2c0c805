"""The README documents every make target, the pipeline page every params.yaml key, and the
repository carries the conventions a template's users expect."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
PIPELINE_PAGE = (REPO_ROOT / "docs" / "pipeline.md").read_text()


def makefile_targets() -> list[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return re.findall(r"^([a-z][a-z-]*):[^=]*?## ", text, re.MULTILINE)


def leaf_keys(node: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for name, value in node.items():
        dotted = f"{prefix}{name}"
        if dotted == "gate.metrics":
            keys.append("gate.metrics.<name>")
        elif isinstance(value, dict):
            keys.extend(leaf_keys(value, f"{dotted}."))
        else:
            keys.append(dotted)
    return keys


def params_reference_keys() -> list[str]:
    section = PIPELINE_PAGE.split("## params.yaml reference", 1)[1].split("\n## ", 1)[0]
    first_cells = re.findall(r"^\| ([^|]+) \|", section, re.MULTILINE)
    return [key for cell in first_cells for key in re.findall(r"`([^`]+)`", cell)]


def test_the_readme_starts_with_the_use_this_template_path() -> None:
    sections = re.findall(r"^## (.+)$", README, re.MULTILINE)
    assert sections[0] == "Use this template"
    first = README.split("## Use this template", 1)[1].split("\n## ", 1)[0]
    assert "make init ARGS=" in first
    assert first.index("make init") < first.index("make repro") < first.index("make test")


def test_every_make_target_is_in_the_readme() -> None:
    targets = makefile_targets()
    assert {"init", "repro", "test", "help"} <= set(targets)
    missing = [t for t in targets if not re.search(rf"`make {re.escape(t)}\b", README)]
    assert not missing, f"make targets the README does not document: {missing}"


def test_every_params_key_is_in_the_params_reference() -> None:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    documented = params_reference_keys()

    def covered(key: str) -> bool:
        return key in documented or any(
            entry.endswith(".*") and key.startswith(entry[:-1]) for entry in documented
        )

    missing = [key for key in leaf_keys(params) if not covered(key)]
    assert not missing, f"params.yaml keys docs/pipeline.md's reference lacks: {missing}"


def test_the_repository_conventions_are_in_place() -> None:
    github = REPO_ROOT / ".github"
    for path in (
        github / "CODEOWNERS",
        github / "pull_request_template.md",
        github / "ISSUE_TEMPLATE" / "config.yml",
        REPO_ROOT / "CONTRIBUTING.md",
        REPO_ROOT / "LICENSE",
    ):
        assert path.is_file(), path
    checklist = (github / "pull_request_template.md").read_text().lower()
    for item in ("data version", "params", "metrics", "gate"):
        assert f"- [ ] **{item}" in checklist, item
    forms = sorted((github / "ISSUE_TEMPLATE").glob("*.yml"))
    names = set()
    for form in forms:
        loaded = yaml.safe_load(form.read_text())
        if form.name == "config.yml":
            continue
        assert {"name", "description", "body"} <= set(loaded), form.name
        names.add(loaded["name"])
        for field in loaded["body"]:
            assert field["type"] in {"markdown", "textarea", "input", "dropdown", "checkboxes"}
            if field["type"] != "markdown":
                assert field["id"] and field["attributes"]["label"], form.name
    assert names == {"Bug report", "Feature or model request", "Data issue"}
    owners = [line for line in (github / "CODEOWNERS").read_text().splitlines() if line.strip()]
    assert owners[0].startswith("#")
    assert all(re.match(r"^(#|\S+\s+@\S+)", line) for line in owners)
    license_text = (REPO_ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) 2026 the \S+ authors$", license_text, re.MULTILINE)


def test_leaf_keys_flatten_nested_sections() -> None:
    params = {"a": {"b": 1, "c": {"d": 2}}, "gate": {"metrics": {"f1": {}}}}
    assert leaf_keys(params) == ["a.b", "a.c.d", "gate.metrics.<name>"]


def test_params_reference_keys_reads_backticked_first_cells() -> None:
    keys = params_reference_keys()
    assert "data.source" in keys
    assert "model_card.intended_use" in keys and "model_card.limitations" in keys
