"""split: the same seed gives the same split; class shares survive stratification."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tabml.config import SplitParams
from tabml.errors import PipelineError
from tabml.stages import split
from tabml.stages.split import run, split_frame


def test_split_is_deterministic_and_stratified(tiny_frame: pd.DataFrame) -> None:
    params = SplitParams(test_size=0.25, seed=7)
    train_a, test_a = split_frame(tiny_frame, "label", params)
    train_b, test_b = split_frame(tiny_frame, "label", params)
    pd.testing.assert_frame_equal(train_a, train_b)
    pd.testing.assert_frame_equal(test_a, test_b)
    assert len(test_a) == 30
    assert len(train_a) + len(test_a) == len(tiny_frame)
    share = tiny_frame["label"].value_counts(normalize=True)
    test_share = test_a["label"].value_counts(normalize=True)
    assert (share - test_share).abs().max() < 0.02


def test_another_seed_gives_another_split(tiny_frame: pd.DataFrame) -> None:
    _, test_a = split_frame(tiny_frame, "label", SplitParams(seed=1))
    _, test_b = split_frame(tiny_frame, "label", SplitParams(seed=2))
    assert not test_a.equals(test_b)


def test_stratifying_needs_two_rows_per_class(tiny_frame: pd.DataFrame) -> None:
    lonely = tiny_frame.copy()
    lonely.loc[0, "label"] = "rare"
    with pytest.raises(PipelineError, match=r"classes \['rare'\] have fewer"):
        split_frame(lonely, "label", SplitParams())
    train, test = split_frame(lonely, "label", SplitParams(stratify=False))
    assert len(train) + len(test) == len(lonely)


def test_run_writes_the_rows_split_frame_gives(tmp_path: Path, tiny_frame: pd.DataFrame) -> None:
    validated = tmp_path / "validated.parquet"
    tiny_frame.to_parquet(validated, index=False)
    params = SplitParams(test_size=0.25, seed=3)
    n_train, n_test = run(
        validated, "label", params, tmp_path / "train.parquet", tmp_path / "t.parquet"
    )
    train, test = split_frame(tiny_frame, "label", params)
    assert (n_train, n_test) == (len(train), len(test))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "train.parquet"), train)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), test)
    # The same bytes as writing the split frame whole.
    train.to_parquet(tmp_path / "whole.parquet", index=False)
    assert (tmp_path / "whole.parquet").read_bytes() == (tmp_path / "train.parquet").read_bytes()


def test_run_writes_row_groups_of_the_default_size(
    tmp_path: Path, tiny_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(split, "ROW_GROUP_ROWS", 16)
    validated = tmp_path / "validated.parquet"
    tiny_frame.to_parquet(validated, index=False)
    split.run(validated, "label", SplitParams(), tmp_path / "train.parquet", tmp_path / "t.parquet")
    groups = pq.ParquetFile(tmp_path / "train.parquet").metadata
    assert groups.num_row_groups == -(-groups.num_rows // 16)
    train, _ = split_frame(tiny_frame, "label", SplitParams())
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "train.parquet"), train)
