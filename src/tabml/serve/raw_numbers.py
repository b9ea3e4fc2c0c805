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
        pieces = []
        for text, count in zip(arrays, counts, strict=True):
            # A flat array of n numbers holds n - 1 commas (a number has none, and a
            # string, which could hide one, is refused by the read below).
            if (
                count < 1
                or text[:1] != b"["
                or text[-1:] != b"]"
                or text.count(b"[") != 1
                or text.count(b",") != count - 1
            ):
                return None
            pieces.append(text[1:-1])
        values = self._read(b"[" + b",".join(pieces) + b"]")
        if values is None or len(values) != sum(counts):
            return None
        return values

    def _read(self, text: bytes) -> NDArray[np.float64] | None:
        try:
            array = self._parser.parse(text)
            # Not numbers: TypeError; a number it cannot read: ValueError, or RuntimeError
            # for an integer beyond 64 bits.
            buffer = array.as_buffer(of_type="d") if isinstance(array, simdjson.Array) else None
        except (ValueError, TypeError):
            return None
        except RuntimeError:
            # Also what a parser says when a document it backs is still held somewhere:
            # the next request gets a new parser.
            self._parser = simdjson.Parser()
            return None
        return None if buffer is None else np.frombuffer(buffer, dtype=np.float64)
