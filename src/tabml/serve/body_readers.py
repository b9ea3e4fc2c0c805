"""POST /predict's batches of plain numeric rows, read in C (`_body_readers.c`) where
it was built.

The C reader takes a body of rows that hold exactly the numeric features as plain JSON
numbers and gives their float64 values, with no Python object per value: for 1,000 rows
of 30 features it reads in a third of the time msgspec takes to parse them into typed
rows (docs/benchmarks.md). Any other body it declines, and the caller goes on to the
Python path, which reads and checks everything: it only ever speeds up, every body gets
the answer the Python path gives.

The extension is compiled when the project is installed (hatch_build.py) and in the
image's build stage (Dockerfile). Built without a C compiler, it is absent and
`row_reader` gives None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from tabml.serve.model import FeatureSpec

try:
    from tabml.serve._body_readers import RowReader
except ImportError:  # installed without a C compiler: the Python path reads every body
    RowReader = None  # type: ignore[assignment,misc]

BUILT = RowReader is not None
# A name the C reader can match as written: its JSON string needs no escape.
_PLAIN_NAME = re.compile(r'[^"\\\x00-\x1f]+')

# read(body, max_rows): the float64 [rows, features] values as bytes, the row count and
# whether the body was one object; None for any body but plain numeric rows.
ReadRows = Callable[[bytes, int], tuple[bytes, int, bool] | None]


def row_reader(features: Sequence[FeatureSpec]) -> ReadRows | None:
    """The C reader of rows of `features`, for a model whose features are all numeric
    and named without JSON escapes; None where it does not apply or was not built."""
    if RowReader is None or not features:
        return None
    if not all(feature.numeric and _PLAIN_NAME.fullmatch(feature.name) for feature in features):
        return None
    return RowReader(tuple(feature.name.encode("utf-8") for feature in features)).read
