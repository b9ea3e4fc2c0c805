"""The rename plan: every file and path that names the old project or package, rewritten.

The package (`tabml`) is what Python imports: import statements, `src/<package>/`,
`python -m <package>.serve`, logger names. Everything else names the project, in the
spelling that fits where it stands:

- the distribution name itself: pyproject's `[project] name`, the package's
  `DISTRIBUTION` (which version lookups use), the README's title, the license;
- the slug (lowercase and '-'): the command (`<slug> train`, the console script), image
  names, the OCI label namespace `io.<slug>.`, `<slug>-classifier`;
- the slug as an identifier ('_' for '-'): metric names `<identifier>_...` and, upper
  case, the environment variables `<IDENTIFIER>_...`.

The template's names coincide (`tabml` everywhere), so each spelling is told apart by
where it stands rather than by what it says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tabml.adopt.names import Names

# uv.lock's entry for the project itself; it is dropped and `uv lock` writes it anew
# under the new name, in the place uv sorts it to.
LOCK_BLOCK_SEPARATOR = "\n[[package]]\n"


@dataclass(frozen=True)
class RenamePlan:
    """Paths to move (old -> new) and the new text of every file whose text changes."""

    moves: dict[str, str] = field(default_factory=dict)
    contents: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.moves and not self.contents


def _pattern(alternatives: list[tuple[str, str]]) -> tuple[re.Pattern[str], list[str]]:
    """One regex with a named group per alternative, so one pass never rewrites twice."""
    parts = [f"(?P<r{i}>{regex})" for i, (regex, _) in enumerate(alternatives)]
    return re.compile("|".join(parts), re.MULTILINE), [new for _, new in alternatives]


def _generic_rules(old: Names, new: Names) -> list[tuple[str, str]]:
    # Order matters where alternatives start at the same place: the project's forms come
    # before the bare package name, which they contain when the names coincide.
    slug = re.escape(old.slug)
    return [
        (re.escape(f"io.{old.slug}."), f"io.{new.slug}."),
        (re.escape(f"{old.slug}-"), f"{new.slug}-"),
        # The command: the name followed by a subcommand (`tabml train`), a placeholder
        # (`<stage>`, `{command}`) or a word in prose, which reads as well with the slug;
        # not an import (`from tabml import x`), nor part of a path or a dotted name.
        (rf"(?<![\w./-])(?<!from )(?<!import ){slug}(?= [a-z<{{])", new.slug),
        (re.escape(old.env_prefix), new.env_prefix),
        (re.escape(f"{old.identifier}_"), f"{new.identifier}_"),
        (re.escape(old.package), new.package),
    ]


def _file_rules(path: str, old: Names, new: Names) -> list[tuple[str, str]]:
    project, slug = re.escape(old.project), re.escape(old.slug)
    package = re.escape(old.package)
    if path == "pyproject.toml":
        return [
            (rf'^name = "{project}"$', f'name = "{new.project}"'),
            # [project.scripts]: the command is the slug, its target the package.
            (rf'^{slug}(?= = "{package}\.cli:main"$)', new.slug),
        ]
    if path == f"src/{old.package}/__init__.py":
        return [(rf'^DISTRIBUTION = "{project}"$', f'DISTRIBUTION = "{new.project}"')]
    if path == f"src/{old.package}/cli.py":
        return [(rf'(?<=prog="){slug}(?=")', new.slug)]
    if path == "README.md":
        return [(rf"\A# {project}$", f"# {new.project}")]
    if path == "LICENSE":
        return [(rf"\bthe {project} authors\b", f"the {new.project} authors")]
    return []


def _substitute(text: str, alternatives: list[tuple[str, str]]) -> str:
    pattern, replacements = _pattern(alternatives)

    def replace(match: re.Match[str]) -> str:
        assert match.lastgroup is not None
        return replacements[int(match.lastgroup[1:])]

    return pattern.sub(replace, text)


def rename_text(path: str, text: str, old: Names, new: Names) -> str:
    """`text` of the file at `path` with every name of `old` changed to `new`'s."""
    return _substitute(text, _file_rules(path, old, new) + _generic_rules(old, new))


def rename_path(path: str, old: Names, new: Names) -> str:
    return _substitute(path, _generic_rules(old, new))


def drop_project_from_lock(lock: str, project: str) -> str:
    """uv.lock without the `[[package]]` entry of the project itself (editable source)."""
    blocks = lock.split(LOCK_BLOCK_SEPARATOR)
    wanted = f'name = "{project}"\n'
    kept = [
        block
        for block in blocks
        if not (block.startswith(wanted) and 'source = { editable = "." }' in block)
    ]
    if len(kept) != len(blocks) - 1:
        raise ValueError(f"uv.lock: expected one editable entry named {project!r}")
    return LOCK_BLOCK_SEPARATOR.join(kept)


def plan_rename(
    files: Mapping[str, str],
    old: Names,
    new: Names,
    special: Mapping[str, Callable[[str], str]] | None = None,
) -> RenamePlan:
    """The moves and new contents that rename `old` to `new` in `files` (path -> text).

    `special` maps a path to its own rewrite (uv.lock), used instead of the rules.
    """
    if old == new:
        return RenamePlan()
    special = special or {}
    moves: dict[str, str] = {}
    contents: dict[str, str] = {}
    for path, text in files.items():
        target = rename_path(path, old, new)
        if target != path:
            moves[path] = target
        rewrite = special.get(path)
        renamed = rewrite(text) if rewrite else rename_text(path, text, old, new)
        if renamed != text:
            contents[target] = renamed
    return RenamePlan(moves, contents)


def mentions(files: Mapping[str, str], name: str) -> list[str]:
    """`path:line` of every case-insensitive mention of `name`, file names included."""
    needle = re.compile(re.escape(name), re.IGNORECASE)
    found = []
    for path, text in files.items():
        if needle.search(path):
            found.append(f"{path} (file name)")
        for number, line in enumerate(text.splitlines(), start=1):
            if needle.search(line):
                found.append(f"{path}:{number}: {line.strip()[:120]}")
    return found
