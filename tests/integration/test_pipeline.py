"""The pipeline end to end in a fresh copy: outputs, caching, reruns and determinism."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tabml.config import load_params
from tests.lineage import read_card

from .project import STAGES, Project, new_project

pytestmark = pytest.mark.slow

OUTPUTS = [
    "data/raw/dataset.csv",
    "data/validated/dataset.parquet",
    "data/validated/schema.json",
    "reports/validation.json",
    "data/split/train.parquet",
    "data/split/test.parquet",
    "models/model.joblib",
    "models/pipeline.onnx",
    "metrics/metrics.json",
    "plots/roc.json",
    "plots/precision_recall.json",
    "plots/calibration.json",
    "plots/confusion_matrix.json",
    "plots/feature_importance.json",
    "reports/parity.json",
    "reports/test_predictions.parquet",
    "models/model.onnx",
    "models/metadata.json",
    "models/model_card.md",
    "reports/model_card.json",
]
# Outputs that git tracks (DVC's `cache: false`): a clone has them as committed.
GIT_TRACKED = [
    "reports/validation.json",
    "metrics/metrics.json",
    "plots/roc.json",
    "plots/precision_recall.json",
    "plots/calibration.json",
    "plots/confusion_matrix.json",
    "plots/feature_importance.json",
    "reports/parity.json",
    "reports/test_predictions.parquet",
    "reports/model_card.json",
]


def fresh_clone_stages(project: Project) -> list[str]:
    """The stages `dvc repro` runs in a fresh clone.

    evaluate's outputs (metrics, plots, the parity report, the test predictions) are
    committed to git, so a fresh clone already has them as dvc.lock records them and DVC
    skips the stage. With a CSV file as the source, ingest's output is that file byte
    for byte, which DVC caches while it verifies the `dvc add`ed source, so it checks
    the output out instead of running ingest. Everything else is rebuilt.
    """
    data = load_params(project.path / "params.yaml").data
    copied = data.source == "file" and str(data.path).lower().endswith(".csv")
    skipped = {"evaluate", "ingest"} if copied else {"evaluate"}
    return [stage for stage in STAGES if stage not in skipped]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_fresh_copy_runs_every_stage_and_writes_every_output(reproduced: Project) -> None:
    assert reproduced.last_repro == fresh_clone_stages(reproduced)
    for name in OUTPUTS:
        assert (reproduced.path / name).is_file(), name
    report = json.loads((reproduced.path / "reports/validation.json").read_text())
    assert report["passed"] is True
    assert report["rows"] == reproduced.raw_rows()
    metrics = json.loads((reproduced.path / "metrics/metrics.json").read_text())
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"} <= set(metrics)
    assert metrics["roc_auc"] > 0.95


def test_metadata_versions_are_the_hashes_dvc_records(reproduced: Project) -> None:
    metadata = json.loads((reproduced.path / "models/metadata.json").read_text())
    assert metadata["data"]["version"] == reproduced.lock_md5("data/raw/dataset.csv")
    assert metadata["model"]["version"] == reproduced.lock_md5("models/model.onnx")
    assert metadata["data"]["rows"] == reproduced.raw_rows()
    assert "git" not in metadata, "the commit is no input of the model"
    assert metadata["metrics"] == json.loads((reproduced.path / "metrics/metrics.json").read_text())
    assert metadata["parity"]["max_abs_diff"] <= 1e-5
    schema = reproduced.schema()
    assert [feature["name"] for feature in metadata["features"]] == list(schema.features)
    assert metadata["target"]["classes"] == schema.target.classes


def test_committed_lock_matches_a_fresh_run(reproduced: Project, repo_root: Path) -> None:
    """dvc.lock in the repository is what the committed code, params and data produce,
    on another commit: no output records the commit it was built on."""
    committed: dict[str, Any] = yaml.safe_load((repo_root / "dvc.lock").read_text())
    fresh: dict[str, Any] = yaml.safe_load((reproduced.path / "dvc.lock").read_text())
    assert committed == fresh, "dvc.lock is stale: run `make repro` and commit dvc.lock"
    for name in GIT_TRACKED:
        assert (repo_root / name).read_bytes() == (reproduced.path / name).read_bytes(), name


def test_fresh_clone_repro_leaves_git_status_clean(fresh: Project, tmp_path: Path) -> None:
    """A clone of the committed template, reproduced cold (no DVC cache, no remote data,
    a commit of its own): every output comes out as committed, so git sees no change."""
    clone = Project(tmp_path / "clone", fresh.env)
    fresh.git("clone", "-q", str(fresh.path), str(clone.path))
    assert clone.git("rev-parse", "HEAD") == fresh.git("rev-parse", "HEAD")
    assert clone.repro() == fresh_clone_stages(clone)
    assert clone.git("status", "--porcelain", "--untracked-files=all") == ""


def test_second_repro_runs_no_stage(trained: Project) -> None:
    assert trained.repro() == []
    status = trained.dvc("status").stdout
    assert "Data and pipelines are up to date" in status


def test_changing_a_train_param_reruns_only_train_and_what_follows(trained: Project) -> None:
    before = md5(trained.path / "data/split/train.parquet")
    trained.set_params(
        train={"logistic_regression": {"C": 0.05, "max_iter": 1000, "class_weight": None}}
    )
    card = (trained.path / "models/model_card.md").read_text()
    assert trained.repro() == ["train", "evaluate", "export", "model_card"]
    assert md5(trained.path / "data/split/train.parquet") == before
    new_card = (trained.path / "models/model_card.md").read_text()
    assert new_card != card
    assert "C=0.05" in new_card
    metadata = json.loads((trained.path / "models/metadata.json").read_text())
    assert metadata["params"]["train"]["logistic_regression"]["C"] == 0.05


def test_changing_an_evaluate_param_keeps_the_model(trained: Project) -> None:
    model = md5(trained.path / "models/model.joblib")
    trained.set_params(evaluate={"calibration_bins": 5})
    assert trained.repro() == ["evaluate", "export", "model_card"]
    assert md5(trained.path / "models/model.joblib") == model
    assert len(json.loads((trained.path / "plots/calibration.json").read_text())) <= 5


def test_two_clean_runs_are_byte_identical(reproduced: Project, tmp_path: Path) -> None:
    again = new_project(tmp_path / "again", tmp_path / "remote")
    assert again.repro() == fresh_clone_stages(again)
    assert again.git("rev-parse", "HEAD") != reproduced.git("rev-parse", "HEAD")
    for name in OUTPUTS:
        assert md5(again.path / name) == md5(reproduced.path / name), name
    assert (again.path / "dvc.lock").read_bytes() == (reproduced.path / "dvc.lock").read_bytes()


def test_model_card_has_every_section_with_real_numbers(reproduced: Project) -> None:
    card = (reproduced.path / "models/model_card.md").read_text()
    data = json.loads((reproduced.path / "reports/model_card.json").read_text())
    metadata = json.loads((reproduced.path / "models/metadata.json").read_text())
    for heading in (
        "## Intended use",
        "## Training data",
        "## Metrics",
        "## Metrics by slice",
        "## Fairness",
        "## Feature importance",
        "## Limitations",
    ):
        assert heading in card
    assert data["model_version"] == metadata["model"]["version"]
    assert data["data_version"] == metadata["data"]["version"]
    assert data["metrics"]["accuracy"]["value"] == pytest.approx(
        metadata["metrics"]["accuracy"], abs=1e-4
    )
    assert data["metrics"]["accuracy"]["low"] < data["metrics"]["accuracy"]["high"]
    assert data["train_rows"] + data["test_rows"] == reproduced.raw_rows()
    card_params = load_params(reproduced.path / "params.yaml").model_card
    schema = reproduced.schema()
    # One row per group: numeric slice columns are cut into slice_bins quantile ranges.
    groups = Counter(entry["column"] for entry in data["slices"])
    assert list(groups) == card_params.slices
    for column in card_params.slices:
        if column in schema.numeric_features:
            assert groups[column] == card_params.slice_bins, column
    if card_params.sensitive_attribute is None:
        assert data["fairness"] is None
        assert "No sensitive attribute configured" in card
    else:
        assert data["fairness"]["attribute"] == card_params.sensitive_attribute
    importance = json.loads((reproduced.path / "plots/feature_importance.json").read_text())
    assert data["importance"] == importance
    # The card's lineage is the exported model's, read back from the Markdown.
    stated = read_card(card)
    for fact in ("model", "data"):
        assert stated[fact].items() <= metadata[fact].items(), fact
    assert stated["params"] == metadata["params"]
    assert stated["metrics"] == metadata["metrics"]
