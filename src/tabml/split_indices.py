"""Which rows a seeded train/test split puts where, with numpy alone.

The rows are exactly those scikit-learn's `train_test_split(test_size=..., random_state=seed,
stratify=...)` picks (ShuffleSplit, or StratifiedShuffleSplit with its approximate-mode
class counts), drawn from the same legacy `RandomState` stream in the same order, so a
split made before is made again byte for byte. The split stage needs nothing else from
scikit-learn, whose import (scipy.stats with it, about 1.4 CPU-seconds) would cost its
process far more than the split itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tabml.errors import PipelineError

Indices = NDArray[np.intp]


def split_sizes(rows: int, test_size: float) -> tuple[int, int]:
    """(train rows, test rows): the test share rounded up, as scikit-learn rounds it."""
    n_test = math.ceil(test_size * rows)
    n_train = rows - n_test
    if n_train <= 0:
        raise PipelineError(
            f"split.test_size = {test_size} leaves no training rows out of {rows}; lower it"
        )
    return n_train, n_test


def approximate_mode(
    class_counts: NDArray[np.int64], draws: int, rng: np.random.RandomState
) -> NDArray[np.int64]:
    """Rows per class when `draws` rows are drawn from classes of `class_counts` rows:
    each class's share rounded down, then the largest remainders get one more, ties
    broken at random (scikit-learn's `_approximate_mode`)."""
    continuous = class_counts / class_counts.sum() * draws
    floored = np.floor(continuous)
    need_to_add = int(draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            add_now = min(len(tied), need_to_add)
            floored[rng.choice(tied, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    counts: NDArray[np.int64] = floored.astype(np.int64)
    return counts


def stratified_indices(
    labels: NDArray[Any], n_train: int, n_test: int, rng: np.random.RandomState
) -> tuple[Indices, Indices]:
    classes, class_of_row, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    if min(n_train, n_test) < len(classes):
        raise PipelineError(
            f"split.stratify = true needs at least one row of each of the {len(classes)} "
            f"classes on both sides; the split gives {n_train} train and {n_test} test rows"
        )
    rows_of_class = np.split(np.argsort(class_of_row, kind="stable"), np.cumsum(class_counts)[:-1])
    train_counts = approximate_mode(class_counts, n_train, rng)
    test_counts = approximate_mode(class_counts - train_counts, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for rows, n_class_train, n_class_test in zip(
        rows_of_class, train_counts, test_counts, strict=True
    ):
        shuffled = rows.take(rng.permutation(len(rows)), mode="clip")
        train.extend(shuffled[:n_class_train])
        test.extend(shuffled[n_class_train : n_class_train + n_class_test])
    return rng.permutation(train), rng.permutation(test)


def train_test_indices(
    labels: NDArray[Any], *, test_size: float, seed: int, stratify: bool
) -> tuple[Indices, Indices]:
    """Row positions of the (train, test) split; stratified on `labels` when asked."""
    n_train, n_test = split_sizes(len(labels), test_size)
    rng = np.random.RandomState(seed)
    if stratify:
        return stratified_indices(labels, n_train, n_test, rng)
    shuffled = rng.permutation(len(labels))
    return shuffled[n_test : n_test + n_train], shuffled[:n_test]
