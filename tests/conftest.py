"""Shared fixtures: tiny frames and schemas that unit tests build models from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabml.config import DataSchema, Params, load_params, parse_schema

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def default_params() -> Params:
    return load_params(REPO_ROOT / "params.yaml")


@pytest.fixture
def tiny_schema() -> DataSchema:
    """Two numeric features, one categorical feature, a binary label."""
    return parse_schema(
        {
            "target": {"name": "label", "classes": ["no", "yes"]},
            "features": {
                "size": {"dtype": "float", "min": 0, "max": 100},
                "count": {"dtype": "int", "min": 0, "max": 50},
                "colour": {"dtype": "category", "allowed": ["red", "green", "blue"]},
            },
        }
    )


@pytest.fixture
def tiny_frame() -> pd.DataFrame:
    """120 rows whose label depends on the features, so a model can learn it."""
    rng = np.random.default_rng(0)
    size = rng.uniform(0, 100, 120).round(3)
    count = rng.integers(0, 50, 120)
    colour = rng.choice(["red", "green", "blue"], 120)
    score = size / 100 + (colour == "red") * 0.4 - count / 100 + rng.normal(0, 0.1, 120)
    label = np.where(score > 0.4, "yes", "no")
    return pd.DataFrame({"size": size, "count": count, "colour": colour, "label": label})
