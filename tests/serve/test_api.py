"""The prediction API in-process: every endpoint, and every class of bad input."""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import generate_latest

import tabml
from tabml.contract import NUMERIC_INPUT
from tabml.serve.app import ServingApp
from tabml.serve.metrics import Metrics
from tabml.serve.model import ModelLoadError, ModelOutputError, OnnxModel
from tabml.serve.prediction_log import FLUSH_SECONDS
from tabml.serve.settings import Settings
from tests.serve.conftest import (
    AsgiClient,
    ExportedModel,
    ManualClockLoop,
    make_client,
    with_metadata,
)

TOLERANCE = 1e-5  # float32 inference against scikit-learn's float64


def problem_fields(reply: Any) -> dict[str, str]:
    body = reply.json()
    assert set(body) == {"error", "details"}
    return {detail["field"]: detail["rule"] for detail in body["details"]}


# --- POST /predict -------------------------------------------------------------------


def test_predict_one_row_matches_scikit_learn(
    client: AsgiClient, breast_cancer_model: ExportedModel
) -> None:
    row = breast_cancer_model.feature_rows(1)[0]
    reply = client.post("/predict", row)
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    labels, probabilities = breast_cancer_model.expected([row])
    assert body["model_name"] == "tabml-classifier"
    assert body["model_version"] == breast_cancer_model.metadata["model"]["version"]
    [prediction] = body["predictions"]
    assert prediction["label"] == labels[0]
    classes = breast_cancer_model.metadata["target"]["classes"]
    assert list(prediction["probabilities"]) == classes
    served = [prediction["probabilities"][name] for name in classes]
    assert np.allclose(served, probabilities[0], atol=TOLERANCE)


def test_predict_batch_matches_scikit_learn_row_by_row(
    client: AsgiClient, breast_cancer_model: ExportedModel
) -> None:
    rows = breast_cancer_model.feature_rows()
    reply = client.post("/predict", rows)
    assert reply.status == 200, reply.body
    predictions = reply.json()["predictions"]
    labels, probabilities = breast_cancer_model.expected(rows)
    assert [item["label"] for item in predictions] == labels
    classes = breast_cancer_model.metadata["target"]["classes"]
    served = np.array([[item["probabilities"][name] for name in classes] for item in predictions])
    assert np.abs(served - probabilities).max() < TOLERANCE


def test_predict_mixed_types_with_allowed_nulls(
    mixed_client: AsgiClient, mixed_model: ExportedModel
) -> None:
    rows = mixed_model.feature_rows()
    assert any(row["size"] is None for row in rows)  # the nullable feature is exercised
    reply = mixed_client.post("/predict", rows[:50])
    assert reply.status == 200, reply.body
    labels, probabilities = mixed_model.expected(rows[:50])
    predictions = reply.json()["predictions"]
    assert [item["label"] for item in predictions] == labels
    served = np.array(
        [[item["probabilities"][name] for name in ("no", "yes")] for item in predictions]
    )
    assert np.abs(served - probabilities).max() < TOLERANCE


def test_predict_accepts_whole_floats_for_int_features(mixed_client: AsgiClient) -> None:
    reply = mixed_client.post("/predict", {"size": 10, "count": 3.0, "colour": "red"})
    assert reply.status == 200, reply.body


def test_predict_accepts_content_type_parameters(
    client: AsgiClient, breast_cancer_model: ExportedModel
) -> None:
    body = json.dumps(breast_cancer_model.feature_rows(1)[0]).encode()
    reply = client.request("POST", "/predict", body, content_type="application/json; charset=utf-8")
    assert reply.status == 200, reply.body


def test_predict_reads_a_body_sent_in_chunks(
    client: AsgiClient, breast_cancer_model: ExportedModel
) -> None:
    body = json.dumps(breast_cancer_model.feature_rows(3)).encode()
    reply = client.request("POST", "/predict", chunks=[body[:10], body[10:100], body[100:]])
    assert reply.status == 200, reply.body
    assert len(reply.json()["predictions"]) == 3


# --- bad input: each gets a 4xx naming the field and the rule --------------------------

VALID = {"size": 12.5, "count": 3, "colour": "red"}


@pytest.mark.parametrize(
    ("body", "status", "field", "rule"),
    [
        pytest.param(b'{"size": 1,', 400, "body", "must be valid JSON", id="truncated-json"),
        pytest.param(b"", 400, "body", "must be valid JSON", id="empty-body"),
        pytest.param(b"\xff\xfe{}", 400, "body", "must be valid JSON", id="not-utf8"),
        pytest.param(b"[" * 4000, 400, "body", "must be valid JSON", id="nested-too-deep"),
        pytest.param(b"42", 422, "body", "must be a JSON object", id="number-body"),
        pytest.param(b"[]", 422, "body", "at least one row", id="empty-batch"),
        pytest.param(
            b'[{"size": 1, "count": 1, "colour": "red"}, 7]',
            422,
            "[1]",
            "must be an object",
            id="row-not-object",
        ),
        pytest.param(
            b'{"count": 3, "colour": "red"}',
            422,
            "size",
            "required feature is missing",
            id="missing-feature",
        ),
        pytest.param(
            b'{"size": 1, "count": 3, "colour": "red", "weight": 2}',
            422,
            "weight",
            "not a feature of this model",
            id="extra-feature",
        ),
        pytest.param(
            b'[{"size": 1, "count": 3, "colour": "red"}, {"size": 1, "count": 3}]',
            422,
            "[1].colour",
            "required feature is missing",
            id="missing-in-batch",
        ),
        pytest.param(
            b'{"size": "12", "count": 3, "colour": "red"}',
            422,
            "size",
            "must be a number (float), not a string",
            id="string-for-float",
        ),
        pytest.param(
            b'{"size": true, "count": 3, "colour": "red"}',
            422,
            "size",
            "not a boolean",
            id="bool-for-float",
        ),
        pytest.param(
            b'{"size": [1], "count": 3, "colour": "red"}',
            422,
            "size",
            "not an array",
            id="array-for-float",
        ),
        pytest.param(
            b'{"size": 1, "count": 2.5, "colour": "red"}',
            422,
            "count",
            "must be a whole number",
            id="fraction-for-int",
        ),
        pytest.param(
            b'{"size": 1, "count": null, "colour": "red"}',
            422,
            "count",
            "not null",
            id="null-not-allowed",
        ),
        pytest.param(
            b'{"size": 1, "count": 3, "colour": "purple"}',
            422,
            "colour",
            "must be one of ['blue', 'green', 'red']",
            id="unknown-category",
        ),
        pytest.param(
            b'{"size": 1, "count": 3, "colour": 1}',
            422,
            "colour",
            "must be one of",
            id="number-for-category",
        ),
        pytest.param(
            b'{"size": NaN, "count": 3, "colour": "red"}',
            422,
            "size",
            "must be a finite number",
            id="nan",
        ),
        pytest.param(
            b'{"size": Infinity, "count": 3, "colour": "red"}',
            422,
            "size",
            "must be a finite number",
            id="infinity",
        ),
        pytest.param(
            b'{"size": 1, "count": -Infinity, "colour": "red"}',
            422,
            "count",
            "must be a finite number",
            id="minus-infinity",
        ),
        pytest.param(
            b'{"size": 1e400, "count": 3, "colour": "red"}',
            422,
            "size",
            "must be a finite number",
            id="overflows-float64",
        ),
        pytest.param(
            b'{"size": 1e39, "count": 3, "colour": "red"}',
            422,
            "size",
            "float32 range",
            id="overflows-float32",
        ),
        pytest.param(
            b'{"size": 1, "count": ' + b"9" * 400 + b', "colour": "red"}',
            422,
            "count",
            "must be a finite number",
            id="huge-integer",
        ),
    ],
)
def test_bad_input_gets_a_4xx_naming_field_and_rule(
    mixed_client: AsgiClient, body: bytes, status: int, field: str, rule: str
) -> None:
    reply = mixed_client.request("POST", "/predict", body)
    assert reply.status == status, reply.body
    problems = problem_fields(reply)
    assert field in problems, problems
    assert rule in problems[field]
    assert field in reply.json()["error"]


def test_every_problem_in_a_batch_is_reported_with_its_row(mixed_client: AsgiClient) -> None:
    rows = [dict(VALID), {**VALID, "size": "x"}, dict(VALID), {**VALID, "colour": "pink"}]
    reply = mixed_client.post("/predict", rows)
    assert reply.status == 422
    assert set(problem_fields(reply)) == {"[1].size", "[3].colour"}
    assert reply.json()["details"][0]["value"] == '"x"'


def test_problem_list_is_capped(mixed_client: AsgiClient) -> None:
    rows = [{**VALID, "size": "x"} for _ in range(40)]
    reply = mixed_client.post("/predict", rows)
    assert reply.status == 422
    assert len(reply.json()["details"]) == 20
    assert "and 20 more problems" in reply.json()["error"]


def test_batch_over_the_row_limit(mixed_client: AsgiClient) -> None:
    reply = mixed_client.post("/predict", [VALID] * 51)
    assert reply.status == 422
    assert "at most 50 rows (TABML_MAX_BATCH_ROWS)" in problem_fields(reply)["body"]
    assert mixed_client.post("/predict", [VALID] * 50).status == 200


def test_body_over_the_size_limit_by_content_length(mixed_client: AsgiClient) -> None:
    body = json.dumps([VALID] * 50).encode() + b" " * 4096
    reply = mixed_client.request("POST", "/predict", body)
    assert reply.status == 413
    assert "content-length" in reply.json()["error"]
    assert "TABML_MAX_BODY_BYTES" in reply.json()["error"]


def test_body_over_the_size_limit_when_streamed(mixed_client: AsgiClient) -> None:
    # No content-length (chunked transfer): the limit holds while reading.
    reply = mixed_client.request("POST", "/predict", chunks=[b"[" + b" " * 3000] * 3)
    assert reply.status == 413
    assert "more than 4096 bytes" in reply.json()["error"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type(mixed_client: AsgiClient, content_type: str | None) -> None:
    reply = mixed_client.request(
        "POST", "/predict", json.dumps(VALID).encode(), content_type=content_type
    )
    assert reply.status == 415
    assert "application/json" in reply.json()["error"]


def test_wrong_method_and_unknown_path(client: AsgiClient) -> None:
    reply = client.get("/predict")
    assert reply.status == 405
    assert reply.headers["allow"] == "POST"
    assert client.request("POST", "/health").status == 405
    reply = client.get("/nowhere")
    assert reply.status == 404
    assert "/nowhere" in reply.json()["error"]


# --- health, readiness, metadata, metrics, OpenAPI ---------------------------------------


def test_health_and_ready(client: AsgiClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ok"}


def test_not_ready_before_startup(breast_cancer_model: ExportedModel) -> None:
    app = ServingApp(Settings(model_dir=breast_cancer_model.directory))
    with AsgiClient(app, lifespan=False) as unstarted:
        assert unstarted.get("/health").status == 200
        for path in ("/ready", "/v2/health/ready", "/metadata"):
            reply = unstarted.get(path)
            assert reply.status == 503
            assert reply.json() == {"error": "the model is not loaded yet"}
        assert unstarted.post("/predict", {}).status == 503


def test_startup_freezes_what_it_loaded_out_of_the_collectors_passes(
    breast_cancer_model: ExportedModel,
) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with make_client(breast_cancer_model) as client:
        assert client.startup["type"] == "lifespan.startup.complete"
        assert gc.get_freeze_count() > 0


def test_the_model_is_not_loaded_at_import_or_construction(tmp_path: Any) -> None:
    app = ServingApp(Settings(model_dir=tmp_path / "absent"))
    assert app.model is None


def test_startup_fails_with_the_reason_when_the_model_is_missing(tmp_path: Any) -> None:
    with AsgiClient(ServingApp(Settings(model_dir=tmp_path))) as failed:
        assert failed.startup["type"] == "lifespan.startup.failed"
        assert "metadata.json" in failed.startup["message"]


def test_startup_fails_when_metadata_and_graph_disagree(
    tmp_path: Any, breast_cancer_model: ExportedModel
) -> None:
    def rename(metadata: dict[str, Any]) -> None:
        metadata["features"][0]["name"] = "renamed"

    with_metadata(breast_cancer_model, tmp_path, rename)
    with AsgiClient(ServingApp(Settings(model_dir=tmp_path))) as failed:
        assert failed.startup["type"] == "lifespan.startup.failed"
        message = failed.startup["message"]
        assert "the columns of graph input 'numeric_features' are ['mean_radius'" in message
        assert "metadata.json lists the numeric features ['renamed'" in message


def test_loading_refuses_a_graph_with_other_probability_columns_than_classes(
    tmp_path: Any, breast_cancer_model: ExportedModel
) -> None:
    with_metadata(breast_cancer_model, tmp_path, lambda m: m["target"]["classes"].append("x"))
    with pytest.raises(ModelLoadError) as refused:
        OnnxModel.load(tmp_path / "model.onnx", tmp_path / "metadata.json")
    assert str(refused.value) == (
        f"{tmp_path / 'model.onnx'}: 'probabilities' has 2 columns but "
        "metadata.json lists 3 classes"
    )


def test_loading_refuses_a_class_listed_twice(
    tmp_path: Any, breast_cancer_model: ExportedModel
) -> None:
    first = breast_cancer_model.metadata["target"]["classes"][0]

    def repeat_first(metadata: dict[str, Any]) -> None:
        metadata["target"]["classes"][1] = first

    with_metadata(breast_cancer_model, tmp_path, repeat_first)
    with pytest.raises(ModelLoadError) as refused:
        OnnxModel.load(tmp_path / "model.onnx", tmp_path / "metadata.json")
    assert str(refused.value) == (
        f"{tmp_path / 'metadata.json'}: target.classes: Value error, each class must be "
        f"listed once; [{first!r}] are listed twice or more"
    )


def test_a_prediction_of_other_probability_columns_than_classes_is_an_error(
    breast_cancer_model: ExportedModel,
) -> None:
    """A graph whose probability width is symbolic passes the load's check; its answers
    are checked instead."""
    directory = breast_cancer_model.directory
    model = OnnxModel.load(directory / "model.onnx", directory / "metadata.json")
    feed = model.session.run

    class ThreeColumns:
        def run(self, names: list[str], inputs: dict[str, Any]) -> list[Any]:
            labels, probabilities = feed(names, inputs)
            return [labels, np.hstack([probabilities, probabilities[:, :1]])]

    model.session = ThreeColumns()  # type: ignore[assignment]
    row = np.zeros((1, len(model.features)), dtype=np.float32)
    with pytest.raises(ModelOutputError) as refused:
        model.predict({NUMERIC_INPUT: row})
    assert str(refused.value) == (
        "'probabilities' has shape [1, 3], but metadata.json lists 2 classes: "
        "[rows, classes] was expected"
    )


def test_metadata(client: AsgiClient, breast_cancer_model: ExportedModel) -> None:
    body = client.get("/metadata").json()
    assert body["model"]["version"] == breast_cancer_model.metadata["model"]["version"]
    assert body["data"]["version"] == "test-data-version"
    assert body["params"]["train"]["estimator"] == "logistic_regression"
    assert "accuracy" in body["metrics"]
    assert [item["name"] for item in body["features"]] == list(breast_cancer_model.schema.features)


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in metrics")


def test_metrics_count_requests_latency_and_classes(
    client: AsgiClient, breast_cancer_model: ExportedModel
) -> None:
    rows = breast_cancer_model.feature_rows(10)
    labels, _ = breast_cancer_model.expected(rows)
    client.post("/predict", rows)
    client.post("/predict", rows[0])
    client.post("/predict", {})
    reply = client.get("/metrics")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain")
    text = reply.body.decode()
    ok = 'tabml_http_requests_total{endpoint="/predict",method="POST",status="200"}'
    assert metric(text, ok) == 2
    bad = 'tabml_http_requests_total{endpoint="/predict",method="POST",status="422"}'
    assert metric(text, bad) == 1
    hist = 'tabml_http_request_duration_seconds_count{endpoint="/predict",status="200"}'
    assert metric(text, hist) == 2
    for name in set(labels):
        expected = labels.count(name) + (labels[0] == name)
        assert metric(text, f'tabml_predicted_class_total{{class="{name}"}}') == expected
    assert metric(text, "tabml_prediction_batch_rows_count") == 2
    version = breast_cancer_model.metadata["model"]["version"]
    assert f'version="{version}"' in text


@pytest.mark.parametrize("classes", [2, 3, 5])
def test_predicted_classes_are_counted_whatever_the_batches_hold(classes: int) -> None:
    # Batches are counted class by class while few classes have been seen, else by a
    # Counter; a class first seen in a later batch, or in one row, counts all the same.
    names = [f"class {index}" for index in range(classes)]
    batches = [
        names[:1] * 3,
        names[:2] + names[:1],
        names[-1:],
        [names[index % classes] for index in range(17)],
        list(reversed(names)) * 2,
    ]
    metrics = Metrics()
    for batch in batches:
        metrics.observe_predictions(batch)
    text = generate_latest(metrics.registry).decode()
    everything = [label for batch in batches for label in batch]
    for name in names:
        counted = metric(text, f'tabml_predicted_class_total{{class="{name}"}}')
        assert counted == everything.count(name)
    assert metric(text, "tabml_prediction_batch_rows_sum") == len(everything)


def test_latency_histogram_buckets_are_cumulative_and_inclusive() -> None:
    metrics = Metrics()
    for seconds in (0.0005, 0.0007, 0.003, 7.0):  # on a bound, between bounds, past the last
        metrics.observe_request("/predict", "POST", 200, seconds)
    metrics.observe_request("/predict", "GET", 405, 0.0001)
    text = generate_latest(metrics.registry).decode()
    series = 'tabml_http_request_duration_seconds_{}{{endpoint="/predict",{}status="200"}}'
    assert metric(text, series.format("bucket", 'le="0.0005",')) == 1
    assert metric(text, series.format("bucket", 'le="0.001",')) == 2
    assert metric(text, series.format("bucket", 'le="0.005",')) == 3
    assert metric(text, series.format("bucket", 'le="5.0",')) == 3
    assert metric(text, series.format("bucket", 'le="+Inf",')) == 4
    assert metric(text, series.format("count", "")) == 4
    assert metric(text, series.format("sum", "")) == pytest.approx(7.0042)
    get = 'tabml_http_requests_total{endpoint="/predict",method="GET",status="405"}'
    assert metric(text, get) == 1


def test_unknown_paths_share_one_metric_label(client: AsgiClient) -> None:
    for index in range(3):
        client.get(f"/scan/{index}")
    text = client.get("/metrics").body.decode()
    assert (
        metric(text, 'tabml_http_requests_total{endpoint="unmatched",method="GET",status="404"}')
        == 3
    )
    assert "/scan/" not in text


def test_openapi_names_every_feature_its_type_and_range(mixed_client: AsgiClient) -> None:
    document = mixed_client.get("/openapi.json").json()
    row = document["components"]["schemas"]["Row"]
    assert row["additionalProperties"] is False
    assert sorted(row["required"]) == ["colour", "count", "size"]
    properties = row["properties"]
    # The schema ranges (MIXED_SCHEMA), which the server holds requests to by default.
    assert {"type": "number", "minimum": 0.0, "maximum": 100.0} in properties["size"]["anyOf"]
    assert {"type": "null"} in properties["size"]["anyOf"]  # nullable float
    assert "min 0.0, max 100.0 (a value outside is refused)" in properties["size"]["description"]
    assert properties["count"]["type"] == "integer"
    assert (properties["count"]["minimum"], properties["count"]["maximum"]) == (0, 50)
    assert properties["colour"]["enum"] == ["red", "green", "blue"]
    request = document["components"]["schemas"]["PredictRequest"]["oneOf"]
    assert request[1]["maxItems"] == 50
    prediction = document["components"]["schemas"]["Prediction"]
    assert prediction["properties"]["label"]["enum"] == ["no", "yes"]
    for path in (
        "/predict",
        "/health",
        "/ready",
        "/metadata",
        "/metrics",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
    ):
        assert path in document["paths"]


# --- Open Inference Protocol (KServe V2) -----------------------------------------------


def v2_request(rows: list[dict[str, Any]], model: ExportedModel, **extra: Any) -> dict[str, Any]:
    inputs = []
    for name in model.schema.features:
        numeric = name in model.schema.numeric_features
        inputs.append(
            {
                "name": name,
                "shape": [len(rows), 1],
                "datatype": "FP32" if numeric else "BYTES",
                "data": [row[name] for row in rows],
            }
        )
    return {"inputs": inputs, **extra}


def test_v2_health_and_server_metadata(client: AsgiClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    server = client.get("/v2").json()
    assert server == {"name": tabml.DISTRIBUTION, "version": tabml.__version__, "extensions": []}


def test_v2_model_metadata_and_readiness(
    client: AsgiClient, breast_cancer_model: ExportedModel
) -> None:
    version = breast_cancer_model.metadata["model"]["version"]
    for path in ("/v2/models/tabml-classifier", f"/v2/models/tabml-classifier/versions/{version}"):
        body = client.get(path).json()
        assert body["name"] == "tabml-classifier"
        assert body["versions"] == [version]
        assert [item["name"] for item in body["inputs"]] == list(
            breast_cancer_model.schema.features
        )
        assert body["outputs"][1] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}
        assert client.get(f"{path}/ready").json() == {"name": "tabml-classifier", "ready": True}


def test_v2_infer_matches_scikit_learn(
    client: AsgiClient, breast_cancer_model: ExportedModel
) -> None:
    rows = breast_cancer_model.feature_rows(25)
    reply = client.post(
        "/v2/models/tabml-classifier/infer", v2_request(rows, breast_cancer_model, id="request-7")
    )
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["id"] == "request-7"
    assert body["model_version"] == breast_cancer_model.metadata["model"]["version"]
    labels, probabilities = breast_cancer_model.expected(rows)
    label, proba = body["outputs"]
    assert label == {"name": "label", "datatype": "BYTES", "shape": [25], "data": labels}
    assert proba["shape"] == [25, 2]
    assert np.abs(np.array(proba["data"]).reshape(25, 2) - probabilities).max() < TOLERANCE


def test_v2_infer_mixed_types_nested_data_and_output_choice(
    mixed_client: AsgiClient, mixed_model: ExportedModel
) -> None:
    rows = [row for row in mixed_model.feature_rows(20) if row["size"] is not None][:5]
    request = v2_request(rows, mixed_model, outputs=[{"name": "label"}])
    request["inputs"][1]["datatype"] = "INT64"
    request["inputs"][0]["data"] = [[value] for value in request["inputs"][0]["data"]]
    reply = mixed_client.post("/v2/models/tabml-classifier/infer", request)
    assert reply.status == 200, reply.body
    [label] = reply.json()["outputs"]
    assert label["data"] == mixed_model.expected(rows)[0]


@pytest.mark.parametrize("nullable_size", [False, True], ids=["fast-path", "checked-path"])
def test_v2_infer_takes_the_inputs_in_any_order(
    mixed_client: AsgiClient, mixed_model: ExportedModel, nullable_size: bool
) -> None:
    """The graph takes the numeric columns in metadata order, whatever order the request
    lists its tensors in; a null sends the numbers through the value-by-value checks."""
    rows = [row for row in mixed_model.feature_rows(40) if row["size"] is not None][:6]
    if nullable_size:
        rows[2]["size"] = None
    request = v2_request(rows, mixed_model)
    request["inputs"].reverse()
    reply = mixed_client.post("/v2/models/tabml-classifier/infer", request)
    assert reply.status == 200, reply.body
    labels, probabilities = mixed_model.expected(rows)
    label, proba = reply.json()["outputs"]
    assert label["data"] == labels
    assert np.abs(np.array(proba["data"]).reshape(6, 2) - probabilities).max() < TOLERANCE


def _drop_input(request: dict[str, Any]) -> None:
    request["inputs"].pop(0)


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (_drop_input, "inputs[name=size]", "required input is missing"),
        (
            lambda r: r["inputs"].append(dict(r["inputs"][0])),
            "inputs[3].name",
            "feature given twice",
        ),
        (
            lambda r: r["inputs"][0].update(name="weight"),
            "inputs[0].name",
            "not a feature of this model",
        ),
        (
            lambda r: r["inputs"][0].update(name=["size"]),
            "inputs[0].name",
            "not a feature of this model",
        ),
        (
            lambda r: r["inputs"][0].update(name={"size": 1}),
            "inputs[0].name",
            "not a feature of this model",
        ),
        (lambda r: r["inputs"][0].update(datatype="BYTES"), "inputs[0].datatype", "is numeric"),
        (
            lambda r: r["inputs"][2].update(datatype="FP32"),
            "inputs[2].datatype",
            "is categorical: use BYTES",
        ),
        (lambda r: r["inputs"][1].update(shape=[3, 1]), "inputs[1].shape", "the first input has"),
        (
            lambda r: r["inputs"][1].update(shape=[2, 2]),
            "inputs[1].shape",
            "must be [rows] or [rows, 1]",
        ),
        (lambda r: r["inputs"][0].update(data=[1.0]), "inputs[0].data", "holds 1 values"),
        (
            lambda r: r["inputs"][0]["data"].__setitem__(1, "x"),
            "inputs[0].data[1]",
            "must be a number",
        ),
        (
            lambda r: r["inputs"][1].update(datatype="INT32", data=[1, 2.5]),
            "inputs[1].data[1]",
            "whole number",
        ),
        (
            lambda r: r["inputs"][2]["data"].__setitem__(0, "pink"),
            "inputs[2].data[0]",
            "must be one of",
        ),
        (lambda r: r["inputs"][0].pop("datatype"), "inputs[0].datatype", "is required"),
        (lambda r: r.update(outputs=[{"name": "scores"}]), "outputs[0]", "must be an object"),
        (lambda r: r.update(inputs={}), "inputs", "must be an array"),
        (lambda r: r.update(id=5), "id", "must be a string"),
        (lambda r: r.update(extra=True), "extra", "not a field of an inference request"),
        (
            lambda r: [item.update(shape=[0], data=[]) for item in r["inputs"]],
            "inputs[0].shape",
            "at least one row",
        ),
        (
            lambda r: [
                item.update(shape=[51], data=item["data"] * 25 + [item["data"][0]])
                for item in r["inputs"]
            ],
            "inputs[0].shape",
            "at most 50 rows",
        ),
    ],
)
def test_v2_bad_infer_requests_get_400(
    mixed_client: AsgiClient, mixed_model: ExportedModel, change: Any, field: str, rule: str
) -> None:
    rows = [{"size": 1.0, "count": 2, "colour": "red"}, {"size": 3.0, "count": 4, "colour": "blue"}]
    request = v2_request(rows, mixed_model)
    change(request)
    reply = mixed_client.post("/v2/models/tabml-classifier/infer", request)
    assert reply.status == 400, reply.body
    problems = problem_fields(reply)
    assert field in problems, problems
    assert rule in problems[field]


def test_v2_unknown_model_or_version_is_404(
    client: AsgiClient, breast_cancer_model: ExportedModel
) -> None:
    for path in (
        "/v2/models/other",
        "/v2/models/other/ready",
        "/v2/models/tabml-classifier/versions/0/ready",
    ):
        reply = client.get(path)
        assert reply.status == 404
        assert "not found" in reply.json()["error"]
    reply = client.post(
        "/v2/models/other/infer",
        v2_request(breast_cancer_model.feature_rows(1), breast_cancer_model),
    )
    assert reply.status == 404


def test_v2_infer_wrong_content_type(client: AsgiClient) -> None:
    reply = client.request(
        "POST", "/v2/models/tabml-classifier/infer", b"{}", content_type="text/plain"
    )
    assert reply.status == 415


def test_apps_keep_separate_metrics(breast_cancer_model: ExportedModel) -> None:
    with make_client(breast_cancer_model) as first, make_client(breast_cancer_model) as second:
        first.get("/health")
        text = second.get("/metrics").body.decode()
        assert 'endpoint="/health"' not in text


def test_rows_whose_probabilities_overflow_get_a_4xx_naming_the_row(
    breast_cancer_model: ExportedModel,
) -> None:
    """Accepted values far outside the schema ranges can overflow a linear model."""
    rows = breast_cancer_model.feature_rows(2)
    rows[1] = dict.fromkeys(rows[1], 3.0e38)
    with make_client(breast_cancer_model, out_of_range="count") as client:
        reply = client.post("/predict", rows)
        assert reply.status == 422, reply.body
        problems = problem_fields(reply)
        assert list(problems) == ["[1]"]
        assert "probabilities are not finite" in problems["[1]"]
        assert "mean_radius" in problems["[1]"]  # outside its schema range
        request = v2_request(rows, breast_cancer_model)
        reply = client.post("/v2/models/tabml-classifier/infer", request)
        assert reply.status == 400
        assert "inputs[*].data[1]" in problem_fields(reply)


@pytest.mark.parametrize("value", [3.402823466385289e38, -3.4028236e38])
@pytest.mark.parametrize("policy", ["reject", "count"])
def test_values_just_past_the_float32_maximum_are_refused(
    mixed_model: ExportedModel, value: float, policy: str
) -> None:
    # They would round to the float32 maximum; the type's bound is the exact maximum.
    with make_client(mixed_model, out_of_range=policy) as client:
        reply = client.post("/predict", {**VALID, "size": value})
        assert reply.status == 422
        assert "float32 range" in problem_fields(reply)["size"]
        exact = client.post("/predict", {**VALID, "size": 3.4028234663852886e38})
        assert exact.status == (200 if policy == "count" else 422)


# --- values outside the schema's range ---------------------------------------------------
# MIXED_SCHEMA: size (float, nullable) within [0, 100], count (int) within [0, 50].

OUT_OF_RANGE = 'tabml_out_of_range_values_total{{feature="{}"}}'


def v2_mixed(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "size",
                "shape": [len(rows)],
                "datatype": "FP64",
                "data": [r["size"] for r in rows],
            },
            {
                "name": "count",
                "shape": [len(rows)],
                "datatype": "INT64",
                "data": [r["count"] for r in rows],
            },
            {
                "name": "colour",
                "shape": [len(rows)],
                "datatype": "BYTES",
                "data": [r["colour"] for r in rows],
            },
        ]
    }


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        pytest.param({**VALID, "size": -5}, "size", "-5", id="below-one-row"),
        pytest.param({**VALID, "size": 1e30}, "size", "1e+30", id="far-above-one-row"),
        pytest.param({**VALID, "count": 51}, "count", "51", id="int-above-one-row"),
        pytest.param([VALID, {**VALID, "size": 100.5}], "[1].size", "100.5", id="batch"),
        pytest.param(
            [{**VALID, "size": None}, {**VALID, "count": -1}], "[1].count", "-1", id="with-a-null"
        ),
    ],
)
def test_values_outside_the_schema_range_get_a_422_naming_field_value_and_range(
    mixed_client: AsgiClient, body: Any, field: str, value: str
) -> None:
    reply = mixed_client.post("/predict", body)
    assert reply.status == 422, reply.body
    [detail] = reply.json()["details"]
    assert detail["field"] == field
    assert detail["value"] == value
    low, high = ("0.0", "100.0") if field.endswith("size") else ("0.0", "50.0")
    assert detail["rule"] == (
        f"must be within [{low}, {high}], the feature's range in the model's data schema"
    )
    assert f"{field} = {value}: must be within [{low}, {high}]" in reply.json()["error"]


def test_the_bounds_themselves_are_in_range(mixed_client: AsgiClient) -> None:
    rows = [{**VALID, "size": 0.0, "count": 50}, {**VALID, "size": 100, "count": 0}]
    assert mixed_client.post("/predict", rows).status == 200
    assert mixed_client.post("/predict", rows[0]).status == 200
    assert mixed_client.post("/v2/models/tabml-classifier/infer", v2_mixed(rows)).status == 200


def test_v2_values_outside_the_schema_range_get_400(mixed_client: AsgiClient) -> None:
    rows = [dict(VALID), {**VALID, "size": -0.5, "count": 60}]
    reply = mixed_client.post("/v2/models/tabml-classifier/infer", v2_mixed(rows))
    assert reply.status == 400, reply.body
    problems = problem_fields(reply)
    assert problems == {
        "inputs[0].data[1]": "must be within [0.0, 100.0], the feature's range in the model's "
        "data schema",
        "inputs[1].data[1]": "must be within [0.0, 50.0], the feature's range in the model's "
        "data schema",
    }


def test_refused_out_of_range_values_are_counted_per_feature(mixed_client: AsgiClient) -> None:
    text = mixed_client.get("/metrics").body.decode()
    # Every feature with a range has a series from the start; categories have none.
    assert metric(text, OUT_OF_RANGE.format("size")) == 0
    assert metric(text, OUT_OF_RANGE.format("count")) == 0
    assert 'feature="colour"' not in text
    mixed_client.post("/predict", {**VALID, "size": -5})
    mixed_client.post("/predict", [{**VALID, "size": 1e30, "count": 99}, {**VALID, "size": 101}])
    mixed_client.post("/v2/models/tabml-classifier/infer", v2_mixed([{**VALID, "count": 51}]))
    mixed_client.post("/predict", {**VALID, "size": "x"})  # another problem: not counted
    text = mixed_client.get("/metrics").body.decode()
    assert metric(text, OUT_OF_RANGE.format("size")) == 3
    assert metric(text, OUT_OF_RANGE.format("count")) == 2


def test_the_count_policy_accepts_counts_and_logs_out_of_range_values(
    mixed_model: ExportedModel, tmp_path: Path
) -> None:
    path = tmp_path / "predictions.jsonl"
    outside = [
        {**VALID, "size": -5.0},
        {**VALID, "size": 1e30, "count": 99},
        {**VALID, "size": None, "count": 51},
    ]
    with make_client(
        mixed_model, out_of_range="count", prediction_log=path, prediction_log_sample_rate=1.0
    ) as client:
        for body in (VALID, outside[0]):  # one row each: the plain path and the checked one
            reply = client.post("/predict", body)
            assert reply.status == 200, reply.body
        reply = client.post("/predict", [VALID, *outside[1:]])
        assert reply.status == 200, reply.body
        labels = [item["label"] for item in reply.json()["predictions"]]
        with make_client(mixed_model) as rejecting:  # in range, the same predictions
            assert labels[0] == rejecting.post("/predict", VALID).json()["predictions"][0]["label"]
        reply = client.post("/v2/models/tabml-classifier/infer", v2_mixed(outside[:2]))
        assert reply.status == 200, reply.body
        text = client.get("/metrics").body.decode()
        document = client.get("/openapi.json").json()
    assert metric(text, OUT_OF_RANGE.format("size")) == 4
    assert metric(text, OUT_OF_RANGE.format("count")) == 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line.get("out_of_range") for line in lines] == [
        None,
        ["size"],
        None,
        ["size", "count"],
        ["count"],
        ["size"],
        ["size", "count"],
    ]
    assert lines[1]["features"]["size"] == -5.0
    # The document bounds numbers by float32 only, and still gives each range.
    size = document["components"]["schemas"]["Row"]["properties"]["size"]
    assert {
        "type": "number",
        "minimum": -3.4028234663852886e38,
        "maximum": 3.4028234663852886e38,
    } in size["anyOf"]
    assert "min 0.0, max 100.0 (a value outside is accepted and counted" in size["description"]


def test_prediction_log_records_sampled_rows(mixed_model: ExportedModel, tmp_path: Any) -> None:
    path = tmp_path / "logs" / "predictions.jsonl"
    rows = [
        {"size": 12.5, "count": 3, "colour": "red"},
        {"size": None, "count": 4, "colour": "blue"},
    ]
    with make_client(mixed_model, prediction_log=path, prediction_log_sample_rate=1.0) as client:
        predictions = client.post("/predict", rows).json()["predictions"]
        assert client.post("/predict", {"size": "x", "count": 1, "colour": "red"}).status == 422
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["features"] for line in lines] == [
        {"size": 12.5, "count": 3.0, "colour": "red"},
        {"size": None, "count": 4.0, "colour": "blue"},
    ]
    assert [line["prediction"]["label"] for line in lines] == [p["label"] for p in predictions]
    assert {line["model_version"] for line in lines} == {mixed_model.metadata["model"]["version"]}


def test_prediction_log_lines_arrive_within_a_second_without_more_traffic(
    mixed_model: ExportedModel, tmp_path: Any
) -> None:
    """Lines are built in bulk; the server's once-a-second flush writes them even when
    no request follows, and /metrics counts them. The loop's clock is the test's: the
    flush runs when the test moves it on a second, however slow the machine."""
    path = tmp_path / "predictions.jsonl"
    clock = ManualClockLoop()
    with make_client(
        mixed_model, loop=clock, prediction_log=path, prediction_log_sample_rate=1.0
    ) as client:
        assert client.post("/predict", [VALID] * 3).status == 200
        clock.advance(FLUSH_SECONDS * 0.9)
        assert path.read_bytes() == b""
        assert b"tabml_prediction_log_pending_rows 3.0" in client.get("/metrics").body
        clock.advance(FLUSH_SECONDS * 0.2)
        assert len(path.read_bytes().splitlines()) == 3
        metrics = client.get("/metrics").body
        assert b'tabml_prediction_log_rows_total{outcome="written"} 3.0' in metrics
        assert b'tabml_prediction_log_rows_total{outcome="dropped"} 0.0' in metrics
    with make_client(mixed_model) as client:
        assert b"tabml_prediction_log" not in client.get("/metrics").body


def test_prediction_log_off_by_default_and_sampled_out(
    mixed_model: ExportedModel, tmp_path: Any
) -> None:
    path = tmp_path / "predictions.jsonl"
    with make_client(mixed_model, prediction_log=path, prediction_log_sample_rate=0.0) as client:
        assert client.post("/predict", [VALID] * 5).status == 200
    assert path.read_text() == ""
    with make_client(mixed_model) as client:
        assert client.app.prediction_log is None


def test_prediction_log_that_cannot_be_opened_stops_startup(
    mixed_model: ExportedModel, tmp_path: Any
) -> None:
    (tmp_path / "file").write_text("")
    with make_client(mixed_model, prediction_log=tmp_path / "file" / "log.jsonl") as failed:
        assert failed.startup["type"] == "lifespan.startup.failed"
        assert "TABML_PREDICTION_LOG" in failed.startup["message"]


def test_model_card_is_served_when_the_model_ships_one(
    breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    with make_client(breast_cancer_model) as without:
        reply = without.get("/model-card")
        assert reply.status == 404
        assert "model_card.md was not shipped with the model" in reply.json()["error"]
    shipped = tmp_path / "model"
    shutil.copytree(breast_cancer_model.directory, shipped)
    (shipped / "model_card.md").write_text("# Model card: test\n")
    with AsgiClient(ServingApp(Settings(model_dir=shipped))) as client:
        reply = client.get("/model-card")
        assert reply.status == 200
        assert reply.headers["content-type"] == "text/markdown; charset=utf-8"
        assert reply.body == b"# Model card: test\n"
        assert "/model-card" in client.get("/openapi.json").json()["paths"]
