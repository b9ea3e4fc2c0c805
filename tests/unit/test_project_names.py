"""The names the running project goes by. Python imports the package; everything that
names the project to the outside world derives from the distribution name (pyproject's
[project] name), which need not normalise to the package name (`acme-fraud`, `fraud`)."""

from __future__ import annotations

import importlib.metadata
import tomllib

from prometheus_client import generate_latest

import tabml
from tabml.adopt.names import Names
from tabml.cli import build_parser
from tabml.config import ExportParams
from tabml.lineage import LABELS
from tabml.monitor.issue import MARKER
from tabml.serve.metrics import Metrics
from tabml.serve.settings import ENV_PREFIX
from tests.conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
NAMES = Names(project=tabml.DISTRIBUTION, package=tabml.__name__)


def test_the_distribution_is_pyprojects_project_name() -> None:
    assert PYPROJECT["project"]["name"] == tabml.DISTRIBUTION
    assert PYPROJECT["project"]["version"] == tabml.__version__
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == [f"src/{tabml.__name__}"]


def test_the_installed_metadata_is_found_by_the_distribution_name() -> None:
    installed = importlib.metadata.distribution(tabml.DISTRIBUTION)
    assert installed.version == tabml.__version__
    scripts = {
        entry.name: entry.value
        for entry in installed.entry_points
        if entry.group == "console_scripts"
    }
    assert scripts == {NAMES.slug: f"{tabml.__name__}.cli:main"}


def test_the_command_is_named_after_the_project() -> None:
    assert PYPROJECT["project"]["scripts"] == {NAMES.slug: f"{tabml.__name__}.cli:main"}
    assert build_parser().prog == NAMES.slug


def test_metric_names_start_with_the_project_name() -> None:
    metrics = Metrics()
    metrics.observe_request("/predict", "POST", 200, 0.001)
    text = generate_latest(metrics.registry).decode()
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert names
    assert all(name.startswith(f"{NAMES.identifier}_") for name in names), names


def test_environment_variables_labels_and_model_name_carry_the_project_name() -> None:
    assert f"{NAMES.env_prefix}_" == ENV_PREFIX
    assert all(label.startswith(f"io.{NAMES.slug}.") for label in LABELS.values())
    assert ExportParams().model_name == f"{NAMES.slug}-classifier"
    assert f"<!-- {NAMES.slug}-drift -->" == MARKER
