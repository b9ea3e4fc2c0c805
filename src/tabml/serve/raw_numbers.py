"""Numbers read straight from a request's JSON text into an array, for large requests.

A typed parse that yields Python floats spends most of a 1,000-row V2 request making,
converting and freeing 30,000 float objects. For a large request the numeric tensors'
`data` are left as raw JSON text by the typed parse (which still checks that the text is
valid JSON), and simdjson reads all of them, in C, into one float64 array.

The reader takes only flat arrays of plain numbers, each holding the values it must: any
other data (nested arrays, nulls, strings, booleans, numbers beyond the float64 or
64-bit integer ranges simdjson reads) gives None, and the caller falls back to the checks
that name each problem.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simdjson
from numpy.typing import NDArray


class FlatNumbers:
    """Reads flat JSON arrays of numbers into one float64 array (one reader per decoder:
    a simdjson parser keeps the buffers it grew for the largest document so far)."""

    def __init__(self) -> None:
        self._parser = simdjson.Parser()

    def read(self, arrays: Sequence[bytes], counts: Sequence[int]) -> NDArray[np.float64] | None:
        """The values of the JSON arrays `arrays`, one after another, when array i is a
        flat array of exactly `counts[i]` plain numbers; None otherwise."""
        for text, count in zip(arrays, counts, strict=True):
            # Flat: no array inside (the reader below would flatten one into the values).
            if count < 1 or text[:1] != b"[" or text.find(b"[", 1) != -1:
                return None
        return self._read(b"[" + b",".join(arrays) + b"]", counts)

    def _read(self, text: bytes, counts: Sequence[int]) -> NDArray[np.float64] | None:
        """`text`, an array of the arrays, read into one array of their values."""
        try:
            outer = self._parser.parse(text)
            # A flat array's length is its count of values (simdjson keeps each length).
            if not isinstance(outer, simdjson.Array) or _lengths(outer) != list(counts):
                return None
            # Not numbers: TypeError; a number it cannot read: ValueError, or RuntimeError
            # for an integer beyond 64 bits.
            buffer = outer.as_buffer(of_type="d")
        except (ValueError, TypeError):
            return None
        except RuntimeError:
            # Also what a parser says when a document it backs is still held somewhere:
            # the next request gets a new parser.
            self._parser = simdjson.Parser()
            return None
        return np.frombuffer(buffer, dtype=np.float64)


def _lengths(outer: simdjson.Array) -> list[int]:
    """The length of each array in `outer` (-1 for an item that is not an array)."""
    return [len(item) if isinstance(item, simdjson.Array) else -1 for item in outer]
