"""The exported model: metadata.json read into typed objects and an onnxruntime session.

Only the files the export stage writes and the contract between them (`tabml.contract`)
are shared with training: nothing here imports scikit-learn, DVC or the pipeline's code.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tabml.contract import (
    LABEL_OUTPUT,
    NUMERIC_COLUMNS_KEY,
    NUMERIC_INPUT,
    PROBABILITIES_OUTPUT,
    decode_numeric_columns,
)


class ModelLoadError(RuntimeError):
    """model.onnx or metadata.json is missing, unreadable or inconsistent."""


class ModelOutputError(RuntimeError):
    """The graph answered in a shape metadata.json does not describe."""


class _Loose(BaseModel):
    # metadata.json carries more than serving reads; unknown keys are kept, not refused.
    model_config = ConfigDict(extra="allow", frozen=True)


class FeatureSpec(_Loose):
    name: str = Field(min_length=1)
    dtype: Literal["float", "int", "category"]
    onnx_type: Literal["float32", "string"]
    # The range of a numeric feature in the data schema, as the export stage copies it:
    # the validate stage holds training data to it, and serving holds requests to it.
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    max_null_fraction: float = Field(default=0.0, ge=0.0, le=1.0)

    @property
    def numeric(self) -> bool:
        return self.dtype != "category"

    @property
    def nullable(self) -> bool:
        """Nulls are accepted where the training data allowed them (the pipeline imputes)."""
        return self.max_null_fraction > 0.0


class ModelInfo(_Loose):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


class DataInfo(_Loose):
    version: str | None = None


class TargetInfo(_Loose):
    name: str
    classes: list[str] = Field(min_length=2)
    # Share of each class among the training rows' labels; absent from older exports.
    training_class_ratio: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] | None = None

    @field_validator("classes")
    @classmethod
    def _each_class_once(cls, classes: list[str]) -> list[str]:
        # A probability column per class: a name given twice would make two columns one key.
        repeated = sorted(name for name, count in Counter(classes).items() if count > 1)
        if repeated:
            raise ValueError(f"each class must be listed once; {repeated} are listed twice or more")
        return classes


class Metadata(_Loose):
    model: ModelInfo
    data: DataInfo
    features: list[FeatureSpec] = Field(min_length=1)
    target: TargetInfo


@dataclass(frozen=True)
class Prediction:
    labels: list[str]
    probabilities: NDArray[np.float32]  # [rows, classes], columns in Metadata.target.classes


class OnnxModel:
    """One onnxruntime session plus the metadata that describes its inputs and outputs."""

    def __init__(
        self,
        session: ort.InferenceSession,
        metadata: Metadata,
        raw_metadata: dict[str, Any],
        load_seconds: float,
    ) -> None:
        self.session = session
        self.metadata = metadata
        self.raw_metadata = raw_metadata
        self.load_seconds = load_seconds
        self.features = metadata.features
        self.classes = metadata.target.classes
        self.name = metadata.model.name
        self.version = metadata.model.version

    @classmethod
    def load(cls, model_path: Path, metadata_path: Path) -> OnnxModel:
        started = time.perf_counter()
        raw = _read_metadata(metadata_path)
        try:
            metadata = Metadata.model_validate(raw)
        except ValidationError as error:
            from tabml.validation import problems

            found = "; ".join(f"{problem.key}: {problem.rule}" for problem in problems(error))
            raise ModelLoadError(f"{metadata_path}: {found}") from None
        try:
            model_bytes = model_path.read_bytes()
        except OSError as error:
            raise ModelLoadError(f"{model_path}: cannot read the model: {error}") from None
        options = ort.SessionOptions()
        # Rows of tabular features are tiny: threads cost more in hand-offs than they
        # save, and one thread per process scales by adding workers or replicas.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(
                model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"{model_path}: onnxruntime cannot load it: {error}") from None
        _check_signature(session, metadata, model_path)
        return cls(session, metadata, raw, time.perf_counter() - started)

    def predict(self, feed: dict[str, NDArray[Any]]) -> Prediction:
        labels, probabilities = self.session.run([LABEL_OUTPUT, PROBABILITIES_OUTPUT], feed)
        probabilities = np.asarray(probabilities, dtype=np.float32)
        if probabilities.ndim != 2 or probabilities.shape[1] != len(self.classes):
            # Load checks a graph whose output width is fixed; a symbolic one is checked here.
            raise ModelOutputError(
                f"'{PROBABILITIES_OUTPUT}' has shape {list(probabilities.shape)}, but "
                f"metadata.json lists {len(self.classes)} classes: [rows, classes] was expected"
            )
        return Prediction(
            labels=np.asarray(labels).reshape(-1).tolist(), probabilities=probabilities
        )


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ModelLoadError(f"{path}: cannot read the metadata: {error}") from None
    except ValueError as error:
        raise ModelLoadError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    return raw


_ONNX_TYPES = {"float32": "tensor(float)", "string": "tensor(string)"}


def _check_signature(session: ort.InferenceSession, metadata: Metadata, path: Path) -> None:
    """Refuse a model whose graph does not take the inputs metadata.json describes."""
    graph_inputs = {item.name: item for item in session.get_inputs()}
    numeric = [feature.name for feature in metadata.features if feature.numeric]
    expected = {
        feature.name: _ONNX_TYPES[feature.onnx_type]
        for feature in metadata.features
        if not feature.numeric
    }
    if numeric:
        expected[NUMERIC_INPUT] = _ONNX_TYPES["float32"]
    types = {name: item.type for name, item in graph_inputs.items()}
    if types != expected:
        missing = sorted(set(expected) - set(types))
        extra = sorted(set(types) - set(expected))
        typed = sorted(name for name in set(expected) & set(types) if expected[name] != types[name])
        raise ModelLoadError(
            f"{path}: graph inputs do not match metadata features "
            f"(missing from graph: {missing}, not in metadata: {extra}, other type: {typed})"
        )
    if numeric:
        stored = session.get_modelmeta().custom_metadata_map.get(NUMERIC_COLUMNS_KEY)
        columns = decode_numeric_columns(stored)
        if columns != numeric:
            raise ModelLoadError(
                f"{path}: the columns of graph input '{NUMERIC_INPUT}' are {columns}, but "
                f"metadata.json lists the numeric features {numeric}"
            )
        width = graph_inputs[NUMERIC_INPUT].shape[-1]
        if isinstance(width, int) and width != len(numeric):
            raise ModelLoadError(
                f"{path}: graph input '{NUMERIC_INPUT}' has {width} columns, but metadata.json "
                f"lists {len(numeric)} numeric features"
            )
    outputs = {item.name: item for item in session.get_outputs()}
    if not {LABEL_OUTPUT, PROBABILITIES_OUTPUT} <= outputs.keys():
        raise ModelLoadError(
            f"{path}: graph outputs {sorted(outputs)} lack "
            f"'{LABEL_OUTPUT}' and '{PROBABILITIES_OUTPUT}'"
        )
    probabilities = outputs[PROBABILITIES_OUTPUT].shape
    width = probabilities[-1] if probabilities else None
    classes = metadata.target.classes
    if isinstance(width, int) and width != len(classes):
        raise ModelLoadError(
            f"{path}: '{PROBABILITIES_OUTPUT}' has {width} columns but "
            f"metadata.json lists {len(classes)} classes"
        )
