"""The OpenAPI document, built from the feature schema in metadata.json.

The request body's `Row` is a pydantic model with every feature named with its type and
range, so the document says what `decode.RowDecoder` accepts; the decoder is
hand-written because validating a 1,000-row batch row by row through pydantic costs
more than the inference, and the tests fuzz the server against this document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from tabml.contract import OutOfRange
from tabml.serve.model import FeatureSpec, OnnxModel
from tabml.serve.numbers import FLOAT32_MAX, bounds, int_bounds
from tabml.serve.problems import show


def _field_name(index: int) -> str:
    # Feature names need not be Python identifiers; the JSON name is the alias.
    return f"feature_{index}"


def _feature_type(feature: FeatureSpec, out_of_range: OutOfRange) -> Any:
    if feature.dtype == "category":
        base: Any = Literal[tuple(feature.allowed or ())]
    else:
        # The model takes float32: larger magnitudes would reach it as infinity. Under
        # the "reject" policy the schema range is the bound; under "count", only float32's.
        lower, upper = bounds(feature) if out_of_range == "reject" else (-FLOAT32_MAX, FLOAT32_MAX)
        if feature.dtype == "int":
            lower, upper = int_bounds(lower, upper)
            base = Annotated[int, Field(ge=lower, le=upper)]
        else:
            base = Annotated[float, Field(ge=lower, le=upper, allow_inf_nan=False)]
    return base | None if feature.nullable else base


def _feature_description(feature: FeatureSpec, out_of_range: OutOfRange) -> str:
    text = f"{feature.dtype} feature"
    if feature.min is not None or feature.max is not None:
        shown = [
            show(bound) if bound is not None else "none" for bound in (feature.min, feature.max)
        ]
        text += f"; range in the model's data schema: min {shown[0]}, max {shown[1]}"
        text += (
            " (a value outside is refused)"
            if out_of_range == "reject"
            else " (a value outside is accepted and counted in /metrics)"
        )
    if feature.nullable:
        text += "; null allowed (imputed as in training)"
    return text


def row_model(features: Sequence[FeatureSpec], *, out_of_range: OutOfRange) -> type[BaseModel]:
    """One row of features, as a pydantic model: the OpenAPI `Row` schema."""
    fields: dict[str, Any] = {
        _field_name(index): (
            _feature_type(feature, out_of_range),
            Field(alias=feature.name, description=_feature_description(feature, out_of_range)),
        )
        for index, feature in enumerate(features)
    }
    model: type[BaseModel] = create_model(
        "Row", __config__=ConfigDict(extra="forbid", strict=True), **fields
    )
    return model


def prediction_model(classes: Sequence[str]) -> type[BaseModel]:
    probability_fields: dict[str, Any] = {
        f"class_{index}": (float, Field(alias=name, ge=0.0, le=1.0))
        for index, name in enumerate(classes)
    }
    probabilities: type[BaseModel] = create_model(
        "ClassProbabilities", __config__=ConfigDict(extra="forbid"), **probability_fields
    )
    label_type: Any = Literal[tuple(classes)]
    prediction: type[BaseModel] = create_model(
        "Prediction",
        __config__=ConfigDict(extra="forbid"),
        label=(label_type, Field(description="the predicted class")),
        probabilities=(probabilities, Field(description="probability of each class")),
    )
    response: type[BaseModel] = create_model(
        "PredictResponse",
        __config__=ConfigDict(extra="forbid"),
        model_name=(str, ...),
        model_version=(str, ...),
        predictions=(list[prediction], Field(description="one prediction per row, in order")),
    )
    return response


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class Detail(BaseModel):
        model_config = ConfigDict(extra="forbid")
        field: str
        rule: str
        value: str | None

    error: str = Field(description="every problem as `field = value: rule`, joined by '; '")
    details: list[Detail] = Field(default_factory=list)


class HealthBody(BaseModel):
    status: Literal["ok", "loading"]


class V2Tensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None
    data: list[Any]


class V2RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class V2InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[V2Tensor]
    outputs: list[V2RequestOutput] | None = None


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[V2Tensor]


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]
    # packed_numeric_input: the one [rows, numeric features] tensor an inference request
    # may send instead of a tensor per numeric feature, with its columns in order.
    parameters: dict[str, Any] | None = None


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2Ready(BaseModel):
    ready: bool


class V2Live(BaseModel):
    live: bool


def _schema_of(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def openapi_document(
    model: OnnxModel,
    max_rows: int,
    max_body_bytes: int,
    version: str,
    *,
    out_of_range: OutOfRange,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document: every feature named, typed, bounded and described."""
    components: dict[str, Any] = {}
    row = _schema_of(row_model(model.features, out_of_range=out_of_range), components)
    predict_response = _schema_of(prediction_model(model.classes), components)
    error = _schema_of(ErrorBody, components)
    health = _schema_of(HealthBody, components)
    v2_request = _schema_of(V2InferRequest, components)
    v2_response = _schema_of(V2InferResponse, components)
    v2_model = _schema_of(V2ModelMetadata, components)
    v2_server = _schema_of(V2ServerMetadata, components)
    v2_ready = _schema_of(V2Ready, components)
    v2_live = _schema_of(V2Live, components)
    components["PredictRequest"] = {
        "oneOf": [row, {"type": "array", "items": row, "minItems": 1, "maxItems": max_rows}],
        "description": "one row (an object keyed by feature name) or a batch (an array of "
        f"rows, at most {max_rows}); bodies over {max_body_bytes} bytes get 413",
    }

    def json_content(schema: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": schema}}}

    def errors(*statuses: int) -> dict[str, Any]:
        reasons = {
            400: "malformed JSON or an invalid inference request",
            404: "unknown model name",
            413: "body over the size limit",
            415: "the body is not application/json",
            422: "a row breaks the feature schema",
            503: "the model is not loaded yet",
        }
        return {
            str(status): {"description": reasons[status], **json_content(error)}
            for status in statuses
        }

    def get(summary: str, schema: dict[str, Any], *statuses: int) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "responses": {
                    "200": {"description": "OK", **json_content(schema)},
                    **errors(*statuses),
                },
            }
        }

    name_parameter = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "the model name",
    }
    metadata_schema = {
        "type": "object",
        "required": ["model", "data", "features", "target"],
        "description": "metadata.json as the export stage wrote it",
    }
    paths: dict[str, Any] = {
        "/predict": {
            "post": {
                "summary": "Predict the class and class probabilities of one row or a batch",
                "requestBody": {
                    "required": True,
                    **json_content({"$ref": "#/components/schemas/PredictRequest"}),
                },
                "responses": {
                    "200": {
                        "description": "one prediction per row",
                        **json_content(predict_response),
                    },
                    **errors(400, 413, 415, 422, 503),
                },
            }
        },
        "/health": get("Liveness: the process answers", health),
        "/ready": get("Readiness: the model is loaded", health, 503),
        "/metadata": get(
            "Model and data versions, params, metrics, features", metadata_schema, 503
        ),
        "/model-card": {
            "get": {
                "summary": "The model card (Markdown), when the model ships one",
                "responses": {
                    "200": {
                        "description": "the model card",
                        "content": {"text/markdown": {"schema": {"type": "string"}}},
                    },
                    **errors(404, 503),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/v2": get("Open Inference Protocol: server metadata", v2_server),
        "/v2/health/live": get("Open Inference Protocol: liveness", v2_live),
        "/v2/health/ready": get("Open Inference Protocol: readiness", v2_ready, 503),
        "/v2/models/{name}": {
            "parameters": [name_parameter],
            **get("Open Inference Protocol: model metadata", v2_model, 404, 503),
        },
        "/v2/models/{name}/ready": {
            "parameters": [name_parameter],
            **get("Open Inference Protocol: model readiness", v2_ready, 404, 503),
        },
        "/v2/models/{name}/infer": {
            "parameters": [name_parameter],
            "post": {
                "summary": "Open Inference Protocol: inference, one input tensor per feature",
                "description": (
                    "Each feature is an input tensor of shape [rows] or [rows, 1]. The "
                    "numeric features may instead come as one FP32 tensor of shape [rows, "
                    "numeric features] named as the model's numeric graph input, its "
                    "columns in the order GET /v2/models/{name} lists under "
                    "parameters.packed_numeric_input, beside a tensor per categorical "
                    "feature."
                ),
                "requestBody": {"required": True, **json_content(v2_request)},
                "responses": {
                    "200": {
                        "description": "label and probabilities tensors",
                        **json_content(v2_response),
                    },
                    **errors(400, 404, 413, 415, 503),
                },
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{model.name} prediction API",
            "version": version,
            "description": f"Model version {model.version}; classes {model.classes}.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
