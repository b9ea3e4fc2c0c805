"""The serving app's most common request bodies, read in C (`_body_readers.c`) where it
was built, for a model whose features are all numeric:
- POST /predict's batches (`row_reader`): rows that hold exactly the numeric features as
  plain JSON numbers, into float64 values with no Python object per value. For 1,000
  rows of 30 features it reads in under half the time msgspec takes to parse them into
  typed rows (docs/benchmarks.md).
- The Open Inference Protocol's rows (`v2_row_reader`): one tensor per feature, each
  value within its bounds, into the float32 [rows, features] the graph takes. A single
  row reads in a fifth of the time msgspec takes to parse it into typed tensors, 1,000
  rows of 30 features in about 0.6 of the time simdjson takes (docs/benchmarks.md).

Any other body a reader declines, and the caller goes on to the Python path, which
reads and checks everything: a reader only ever speeds up, every body gets the answer
the Python path gives.

The extension is compiled when the project is installed (hatch_build.py) and in the
image's build stage (Dockerfile). Built without a C compiler, it is absent and
`row_reader` gives None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from tabml.serve.model import FeatureSpec

try:
    from tabml.serve._body_readers import RowReader, V2RowReader
except ImportError:  # installed without a C compiler: the Python path reads every body
    RowReader = V2RowReader = None  # type: ignore[assignment,misc]

BUILT = RowReader is not None
# A name the C reader can match as written: its JSON string needs no escape.
_PLAIN_NAME = re.compile(r'[^"\\\x00-\x1f]+')

# read(body, max_rows): the float64 [rows, features] values as bytes, the row count and
# whether the body was one object; None for any body but plain numeric rows.
ReadRows = Callable[[bytes, int], tuple[bytes, int, bool] | None]
# read(body, max_rows): the float32 [rows, features] values as bytes, the row count and
# the request's id (None when it gives none), for an inference request of a tensor per
# feature that every check passes; None for any other.
ReadV2Rows = Callable[[bytes, int], tuple[bytes, int, str | None] | None]


def row_reader(features: Sequence[FeatureSpec]) -> ReadRows | None:
    """The C reader of rows of `features`, for a model whose features are all numeric
    and named without JSON escapes; None where it does not apply or was not built."""
    if RowReader is None or not _readable(features):
        return None
    return RowReader(_keys(features)).read


def v2_row_reader(
    features: Sequence[FeatureSpec],
    bounds: Sequence[tuple[float, float]],
    int_columns: Sequence[int],
) -> ReadV2Rows | None:
    """The C reader of inference requests of `features` (in metadata order),
    each value held within its `bounds` (`numbers.NumericRule.bounds`) and a whole
    number at `int_columns`, for a model whose features are all numeric and named
    without JSON escapes; None where it does not apply or was not built."""
    if V2RowReader is None or not _readable(features):
        return None
    return V2RowReader(
        _keys(features),
        tuple(lower for lower, _ in bounds),
        tuple(upper for _, upper in bounds),
        tuple(column in int_columns for column in range(len(features))),
    ).read


def _readable(features: Sequence[FeatureSpec]) -> bool:
    """Whether the C readers apply: every feature numeric, named without JSON escapes."""
    return bool(features) and all(
        feature.numeric and _PLAIN_NAME.fullmatch(feature.name) for feature in features
    )


def _keys(features: Sequence[FeatureSpec]) -> tuple[bytes, ...]:
    return tuple(feature.name.encode("utf-8") for feature in features)
