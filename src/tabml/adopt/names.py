"""Rules for the project (distribution) name and the Python package name.

The two may differ (project `acme-fraud`, package `fraud`). The package is what Python
imports; everything that names the project to the outside world derives from the
project name: what pip and `importlib.metadata` know it as, the command, image names and
labels, metric names and environment variables.
"""

from __future__ import annotations

import io
import keyword
import re
import sys
import tokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tabml.errors import InputError

# PEP 508 / the core metadata spec: what PyPI accepts as a distribution name.
PROJECT_PATTERN = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
PROJECT_RULE = (
    "must be a valid PyPI distribution name: ASCII letters, digits, '.', '_' and '-', "
    "starting and ending with a letter or digit"
)
# Metric names and environment variables are built from the project name, and
# neither may start with a digit.
PROJECT_START_RULE = (
    "must start with a letter (it also names the metrics, <name>_..., and the "
    "environment variables, <NAME>_..., which cannot start with a digit)"
)
PACKAGE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
PACKAGE_RULE = (
    "must be a lowercase Python identifier: a lowercase letter, then lowercase letters, "
    "digits or underscores"
)


def canonical(project: str) -> str:
    """PEP 503 normalisation: lowercase, runs of '-', '_' and '.' become one '-'."""
    return re.sub(r"[-_.]+", "-", project).lower()


@dataclass(frozen=True)
class Names:
    """What a project is called: its distribution name and its import package."""

    project: str
    package: str

    @property
    def slug(self) -> str:
        """The project name where only lowercase and '-' fit: the command, images,
        label namespaces, folders."""
        return canonical(self.project)

    @property
    def identifier(self) -> str:
        """The project name where only identifier characters fit: metric names."""
        return self.slug.replace("-", "_")

    @property
    def env_prefix(self) -> str:
        """The project name as environment variables spell it (`<PREFIX>_PORT`)."""
        return self.identifier.upper()

    def spellings(self) -> set[str]:
        """Every form the names take in the repository's text (env_prefix aside: the
        identifier's upper case)."""
        return {self.package, self.project, self.slug, self.identifier}


def check_project_name(name: str, locked_dependencies: Iterable[str]) -> None:
    """Refuse a name PyPI would not accept, or one that is already a dependency's."""
    if not PROJECT_PATTERN.match(name):
        raise InputError(f"--project-name {name!r}: {PROJECT_RULE}")
    if not name[0].isalpha():
        raise InputError(f"--project-name {name!r}: {PROJECT_START_RULE}")
    taken = {canonical(dependency) for dependency in locked_dependencies}
    if canonical(name) in taken:
        raise InputError(
            f"--project-name {name!r}: must not be the name of a dependency in uv.lock "
            f"({canonical(name)!r}); uv cannot lock a project that depends on itself"
        )


def python_identifiers(sources: Mapping[str, str]) -> dict[str, str]:
    """Every NAME token in the given Python sources -> the first file that uses it."""
    found: dict[str, str] = {}
    for path, text in sources.items():
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (tokenize.TokenError, SyntaxError):
            continue
        for token in tokens:
            if token.type == tokenize.NAME:
                found.setdefault(token.string, path)
    return found


def check_package_name(
    name: str,
    *,
    current: str,
    installed_modules: Iterable[str],
    identifiers: Mapping[str, str],
) -> None:
    """Refuse a package name that is not a plain lowercase identifier, or that would
    shadow a module (stdlib or installed) or collide with a name the code already uses.

    `current` is the package being renamed; its own name is not a collision.
    """
    if not PACKAGE_PATTERN.match(name):
        raise InputError(f"--package-name {name!r}: {PACKAGE_RULE}")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise InputError(f"--package-name {name!r}: must not be a Python keyword")
    if name == current:
        return
    if name in sys.stdlib_module_names:
        raise InputError(
            f"--package-name {name!r}: must not shadow the standard-library module {name!r}"
        )
    if name in set(installed_modules):
        raise InputError(
            f"--package-name {name!r}: must not shadow the installed module {name!r} "
            "(a dependency of this project)"
        )
    if name in identifiers:
        raise InputError(
            f"--package-name {name!r}: must not collide with the identifier {name!r} that "
            f"{identifiers[name]} already uses (every {current!r} in the code becomes {name!r})"
        )
