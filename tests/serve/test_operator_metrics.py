"""The series an operator's alerts need from /metrics: readiness, and training's class
mix to hold the predicted class mix against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from tabml.serve.app import ServingApp
from tabml.serve.settings import Settings
from tests.serve.conftest import AsgiClient, ExportedModel, make_client, with_metadata
from tests.serve.test_api import metric


def test_ready_is_zero_until_the_model_is_loaded_and_after_shutdown(
    breast_cancer_model: ExportedModel,
) -> None:
    app = ServingApp(Settings(model_dir=breast_cancer_model.directory))
    with AsgiClient(app, lifespan=False) as unstarted:
        assert metric(unstarted.get("/metrics").body.decode(), "tabml_ready") == 0
    client = make_client(breast_cancer_model)
    with client:
        assert metric(client.get("/metrics").body.decode(), "tabml_ready") == 1
        app = client.app
    assert metric(generate_latest(app.metrics.registry).decode(), "tabml_ready") == 0


def test_ready_stays_zero_when_the_model_fails_to_load(tmp_path: Path) -> None:
    app = ServingApp(Settings(model_dir=tmp_path))
    with AsgiClient(app) as failed:
        assert failed.startup["type"] == "lifespan.startup.failed"
        assert metric(failed.get("/metrics").body.decode(), "tabml_ready") == 0


def test_training_class_ratio_comes_from_the_metadata(
    breast_cancer_model: ExportedModel,
) -> None:
    ratio = breast_cancer_model.metadata["target"]["training_class_ratio"]
    assert set(ratio) == {"benign", "malignant"}
    with make_client(breast_cancer_model) as client:
        text = client.get("/metrics").body.decode()
    for label, share in ratio.items():
        assert metric(text, f'tabml_training_class_ratio{{class="{label}"}}') == share
    assert sum(ratio.values()) == pytest.approx(1.0)


def test_an_older_export_without_the_class_mix_still_serves(
    tmp_path: Path, breast_cancer_model: ExportedModel
) -> None:
    with_metadata(
        breast_cancer_model,
        tmp_path,
        lambda metadata: metadata["target"].pop("training_class_ratio"),
    )
    with AsgiClient(ServingApp(Settings(model_dir=tmp_path))) as client:
        assert client.startup == {"type": "lifespan.startup.complete"}
        text = client.get("/metrics").body.decode()
    assert "tabml_training_class_ratio{" not in text
    assert metric(text, "tabml_ready") == 1


def test_a_class_share_outside_zero_to_one_is_refused(
    tmp_path: Path, breast_cancer_model: ExportedModel
) -> None:
    def out_of_range(metadata: dict[str, Any]) -> None:
        metadata["target"]["training_class_ratio"]["benign"] = 1.5

    with_metadata(breast_cancer_model, tmp_path, out_of_range)
    with AsgiClient(ServingApp(Settings(model_dir=tmp_path))) as failed:
        assert failed.startup["type"] == "lifespan.startup.failed"
        assert "target.training_class_ratio.benign" in failed.startup["message"]
