"""Just enough PromQL reading for the monitoring tests: the selectors an expression reads,
the label names it groups or matches on, and the expression taken apart so that every
part can be asked whether it returns a series.

Not a parser: a tokenizer that knows the shapes used in deploy/monitoring (selectors with
matchers, ranges, functions, aggregations with by/without, vector matching with
on/ignoring/group_left, set operators, comparisons).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN = re.compile(
    r"""
     (?P<string>"(?:[^"\\]|\\.)*")
    |(?P<braces>\{[^}]*\})
    |(?P<range>\[[^\]]*\])
    |(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    |(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
    |(?P<paren>[()])
    |(?P<op>==|!=|>=|<=|[-+*/%^><,])
    |(?P<space>\s+)
    """,
    re.VERBOSE,
)
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
# Words followed by a list of label names rather than an expression.
LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile"}
    | {"count_values", "group"}
)
SET_OPERATORS = frozenset({"and", "or", "unless"})
KEYWORDS = SET_OPERATORS | {"bool", "offset"}
COMPARISONS = frozenset({"==", "!=", ">=", "<=", ">", "<"})


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Selector:
    """A metric name and its label matchers, as (label, operator, value)."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...]

    def promql(self) -> str:
        inner = ",".join(f'{label}{op}"{value}"' for label, op, value in self.matchers)
        return f"{self.metric}{{{inner}}}" if inner else self.metric


def tokens(expr: str) -> list[Token]:
    found: list[Token] = []
    position = 0
    while position < len(expr):
        match = TOKEN.match(expr, position)
        if match is None:
            raise ValueError(f"cannot read {expr[position : position + 20]!r} in {expr!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            found.append(Token(kind, match.group(), match.start(), match.end()))
        position = match.end()
    return found


def selectors(expr: str) -> list[Selector]:
    """Every vector or range selector `expr` reads."""
    found: list[Selector] = []
    items = tokens(expr)
    index = 0
    while index < len(items):
        token = items[index]
        following = items[index + 1] if index + 1 < len(items) else None
        if token.kind == "name" and token.text in LABEL_LISTS:
            index = _after_parens(items, index + 1)
            continue
        is_call = following is not None and following.text == "("
        if token.kind == "name" and not is_call and token.text not in KEYWORDS | AGGREGATIONS:
            matchers: tuple[tuple[str, str, str], ...] = ()
            if following is not None and following.kind == "braces":
                matchers = tuple(MATCHER.findall(following.text))
                index += 1
            found.append(Selector(token.text, matchers))
        index += 1
    return found


def grouping_labels(expr: str) -> set[str]:
    """Label names in by/without/on/ignoring/group_left/group_right lists."""
    items = tokens(expr)
    names: set[str] = set()
    for index, token in enumerate(items):
        if token.kind == "name" and token.text in LABEL_LISTS:
            end = _after_parens(items, index + 1)
            names.update(item.text for item in items[index + 1 : end] if item.kind == "name")
    return names


@dataclass(frozen=True)
class Part:
    """One operand of an expression's top-level set operators, as a query that returns
    a series whenever its operand's inputs exist; `labelled` when the expression's
    result takes its labels from it (the first operand and those after `or`, not those
    after `and` or `unless`, which only filter)."""

    query: str
    labelled: bool


def parts_that_must_return_series(expr: str) -> list[Part]:
    """`expr` split at its top-level set operators (and, or, unless), each part with its
    top-level comparisons made `bool`, so that it returns a series whenever what it
    compares exists; parts that are `absent(...)` are left out (they return a series only
    when what they name is missing, and `selectors` covers what they name)."""
    items = tokens(expr)
    parts: list[list[Token]] = [[]]
    labelled = [True]
    depth = 0
    index = 0
    while index < len(items):
        token = items[index]
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        if depth == 0 and token.kind == "name" and token.text in SET_OPERATORS:
            parts.append([])
            labelled.append(token.text == "or")
            index += 1
            if index < len(items) and items[index].text in {"on", "ignoring"}:
                index = _after_parens(items, index + 1)
            continue
        parts[-1].append(token)
        index += 1
    return [
        Part(_with_bool(part), gives_labels)
        for part, gives_labels in zip(parts, labelled, strict=True)
        if part and not (part[0].text == "absent" and part[-1].text == ")")
    ]


def _with_bool(part: list[Token]) -> str:
    pieces: list[str] = []
    depth = 0
    for position, token in enumerate(part):
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        pieces.append(token.text)
        following = part[position + 1].text if position + 1 < len(part) else ""
        if depth == 0 and token.text in COMPARISONS and following != "bool":
            pieces.append("bool")
    return " ".join(pieces)


def _after_parens(items: list[Token], index: int) -> int:
    """The index after the parenthesised list that starts at `index` (if one does)."""
    if index >= len(items) or items[index].text != "(":
        return index
    depth = 0
    for position in range(index, len(items)):
        if items[position].text == "(":
            depth += 1
        elif items[position].text == ")":
            depth -= 1
            if depth == 0:
                return position + 1
    raise ValueError("unbalanced parentheses")
