"""The C reader of plain numeric rows reads exactly what Python reads, or declines.

For any body, `RowReader.read` either declines (None) or gives the float64 values that
Python's own JSON parser and float() give, bit for bit, for a body that is plain rows:
an object, or an array of them, holding each key once with a number. Well-formed bodies
of every shape are read; mutated ones never yield values Python would not.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabml.serve import body_readers
from tabml.serve.model import FeatureSpec
from tests.availability import unavailable

NAMES = ("a", "bb", "mean radius", "é", "x_1")
MAX_ROWS = 8
SPACES = st.sampled_from(["", " ", "\n", "\t", "\r\n  "])


def require_reader() -> None:
    """Skip without the compiled reader; fail where the full suite is required."""
    if not body_readers.BUILT:
        unavailable(
            "the C reader of request rows",
            "tabml.serve._body_readers was not compiled (no C compiler at install)",
            install="a C compiler, then make setup",
        )


@pytest.fixture(scope="module")
def read() -> body_readers.ReadRows:
    require_reader()
    reader = body_readers.row_reader([numeric(name) for name in NAMES])
    assert reader is not None
    return reader


def numeric(name: str) -> FeatureSpec:
    return FeatureSpec(name=name, dtype="float", onnx_type="float32")


class NotPlainError(Exception):
    """The body is not plain rows of NAMES."""


def python_reading(body: bytes) -> tuple[bytes, int, bool]:
    """What the reader must give for `body`, read by Python; NotPlainError where it must
    decline."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        if sorted(keys) != sorted(NAMES):
            raise NotPlainError
        return dict(items)

    def no_constant(name: str) -> Any:
        raise NotPlainError

    try:
        parsed = json.loads(body, object_pairs_hook=pairs, parse_constant=no_constant)
    except ValueError:  # invalid JSON (json.JSONDecodeError, a bad UTF-8 sequence)
        raise NotPlainError from None
    single = isinstance(parsed, dict)
    rows = [parsed] if single else parsed
    if not isinstance(rows, list) or not 0 < len(rows) <= MAX_ROWS:
        raise NotPlainError
    values: list[float] = []
    for row in rows:
        if not isinstance(row, dict):
            raise NotPlainError
        for name in NAMES:
            value = row[name]
            if type(value) not in (int, float):
                raise NotPlainError
            try:
                values.append(float(value))
            except OverflowError:  # an int literal past the double range
                values.append(math.inf if value > 0 else -math.inf)
    return struct.pack(f"={len(values)}d", *values), len(rows), single


def assert_reads_as_python(read: body_readers.ReadRows, body: bytes) -> bool:
    """The reader declines `body` or reads it as Python does; whether it read it."""
    result = read(body, MAX_ROWS)
    if result is None:
        return False
    try:
        expected = python_reading(body)
    except NotPlainError:
        pytest.fail(f"read a body that is not plain rows: {body!r}")
    assert result == expected, body
    return True


# --- numbers -------------------------------------------------------------------------

DIGITS = st.text("0123456789", min_size=1, max_size=24)


@st.composite
def number_literals(draw: st.DrawFn) -> str:
    """JSON numbers of every form: floats' reprs, ints, and digit strings with
    fractions and exponents, short, long and past the double range."""
    kind = draw(st.sampled_from(["repr", "int", "wide", "digits"]))
    if kind == "repr":
        return repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
    if kind == "int":
        return str(draw(st.integers(-(10**25), 10**25)))
    if kind == "wide":
        # Beyond 2^53 and within 19 digits, with a point anywhere: extended precision.
        digits = str(draw(st.integers(2**53, 10**19 - 1)))
        point = draw(st.integers(0, len(digits) - 1))
        return f"{digits[: point + 1]}.{digits[point + 1 :] or '0'}"
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(DIGITS).lstrip("0") or "0"
    fraction = draw(st.one_of(st.just(""), DIGITS.map(lambda d: "." + d)))
    exponent = draw(
        st.one_of(
            st.just(""),
            st.tuples(
                st.sampled_from(["e", "E"]),
                st.sampled_from(["", "+", "-"]),
                st.integers(0, 400),
            ).map(lambda parts: f"{parts[0]}{parts[1]}{parts[2]}"),
        )
    )
    return f"{sign}{whole}{fraction}{exponent}"


EDGE_NUMBERS = [
    "0",
    "-0",
    "-0.0",
    "-0e0",
    "0.1",
    "1e22",
    "1e23",
    "9007199254740992",
    "9007199254740993",  # exactly halfway between two doubles: to the even one
    "9007199254740995",
    "9007199254740993.0000000001",
    "18446744073709551615",
    "1234567890123456789",
    "0.30000000000000004",
    "2.2250738585072011e-308",
    "4.9e-324",
    "1e-400",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "1e400",
    "-1e400",
    "1" + "0" * 400,
    "123456789012345678901234567890",
    "0.000000000000000000000000001",
    "1E+2",
    "1e-22",
    "123.456e-25",
]


def body_of(values: Sequence[str]) -> bytes:
    rows = [
        "{" + ",".join(f'"{name}":{value}' for name, value in zip(NAMES, row, strict=True)) + "}"
        for row in (values[i : i + len(NAMES)] for i in range(0, len(values), len(NAMES)))
    ]
    return ("[" + ",".join(rows) + "]").encode()


@pytest.mark.parametrize("literal", EDGE_NUMBERS)
def test_edge_numbers_read_as_python_reads_them(read: body_readers.ReadRows, literal: str) -> None:
    assert assert_reads_as_python(read, body_of([literal] * len(NAMES)))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(number_literals(), min_size=len(NAMES), max_size=len(NAMES)))
def test_numbers_read_as_python_reads_them(
    read: body_readers.ReadRows, literals: list[str]
) -> None:
    assert assert_reads_as_python(read, body_of(literals))


def test_halfway_cases_round_to_even(read: body_readers.ReadRows) -> None:
    # Integers exactly halfway between two doubles above 2^53 (extended precision
    # rounds them once, then to double: the reader must not round twice).
    halfway = [str(2**53 + 1 + 2 * step) for step in range(len(NAMES))]
    packed, _, _ = read(body_of(halfway), MAX_ROWS) or (b"", 0, False)
    assert np.frombuffer(packed).tolist() == [float(int(text)) for text in halfway]


# --- bodies --------------------------------------------------------------------------


@st.composite
def plain_bodies(draw: st.DrawFn) -> bytes:
    """Plain rows of NAMES in any key order and spacing: one object or an array."""

    def row() -> str:
        order = draw(st.permutations(NAMES))
        fields = [
            f'{draw(SPACES)}"{name}"{draw(SPACES)}:{draw(SPACES)}{draw(number_literals())}'
            f"{draw(SPACES)}"
            for name in order
        ]
        return "{" + ",".join(fields) + "}"

    if draw(st.booleans()):
        return f"{draw(SPACES)}{row()}{draw(SPACES)}".encode()
    rows = [row() for _ in range(draw(st.integers(1, MAX_ROWS)))]
    text = "[" + ",".join(f"{draw(SPACES)}{item}{draw(SPACES)}" for item in rows) + "]"
    return f"{draw(SPACES)}{text}{draw(SPACES)}".encode()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(plain_bodies())
def test_plain_bodies_are_read(read: body_readers.ReadRows, body: bytes) -> None:
    assert assert_reads_as_python(read, body)


# Bytes that turn a plain body into a nearly plain one.
NOISE = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"0", b"9", b"-", b"+", b".", b"e"]
NOISE += [b" ", b"\\", b"n", b"\x00", b"\xa0", b"\x0b", b"null", b"NaN", b'"a"', b"\\u0061"]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(plain_bodies(), st.data())
def test_mutated_bodies_are_declined_or_read_as_python(
    read: body_readers.ReadRows, body: bytes, data: st.DataObject
) -> None:
    assert_reads_as_python(read, mutated(body, data, NOISE, repeat=12))


def mutated(body: bytes, data: st.DataObject, noise: list[bytes], *, repeat: int) -> bytes:
    """`body` after one to three edits at drawn places: `noise` inserted or written over
    it, a byte deleted, or `repeat` bytes repeated."""
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(body)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace", "repeat"]))
        chosen = data.draw(st.sampled_from(noise))
        if action == "insert":
            body = body[:at] + chosen + body[at:]
        elif action == "delete":
            body = body[:at] + body[at + 1 :]
        elif action == "replace":
            body = body[:at] + chosen + body[at + len(chosen) :]
        else:
            body = body[:at] + body[at : at + repeat] + body[at:]
    return body


DECLINED = {
    "empty batch": b"[]",
    "empty body": b"",
    "spaces only": b"  ",
    "a number": b"1",
    "a missing key": b'[{"a":1,"bb":2,"mean radius":3,"\xc3\xa9":4}]',
    "an extra key": b'[{"a":1,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5,"z":6}]',
    "a key twice": b'[{"a":1,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5,"a":6}]',
    "a key twice, one missing": b'[{"a":1,"bb":2,"mean radius":3,"\xc3\xa9":4,"a":5}]',
    "an escaped key": b'[{"\\u0061":1,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "null": b'[{"a":null,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "a string": b'[{"a":"1","bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "true": b'[{"a":true,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "NaN": b'[{"a":NaN,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "Infinity": b'[{"a":-Infinity,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "a leading zero": b'[{"a":01,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "a plus sign": b'[{"a":+1,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "a bare point": b'[{"a":1.,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "a bare exponent": b'[{"a":1e,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "a nested array": b'[{"a":[1],"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "a trailing comma": b'[{"a":1,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5},]',
    "a trailing comma in a row": b'[{"a":1,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5,}]',
    "two documents": b'{"a":1,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5} {}',
    "text after": b'[{"a":1,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]x',
    "a NUL after": b'[{"a":1,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]\x00',
    "a non-JSON space": b'[{"a":1,\xc2\xa0"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "a vertical tab": b'[{"a":1,\x0b"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}]',
    "a key in Latin-1": b'[{"a":1,"bb":2,"mean radius":3,"\xe9":4,"x_1":5}]',
    "more rows than allowed": b"["
    + b",".join([b'{"a":1,"bb":2,"mean radius":3,"\xc3\xa9":4,"x_1":5}'] * (MAX_ROWS + 1))
    + b"]",
}


@pytest.mark.parametrize("body", DECLINED.values(), ids=DECLINED.keys())
def test_declines_what_is_not_plain_rows(read: body_readers.ReadRows, body: bytes) -> None:
    assert read(body, MAX_ROWS) is None


def test_every_prefix_of_a_body_is_declined(read: body_readers.ReadRows) -> None:
    body = body_of(["1.5", "-2", "3e2", "0.25", "7"] * 2)
    assert read(body, MAX_ROWS) is not None
    for end in range(len(body)):
        assert read(body[:end], MAX_ROWS) is None, body[:end]


def test_a_row_read_after_a_declined_one_is_not_thought_to_repeat_keys(
    read: body_readers.ReadRows,
) -> None:
    # The reader keeps which keys a row has shown across calls: a body declined halfway
    # through a row must not make the next body's keys look seen.
    assert read(b'[{"a":1,"bb":2,"mean radius":null}]', MAX_ROWS) is None
    assert assert_reads_as_python(read, body_of(["1", "2", "3", "4", "5"]))


def test_keys_in_another_order_than_the_features(read: body_readers.ReadRows) -> None:
    body = b'[{"x_1":5,"\xc3\xa9":4,"mean radius":3,"bb":2,"a":1}]'
    assert assert_reads_as_python(read, body)


# --- where the reader applies --------------------------------------------------------


def test_applies_to_numeric_features_named_without_escapes() -> None:
    require_reader()
    assert body_readers.row_reader([numeric("a"), numeric("b")]) is not None
    category = FeatureSpec(name="c", dtype="category", onnx_type="string", allowed=["x"])
    assert body_readers.row_reader([numeric("a"), category]) is None
    for name in ['say "hi"', "back\\slash", "tab\there"]:
        assert body_readers.row_reader([numeric("a"), numeric(name)]) is None
    assert body_readers.row_reader([]) is None


def test_arguments_are_checked(read: body_readers.ReadRows) -> None:
    with pytest.raises(TypeError, match="body must be bytes"):
        read(bytearray(b"[]"), MAX_ROWS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_rows must be at least 1"):
        read(b"[]", 0)
    assert body_readers.RowReader is not None
    with pytest.raises(TypeError, match="non-empty tuple of bytes"):
        body_readers.RowReader(("a",))
    with pytest.raises(TypeError, match="non-empty tuple of bytes"):
        body_readers.RowReader(())
