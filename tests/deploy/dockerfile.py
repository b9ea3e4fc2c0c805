"""The facts of the Dockerfile's final stage that the manifests must agree with."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.deploy.manifests import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


@dataclass(frozen=True)
class ImageFacts:
    env: dict[str, str]
    user: str
    exposed: tuple[int, ...]
    # COPY source -> destination, as the final stage copies from the build context.
    copies: dict[str, str]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments out."""
    joined = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", text)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


@cache
def final_stage(path: Path = DOCKERFILE) -> ImageFacts:
    steps = instructions(path.read_text(encoding="utf-8"))
    last_from = max(index for index, (word, _) in enumerate(steps) if word == "FROM")
    env: dict[str, str] = {}
    user = ""
    exposed: list[int] = []
    copies: dict[str, str] = {}
    for word, rest in steps[last_from + 1 :]:
        if word == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))
        elif word == "USER":
            user = rest
        elif word == "EXPOSE":
            exposed.extend(int(port.split("/")[0]) for port in rest.split())
        elif word == "COPY" and not rest.startswith("--from"):
            source, destination = rest.split()
            copies[source] = destination
    return ImageFacts(env, user, tuple(exposed), copies)
