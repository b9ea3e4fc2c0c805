"""What a scoring run may be told: the chunk size and what to do with a refused row.

params.yaml's `score` section (tabml.config) and the flags of `python -m tabml.score`
both hold these; it imports pydantic only, so the config and the serving image share it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tabml.contract import OutOfRange

# A row the decoder refuses stops the run with its problems ("fail"), or is written to
# the refused-rows file with its problems while the other rows are scored ("set_aside").
BadRows = Literal["fail", "set_aside"]


class ScoreOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Rows read, checked and scored at once; memory grows with it. On 1M CSV rows
    # (benchmarks/results/score.md) 1,000-row chunks scored 42,400 rows per CPU-second
    # with an 86 MB peak, 10,000-row chunks 34,200 with 167 MB: larger chunks buy nothing.
    chunk_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 1_000
    bad_rows: BadRows = "fail"
    out_of_range: OutOfRange = "reject"
