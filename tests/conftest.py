"""Shared fixtures: tiny frames and schemas that unit tests build models from. The run
picks the seed its fuzzing draws from and prints it; its end says which tests skipped
for want of a tool and what installs it."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabml.config import DataSchema, Params, load_params, parse_schema
from tests.availability import skip_summary

REPO_ROOT = Path(__file__).resolve().parents[1]
# hypothesis' own option: one seed for every property-based test of the run.
SEED_OPTION = "hypothesis_seed"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """A seed for the run unless one was given, set before hypothesis' plugin reads it.
    Without one, each test draws its own and a failure found by fuzzing (schemathesis,
    hypothesis; no example database) could not be replayed. An xdist worker takes the
    seed its controller chose (pytest_configure_node)."""
    if config.getoption(SEED_OPTION) is None:
        workerinput = getattr(config, "workerinput", {})
        seed = workerinput.get(SEED_OPTION) or str(secrets.randbelow(2**32))
        setattr(config.option, SEED_OPTION, seed)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist's controller hands each worker the run's seed."""
    node.workerinput[SEED_OPTION] = node.config.getoption(SEED_OPTION)


def replay_line(config: pytest.Config) -> str:
    seed = config.getoption(SEED_OPTION)
    return f"fuzzing seed {seed}: replay with pytest --hypothesis-seed={seed}"


def pytest_report_header(config: pytest.Config) -> str:
    return replay_line(config)


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


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if terminalreporter.stats.get("failed"):
        terminalreporter.section("replaying a failure")
        terminalreporter.line(replay_line(config))
    reasons = []
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            reasons.append((report.nodeid, str(longrepr[2])))
    lines = skip_summary(reasons)
    if lines:
        terminalreporter.section("tests skipped for want of a tool")
        for line in lines:
            terminalreporter.line(line)
