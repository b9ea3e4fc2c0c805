"""split: the same seed gives the same split; class shares survive stratification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


@pytest.mark.parametrize("stratify", [True, False])
@pytest.mark.parametrize(
    ("class_rows", "test_size", "seed"),
    [
        ({"yes": 60, "no": 60}, 0.2, 42),
        ({"a": 357, "b": 212}, 0.2, 42),  # the bundled breast-cancer data's classes
        ({"a": 7, "b": 5, "c": 3}, 0.33, 0),  # tied remainders: the random tie-break
        ({"x": 50, "y": 30, "z": 20, "w": 2}, 0.25, 123),
        ({"p": 2, "q": 2, "r": 2, "s": 2}, 0.5, 9),
    ],
)
def test_rows_are_scikit_learns_train_test_split(
    class_rows: dict[str, int], test_size: float, seed: int, stratify: bool
) -> None:
    from sklearn.model_selection import train_test_split

    labels = np.array([c for c, rows in class_rows.items() for _ in range(rows)], dtype=object)
    labels = labels[np.random.default_rng(seed).permutation(len(labels))]
    frame = pd.DataFrame({"row": np.arange(len(labels)), "label": labels})
    expected_train, expected_test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=labels if stratify else None
    )
    train, test = split_frame(
        frame, "label", SplitParams(test_size=test_size, seed=seed, stratify=stratify)
    )
    assert train["row"].tolist() == expected_train["row"].tolist()
    assert test["row"].tolist() == expected_test["row"].tolist()


def test_a_test_share_too_small_for_every_class_is_named(tiny_frame: pd.DataFrame) -> None:
    with pytest.raises(PipelineError, match=r"each of the 2 classes on both sides; .* 1 test rows"):
        split_frame(tiny_frame, "label", SplitParams(test_size=0.005))


def test_a_test_share_leaving_no_training_row_is_named() -> None:
    frame = pd.DataFrame({"label": ["a", "b", "a"]})
    with pytest.raises(PipelineError, match=r"split.test_size = 0.9 leaves no training rows"):
        split_frame(frame, "label", SplitParams(test_size=0.9, stratify=False))


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
