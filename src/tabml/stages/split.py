"""split: a deterministic, stratified train/test split driven by a seed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tabml.config import SplitParams
from tabml.errors import PipelineError
from tabml.split_indices import train_test_indices


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
    train_rows, test_rows = train_test_indices(
        frame[target].to_numpy(),
        test_size=params.test_size,
        seed=params.seed,
        stratify=params.stratify,
    )
    train, test = frame.iloc[train_rows], frame.iloc[test_rows]
    return train.reset_index(drop=True), test.reset_index(drop=True)


def run(
    validated: Path, target: str, params: SplitParams, train_out: Path, test_out: Path
) -> tuple[int, int]:
    train, test = split_frame(pd.read_parquet(validated), target, params)
    train_out.parent.mkdir(parents=True, exist_ok=True)
    train.to_parquet(train_out, index=False)
    test.to_parquet(test_out, index=False)
    return len(train), len(test)
