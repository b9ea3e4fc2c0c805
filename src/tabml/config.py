"""Typed, validated configuration: the only reader of params.yaml and of the data schema file.

Everything the stages need is parsed here once, at load time, so that a typo or an
out-of-range value stops the pipeline before any work is done, with a message that
names the key, the value and the rule.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tabml.errors import InputError
from tabml.score.options import ScoreOptions
from tabml.validation import problems


class ConfigError(InputError):
    """A configuration file is missing, unparsable or breaks a rule."""


class _Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- params.yaml


# The field separators a CSV data file may use, by the name a person gives them.
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "|": "|"}
# params.yaml and the schema are parsed by libyaml when PyYAML has it (its wheels do): the
# same values as the pure-Python loader (a test holds them equal on the project's
# files) in a sixth of the time, which every pipeline stage's process pays.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DataParams(_Strict):
    source: Literal["sklearn", "file"] = Field(
        description="sklearn: a dataset bundled with scikit-learn; file: a CSV or Parquet file"
    )
    sklearn_dataset: Literal["breast_cancer", "wine", "iris"] | None = None
    path: str | None = Field(default=None, description="CSV or Parquet file, relative to the repo")
    delimiter: Literal[",", ";", "\t", "|"] = Field(
        default=",",
        description="the field separator of a CSV data.path; the raw dataset keeps it",
    )

    @model_validator(mode="after")
    def _source_fields(self) -> DataParams:
        if self.source == "sklearn" and self.sklearn_dataset is None:
            raise ValueError("data.sklearn_dataset is required when data.source is 'sklearn'")
        if self.source == "file":
            if not self.path:
                raise ValueError("data.path is required when data.source is 'file'")
            if Path(self.path).suffix.lower() not in (".csv", ".parquet"):
                raise ValueError(f"data.path = {self.path!r}: must end in .csv or .parquet")
        csv_file = self.source == "file" and Path(self.path or "").suffix.lower() == ".csv"
        if self.delimiter != "," and not csv_file:
            # Every other source is written to the raw dataset comma-separated.
            raise ValueError(
                f"data.delimiter = {self.delimiter!r}: applies to a .csv data.path only; "
                "must be ',' for a Parquet file or a bundled dataset"
            )
        return self


class ValidateParams(_Strict):
    schema_path: str = Field(alias="schema", description="YAML file declaring columns and rules")
    min_rows: Annotated[int, Field(ge=1)] = 50
    # Fewer rows of a class than this leaves a handful in the test split: metrics on it
    # mean nothing, and a stratified split or a fit may fail outright.
    min_rows_per_class: Annotated[int, Field(ge=2)] = 10
    allow_duplicate_rows: bool = False
    extra_columns: Literal["fail", "drop"] = "fail"
    max_examples: Annotated[int, Field(ge=1, le=100)] = 5

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SplitParams(_Strict):
    test_size: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    seed: int = 42
    stratify: bool = True


class LogisticRegressionParams(_Strict):
    C: Annotated[float, Field(gt=0.0)] = 1.0
    max_iter: Annotated[int, Field(ge=1)] = 1000
    class_weight: Literal["balanced"] | None = None


class RandomForestParams(_Strict):
    n_estimators: Annotated[int, Field(ge=1)] = 200
    max_depth: Annotated[int, Field(ge=1)] | None = None
    min_samples_leaf: Annotated[int, Field(ge=1)] = 1
    class_weight: Literal["balanced", "balanced_subsample"] | None = None


class GradientBoostingParams(_Strict):
    n_estimators: Annotated[int, Field(ge=1)] = 150
    learning_rate: Annotated[float, Field(gt=0.0)] = 0.1
    max_depth: Annotated[int, Field(ge=1)] = 3
    subsample: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0


class TrainParams(_Strict):
    estimator: Literal["logistic_regression", "random_forest", "gradient_boosting"]
    seed: int = 42
    logistic_regression: LogisticRegressionParams = LogisticRegressionParams()
    random_forest: RandomForestParams = RandomForestParams()
    gradient_boosting: GradientBoostingParams = GradientBoostingParams()

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters of the chosen estimator family only."""
        chosen: BaseModel = getattr(self, self.estimator)
        return chosen.model_dump()


class EvaluateParams(_Strict):
    average: Literal["macro", "weighted", "micro"] = "macro"
    calibration_bins: Annotated[int, Field(ge=2, le=100)] = 10
    importance_repeats: Annotated[int, Field(ge=1)] = 5
    importance_max_rows: Annotated[int, Field(ge=10)] = 5000
    curve_points: Annotated[int, Field(ge=10, le=10000)] = 200
    seed: int = 42


class ExportParams(_Strict):
    model_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")] = "tabml-classifier"
    parity_tolerance: Annotated[float, Field(gt=0.0, le=1e-2)] = 1e-5
    target_opset: Annotated[int, Field(ge=13)] = 17


class ModelCardParams(_Strict):
    intended_use: Annotated[str, Field(min_length=1)] = (
        "Demonstration of the template's pipeline; not for clinical use."
    )
    limitations: list[str] = Field(default_factory=list)
    slices: list[str] = Field(default_factory=list, description="columns to report metrics by")
    slice_bins: Annotated[int, Field(ge=2, le=10)] = 3
    sensitive_attribute: str | None = None
    bootstrap_samples: Annotated[int, Field(ge=50, le=10000)] = 300
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    # The card's metrics, intervals, slices and fairness use at most this many test rows,
    # a seeded sample of them: it bounds the stage's time and memory on large data.
    max_rows: Annotated[int, Field(ge=100)] = 20000
    seed: int = 42


class DriftParams(_Strict):
    """When a production sample counts as drifted from the training reference."""

    reference: Literal["train", "test"] = "train"
    p_value: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01
    psi_threshold: Annotated[float, Field(gt=0.0)] = 0.2
    psi_bins: Annotated[int, Field(ge=2, le=50)] = 10
    max_drifted_features: Annotated[int, Field(ge=0)] = 0
    prediction_psi_threshold: Annotated[float, Field(gt=0.0)] = 0.1
    metric_tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    min_sample_rows: Annotated[int, Field(ge=5)] = 30


class MetricRule(_Strict):
    direction: Literal["higher", "lower"] = Field(description="which way is better")
    tolerance: Annotated[float, Field(ge=0.0)] = 0.0


class GateParams(_Strict):
    """The challenger fails when a listed metric is worse than the champion's by more
    than its tolerance; metrics not listed are reported, not gated."""

    metrics: dict[str, MetricRule] = Field(default_factory=dict)


class Params(_Strict):
    data: DataParams
    validate_: ValidateParams = Field(alias="validate")
    split: SplitParams = SplitParams()
    train: TrainParams
    evaluate: EvaluateParams = EvaluateParams()
    export: ExportParams = ExportParams()
    model_card: ModelCardParams = ModelCardParams()
    drift: DriftParams = DriftParams()
    gate: GateParams = GateParams()
    score: ScoreOptions = ScoreOptions()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def model_settings(self) -> dict[str, Any]:
        """The sections that shape the model, as JSON: all but `model_card`, `drift`,
        `gate` and `score`, which describe, watch, judge and use a model without taking
        part in building it (the export stage, which records these, does not depend on
        them either)."""
        return self.model_dump(
            mode="json", by_alias=True, exclude={"model_card", "drift", "gate", "score"}
        )


# --------------------------------------------------------------------------- data schema


class NumericFeature(_Strict):
    dtype: Literal["float", "int"]
    min: float | None = None
    max: float | None = None
    max_null_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0

    @model_validator(mode="after")
    def _range(self) -> NumericFeature:
        for name in ("min", "max"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} = {value!r}: must be a finite number")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min = {self.min} is greater than max = {self.max}")
        return self


class CategoricalFeature(_Strict):
    dtype: Literal["category"]
    allowed: Annotated[list[str], Field(min_length=1)]
    max_null_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


Feature = Annotated[NumericFeature | CategoricalFeature, Field(discriminator="dtype")]


class TargetSchema(_Strict):
    name: Annotated[str, Field(min_length=1)]
    classes: Annotated[list[str], Field(min_length=2)]

    @model_validator(mode="after")
    def _unique(self) -> TargetSchema:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes = {self.classes}: values must be unique")
        return self


class DataSchema(_Strict):
    """What a valid dataset looks like: the target, each feature and its rules."""

    target: TargetSchema
    features: Annotated[dict[str, Feature], Field(min_length=1)]

    @model_validator(mode="after")
    def _target_not_a_feature(self) -> DataSchema:
        if self.target.name in self.features:
            raise ValueError(f"target.name = {self.target.name!r} is also listed as a feature")
        return self

    @property
    def numeric_features(self) -> list[str]:
        return [n for n, f in self.features.items() if isinstance(f, NumericFeature)]

    @property
    def categorical_features(self) -> list[str]:
        return [n for n, f in self.features.items() if isinstance(f, CategoricalFeature)]


# --------------------------------------------------------------------------- loading


def _format_errors(source: str, error: ValidationError) -> str:
    lines = [f"{source}: {error.error_count()} invalid setting(s)"]
    for problem in problems(error):
        if problem.kind == "extra_forbidden":
            lines.append(
                f"  {problem.key}: unknown key (value {problem.value!r}); check the spelling"
            )
        elif problem.kind == "missing":
            lines.append(f"  {problem.key}: required key is missing")
        else:
            lines.append(f"  {problem.describe()}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    try:
        loaded = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return loaded


def parse_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    return parse_params(_read_yaml(path), str(path))


def parse_schema(raw: dict[str, Any], source: str = "schema") -> DataSchema:
    try:
        return DataSchema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def load_schema(path: Path | str) -> DataSchema:
    path = Path(path)
    return parse_schema(_read_yaml(path), str(path))
