"""split: a deterministic, stratified train/test split driven by a seed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from tabml.config import SplitParams
from tabml.errors import PipelineError


def split_frame(
    frame: pd.DataFrame, target: str, params: SplitParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into (train, test); stratified on `target` when params ask for it."""
    counts = frame[target].value_counts()
    if params.stratify and counts.min() < 2:
        rare = counts[counts < 2].index.tolist()
        raise PipelineError(
            f"split.stratify = true needs at least 2 rows of every class; classes {rare} have fewer"
        )
    train, test = train_test_split(
        frame,
        test_size=params.test_size,
        random_state=params.seed,
        stratify=frame[target] if params.stratify else None,
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def run(
    validated: Path, target: str, params: SplitParams, train_out: Path, test_out: Path
) -> tuple[int, int]:
    train, test = split_frame(pd.read_parquet(validated), target, params)
    train_out.parent.mkdir(parents=True, exist_ok=True)
    train.to_parquet(train_out, index=False)
    test.to_parquet(test_out, index=False)
    return len(train), len(test)
