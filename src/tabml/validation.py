"""Pydantic's validation errors as plain problems: which key, which value, which rule.

Training's config and serving's settings and metadata word their errors in their own
terms (a params key, an environment variable, a metadata field); this module gives them
the facts to word. It imports pydantic only, so serving may use it without importing
anything from training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    key: str  # dotted, e.g. "train.random_forest.max_depth"; "" for the whole model
    value: Any  # the input the rule refused
    rule: str  # pydantic's message, e.g. "Input should be greater than 0"
    kind: str  # pydantic's error type, e.g. "missing", "extra_forbidden"

    def describe(self) -> str:
        """`key = value: rule`."""
        return f"{self.key or '<top level>'} = {self.value!r}: {self.rule}"


def problems(error: ValidationError) -> list[Problem]:
    """One Problem per error, in pydantic's order."""
    return [
        Problem(
            # A model validator's location holds the validator ("function-after[...]"),
            # which names no key a person wrote.
            key=".".join(
                str(part) for part in item["loc"] if not str(part).startswith("function-")
            ),
            value=item["input"],
            rule=item["msg"],
            kind=item["type"],
        )
        for item in error.errors()
    ]
