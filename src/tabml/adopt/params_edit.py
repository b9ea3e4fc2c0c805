"""Set keys of params.yaml by editing its text, so every comment the user relies on stays.

Only the lines of the keys being set change (and, when asked, the comment lines right
above a key). The result is parsed again and compared with the intended values, so a
layout this editor does not understand is an error, never a silently wrong file.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

WRAP_WIDTH = 88


class ParamsEditError(ValueError):
    """params.yaml is laid out in a way this editor cannot change safely."""


@dataclass(frozen=True)
class Setting:
    """A value for `section.key`; `comment` replaces the comment lines above the key."""

    section: str
    key: str
    value: Any
    comment: tuple[str, ...] | None = None

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.key}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _flow(value: Any) -> str:
    """`value` as one line of YAML (flow style), e.g. `null`, `[a, b]`, `'a: b'`."""
    dumped = yaml.safe_dump([value], default_flow_style=True, width=10**9, sort_keys=False)
    return dumped.strip()[1:-1]


def _section_span(lines: list[str], section: str) -> tuple[int, int]:
    header = re.compile(rf"^{re.escape(section)}:\s*(#.*)?$")
    for start, line in enumerate(lines):
        if header.match(line):
            end = start + 1
            while end < len(lines) and not (_is_content(lines[end]) and _indent(lines[end]) == 0):
                end += 1
            return start, end
    raise ParamsEditError(f"no top-level section {section!r}")


def _value_lines(setting: Setting, indent: int, inline: str) -> list[str]:
    """The lines that state the key and its value, in the style the old value had."""
    pad = " " * indent
    value = setting.value
    if isinstance(value, list):
        if inline.startswith("[") or not value:
            return [f"{pad}{setting.key}: {_flow(value)}"]
        items = [f"{pad}  - {_flow(item)}" for item in value]
        return [f"{pad}{setting.key}:", *items]
    one_line = f"{pad}{setting.key}: {_flow(value)}"
    if isinstance(value, str) and (len(one_line) > WRAP_WIDTH or inline.startswith(">")):
        wrapped = textwrap.wrap(value, WRAP_WIDTH - indent - 2, break_on_hyphens=False)
        return [f"{pad}{setting.key}: >-", *(f"{pad}  {line}" for line in wrapped)]
    return [one_line]


def _set(lines: list[str], setting: Setting) -> list[str]:
    start, end = _section_span(lines, setting.section)
    children = [i for i in range(start + 1, end) if _is_content(lines[i])]
    if not children:
        raise ParamsEditError(f"section {setting.section!r} has no keys")
    indent = _indent(lines[children[0]])
    key_line = re.compile(rf"^ {{{indent}}}{re.escape(setting.key)}:(?P<rest>.*)$")
    for row in children:
        match = key_line.match(lines[row])
        if match is not None:
            break
    else:
        raise ParamsEditError(f"no key {setting.dotted!r}")
    # The value runs on while lines are blank or indented deeper than the key; trailing
    # blank and comment lines belong to whatever follows.
    last = row
    for following in range(row + 1, end):
        if _is_content(lines[following]):
            if _indent(lines[following]) <= indent:
                break
            last = following
    inline, _, comment = match.group("rest").strip().partition(" #")
    new = _value_lines(setting, indent, inline.strip())
    if last == row and comment and len(new) == 1:
        # Keep the key's own comment, in its column when the new value leaves room.
        column = lines[row].index(" #" + comment) + 1
        new = [new[0].ljust(max(column, len(new[0]) + 2)) + "#" + comment.rstrip()]
    first = row
    if setting.comment is not None:
        while first - 1 > start and lines[first - 1].strip().startswith("#"):
            if _indent(lines[first - 1]) != indent:
                break
            first -= 1
        new = [f"{' ' * indent}# {text}" for text in setting.comment] + new
    return lines[:first] + new + lines[last + 1 :]


def set_params(text: str, settings: list[Setting]) -> str:
    """`text` with each setting applied; everything else, comments included, kept."""
    lines = text.splitlines()
    for setting in settings:
        lines = _set(lines, setting)
    edited = "\n".join(lines) + ("\n" if text.endswith("\n") else "")
    expected: dict[str, Any] = yaml.safe_load(text)
    for setting in settings:
        expected[setting.section][setting.key] = setting.value
    if yaml.safe_load(edited) != expected:
        raise ParamsEditError(
            "the edited file does not read back as intended for "
            + ", ".join(setting.dotted for setting in settings)
        )
    return edited


def current_values(text: str, settings: list[Setting]) -> Mapping[str, Any]:
    """What the file holds now for each setting's key (missing keys as None)."""
    loaded: dict[str, Any] = yaml.safe_load(text)
    return {
        setting.dotted: (loaded.get(setting.section) or {}).get(setting.key) for setting in settings
    }
