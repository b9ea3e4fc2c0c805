"""FlatNumbers reads flat JSON arrays of plain numbers, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from tabml.serve.raw_numbers import FlatNumbers


def test_arrays_are_read_one_after_another() -> None:
    values = FlatNumbers().read([b"[1,2.5,-3e2]", b"[ 4 ,\n5 ]"], [3, 2])
    assert values is not None
    assert values.dtype == np.float64
    assert values.tolist() == [1.0, 2.5, -300.0, 4.0, 5.0]


@pytest.mark.parametrize(
    ("arrays", "counts"),
    [
        ([b"[1,2]"], [3]),  # fewer values than the tensor needs
        ([b"[1,2,3]"], [2]),  # more
        ([b"[]"], [0]),  # none
        ([b"[[1],[2]]"], [2]),  # nested: the flat count would match
        ([b"[1,null]"], [2]),
        ([b'[1,"2"]'], [2]),
        ([b'["1,2"]'], [2]),  # a comma inside a string
        ([b"[true,1]"], [2]),
        ([b"[1e400]"], [1]),  # beyond float64
        ([b"[18446744073709551616]"], [1]),  # beyond 64-bit integers
        ([b"1"], [1]),  # not an array
        ([b'{"a":1}'], [1]),
        ([b"[1,2]", b"[3]"], [2, 2]),  # the second array is short
        ([b"[1,2,3]", b"[4]"], [2, 2]),  # one long, one short: the total is right
        ([b"[1,[2]]"], [2]),  # an array inside
        ([b'[1,{"a":2}]'], [2]),  # an object inside
    ],
)
def test_anything_but_the_expected_numbers_is_refused(
    arrays: list[bytes], counts: list[int]
) -> None:
    assert FlatNumbers().read(arrays, counts) is None


def test_a_refusal_leaves_the_reader_usable() -> None:
    reader = FlatNumbers()
    assert reader.read([b"[18446744073709551616]"], [1]) is None
    assert reader.read([b"[1,true]"], [2]) is None
    values = reader.read([b"[7,8]"], [2])
    assert values is not None and values.tolist() == [7.0, 8.0]
