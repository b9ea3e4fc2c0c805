"""train: fit one scikit-learn Pipeline (preprocessing + estimator) chosen by params.yaml.

Preprocessing lives inside the saved Pipeline, so evaluation, export and serving
transform inputs exactly as training did.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tabml.config import DataSchema, TrainParams
from tabml.contract import MISSING_CATEGORY
from tabml.errors import InputError

if TYPE_CHECKING:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

# scikit-learn is imported where a model is built, not here: evaluate, export and the
# model card import model_input from this module, and every subpackage imported adds
# to each of those processes' start-up (a tree ensemble's most of all).

# Linear models need scaled inputs; tree ensembles split on raw values, and scaling
# them would only add float32/float64 rounding between scikit-learn and ONNX.
SCALED_ESTIMATORS = frozenset({"logistic_regression"})


def build_estimator(
    params: TrainParams,
) -> LogisticRegression | RandomForestClassifier | GradientBoostingClassifier:
    hyper = params.hyperparameters()
    if params.estimator == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(random_state=params.seed, **hyper)
    if params.estimator == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(random_state=params.seed, n_jobs=1, **hyper)
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(random_state=params.seed, **hyper)


def build_pipeline(schema: DataSchema, params: TrainParams) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    # keep_empty_features: a feature the schema lets be missing in every row stays in the
    # model (as a constant), so the exported graph still takes every feature it lists.
    numeric_steps: list[tuple[str, object]] = [
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
    ]
    if params.estimator in SCALED_ESTIMATORS:
        numeric_steps.append(("scale", StandardScaler()))
    transformers: list[tuple[str, object, list[str]]] = []
    if schema.numeric_features:
        transformers.append(("numeric", Pipeline(numeric_steps), schema.numeric_features))
    if schema.categorical_features:
        categorical = Pipeline(
            [
                (
                    "impute",
                    SimpleImputer(missing_values=MISSING_CATEGORY, strategy="most_frequent"),
                ),
                ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical, schema.categorical_features))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("preprocess", preprocess), ("model", build_estimator(params))])


def model_input(frame: pd.DataFrame, schema: DataSchema) -> pd.DataFrame:
    """The feature columns, in schema order, as the pipeline and its ONNX twin take them."""
    # Copy-on-write (pandas 3) keeps the assignments below off `frame`: no defensive
    # copy, which at a million training rows is 190 MB on top of the stage's peak.
    features = frame[list(schema.features)]
    for name in schema.numeric_features:
        features[name] = features[name].astype("float64")
    for name in schema.categorical_features:
        column = features[name]
        features[name] = (
            column.astype(object).where(column.notna(), MISSING_CATEGORY).astype(str).astype(object)
        )
    return features


def check_learnable(features: pd.DataFrame, schema: DataSchema) -> None:
    """A category with no value in any training row cannot be learnt (the imputer has no
    most frequent value to fill in); an empty numeric feature is kept as a constant."""
    for name in schema.categorical_features:
        if (features[name] == MISSING_CATEGORY).all():
            raise InputError(
                f"feature {name!r}: empty in all {len(features)} training rows; a category "
                "needs at least one value to learn from (lower its max_null_fraction in "
                "the schema so validate catches this, or remove the feature)"
            )


def column_median(column: pd.Series) -> float:
    """The median of a column's present values; NaN when it has none."""
    values = column.to_numpy(dtype="float64")
    present = values[~np.isnan(values)]
    return float(np.median(present)) if present.size else float("nan")


def median_imputer(numeric: pd.DataFrame) -> SimpleImputer:
    """The numeric median imputer, fitted one column at a time.

    SimpleImputer's own fit holds several copies of the whole matrix at once (its
    validated copy, the missing mask, np.ma.median's sorted copy): about 800 MB of
    train's 1,245 MB peak at a million rows. Fitted instead on one row holding each
    column's median, it learns exactly those medians (a single value is its own median;
    an empty column's NaN becomes 0, as keep_empty_features makes it on the full
    frame), with the same feature names and dtypes.
    """
    from sklearn.impute import SimpleImputer

    medians = pd.DataFrame(
        [[column_median(numeric[name]) for name in numeric.columns]], columns=numeric.columns
    )
    return SimpleImputer(strategy="median", keep_empty_features=True).fit(medians)


def fit(train: pd.DataFrame, schema: DataSchema, params: TrainParams) -> Pipeline:
    """Fit the pipeline on `train`; labels are the schema's class names."""
    pipeline = build_pipeline(schema, params)
    features = model_input(train, schema)
    check_learnable(features, schema)
    labels = train[schema.target.name].astype(str)
    if not schema.numeric_features:
        return pipeline.fit(features, labels)
    from sklearn.frozen import FrozenEstimator

    # The pipeline's fit leaves a frozen step as it is. The steps are then put back as a
    # plain fit leaves them (the unfitted template; the fitted SimpleImputer, which the
    # ONNX converter knows and its frozen wrapper it does not), the same objects in the
    # same places, so the saved model is byte for byte the one a plain fit saves.
    imputer = median_imputer(features[schema.numeric_features])
    preprocess = pipeline.named_steps["preprocess"]
    steps = {name: t for name, t, _ in preprocess.transformers}["numeric"].steps
    template = steps[0]
    steps[0] = (template[0], FrozenEstimator(imputer))
    pipeline.fit(features, labels)
    steps[0] = template
    fitted = preprocess.named_transformers_["numeric"].steps
    fitted[0] = (fitted[0][0], imputer)
    return pipeline


def run(train_path: Path, schema: DataSchema, params: TrainParams, model_out: Path) -> Pipeline:
    import joblib
    import pyarrow as pa

    # Decoded page by page (no copy of the whole compressed file first); then the pages
    # pyarrow keeps for reuse go back to the system, for the fit's numpy arrays to use:
    # together about 450 MB less at a million training rows.
    train = pd.read_parquet(train_path, pre_buffer=False)
    pa.default_memory_pool().release_unused()
    pipeline = fit(train, schema, params)
    model_out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, model_out)
    return pipeline
