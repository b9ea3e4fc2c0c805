"""The columns of a 2-D float array as JSON numbers, for responses and log lines that are
written as bytes rather than serialized from Python objects."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray


def json_columns(block: NDArray[Any]) -> list[list[bytes]]:
    """Each column of a 2-D float array as its rows' JSON numbers (NaN as null), from
    one dump: orjson's digits for the array's own float type."""
    width = block.shape[1]
    if not width:
        return []
    text = orjson.dumps(np.ravel(block), option=orjson.OPT_SERIALIZE_NUMPY)
    # "[1.5,null,0.1,2.0]" holds numbers and nulls only: commas split it.
    flat = text[1:-1].split(b",")
    return [flat[column::width] for column in range(width)]
