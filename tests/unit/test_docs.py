"""The README is a short front door whose links, and those of the docs pages it leads to,
all resolve: every relative link to an existing file, every #anchor to a heading there."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tests.conftest import REPO_ROOT

README_LIMIT_CHARACTERS = 10_000

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[(?:[^\]\n]|\][^(])*\]\(([^()\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def doc_pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def prose(markdown: str) -> str:
    """The text outside code blocks and code spans, where links and headings live."""
    return FENCE.sub("", markdown)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text, lower case, with everything but
    letters, digits, '_', '-' and spaces removed and each space made a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, ... as GitHub numbers them."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in HEADING.findall(prose(markdown)):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def relative_links(markdown: str) -> list[str]:
    return [
        target
        for target in LINK.findall(INLINE_CODE.sub("", prose(markdown)))
        if not EXTERNAL.match(target)
    ]


def broken_links(page: Path) -> list[str]:
    """`target: reason` for each relative link in `page` that does not resolve."""
    broken = []
    for target in relative_links(page.read_text()):
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target}: no file {destination}")
        elif anchor and anchor not in anchors(destination.read_text()):
            broken.append(f"{target}: no heading with the anchor #{anchor} in {destination.name}")
    return broken


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = {
        str(page.relative_to(REPO_ROOT)): found
        for page in doc_pages(REPO_ROOT)
        if (found := broken_links(page))
    }
    assert not broken, broken


def test_the_readme_is_a_short_front_door_linking_every_docs_page() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme) <= README_LIMIT_CHARACTERS, len(readme)
    linked = {target.partition("#")[0] for target in relative_links(readme)}
    pages = {f"docs/{page.name}" for page in doc_pages(REPO_ROOT)[1:]}
    assert pages, "no docs pages"
    assert pages <= linked, sorted(pages - linked)


def test_the_quickstart_test_command_is_the_one_ci_runs() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    quickstart = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \S+)", quickstart, re.MULTILINE)
    assert commands[:2] == ["make repro", "make test"], commands
    ci_run = (REPO_ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1]
    assert ci_run.endswith(" make test"), ci_run


def test_slugs_follow_github_rules() -> None:
    assert slug("params.yaml reference") == "paramsyaml-reference"
    assert slug("5. Merge, and pull the released image") == "5-merge-and-pull-the-released-image"
    assert slug("Data and model versions: the DVC remote") == (
        "data-and-model-versions-the-dvc-remote"
    )
    assert slug("The `train_data` [link](x.md) stage") == "the-train_data-link-stage"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1", "a-2"}


def test_a_missing_file_or_heading_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Real heading\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n"
        "[ok](docs/other.md#real-heading) [self](#title) [web](https://example.com/x#y)\n"
        "`[code](nowhere.md)`\n\n"
        "```\n[fenced](nowhere.md)\n```\n\n"
        "[gone](docs/missing.md) [no anchor](docs/other.md#fake) [no self](#nope)\n"
    )
    assert [line.split(":")[0] for line in broken_links(page)] == [
        "docs/missing.md",
        "docs/other.md#fake",
        "#nope",
    ]
