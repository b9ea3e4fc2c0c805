"""What the server refuses in a request, and how it says so.

A `Problem` names the field, the value and the rule it breaks; a `RequestError` carries
the problems of one refused request and shapes them into the message and the JSON body
of its 4xx response.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

MAX_PROBLEMS = 20
_SHOWN_CHARS = 80


@dataclass(frozen=True)
class Problem:
    field: str
    rule: str
    value: Any = None
    has_value: bool = True
    # The feature whose schema range the value is outside, for /metrics; None for any
    # other problem.
    out_of_range: str | None = None


class RequestError(Exception):
    """A request the server refuses: status 4xx, with the field, value and rule of each problem."""

    def __init__(self, status: int, problems: Sequence[Problem]) -> None:
        self.status = status
        self.problems = list(problems)
        super().__init__(self.message)

    @classmethod
    def one(
        cls, status: int, field: str, rule: str, *, value: Any = None, has_value: bool = True
    ) -> RequestError:
        return cls(status, [Problem(field, rule, value, has_value=has_value)])

    @property
    def message(self) -> str:
        parts = []
        for problem in self.problems[:MAX_PROBLEMS]:
            shown = f" = {show(problem.value)}" if problem.has_value else ""
            parts.append(f"{problem.field}{shown}: {problem.rule}")
        if len(self.problems) > MAX_PROBLEMS:
            parts.append(f"and {len(self.problems) - MAX_PROBLEMS} more problems")
        return "; ".join(parts)

    def body(self) -> dict[str, Any]:
        details = [
            {
                "field": problem.field,
                "rule": problem.rule,
                "value": show(problem.value) if problem.has_value else None,
            }
            for problem in self.problems[:MAX_PROBLEMS]
        ]
        return {"error": self.message, "details": details}


def show(value: Any) -> str:
    """A short JSON-like rendering of a client's value for an error message."""
    if isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    else:
        try:
            text = orjson.dumps(value).decode()
        except (TypeError, orjson.JSONEncodeError):
            text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
