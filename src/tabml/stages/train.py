"""train: fit one scikit-learn Pipeline (preprocessing + estimator) chosen by params.yaml,
and convert it to the ONNX graph serving runs.

Preprocessing lives inside the saved Pipeline, and so inside the graph, so evaluation,
export and serving transform inputs exactly as training did.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tabml.config import DataSchema, TrainParams
from tabml.contract import MISSING_CATEGORY
from tabml.errors import InputError

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

# scikit-learn is imported where a model is built, not here: evaluate, the parity check
# and the model card import model_input from this module, and every subpackage imported adds
# to each of those processes' start-up (a tree ensemble's most of all).

# Linear models need scaled inputs; tree ensembles split on raw values, and scaling
# them would only add float32/float64 rounding between scikit-learn and ONNX.
SCALED_ESTIMATORS = frozenset({"logistic_regression"})

# Rows the preprocessing transforms at a time while training: its temporary arrays are
# this size, not the training set's.
ROW_BLOCK = 65_536


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
        # Only a column of another dtype is replaced: replacing one splits the frame's
        # float64 block into a block per column, which the pipeline's first step then
        # gathers into a new matrix before its own copy (one more copy of the features).
        if features[name].dtype != "float64":
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


def row_blocks(rows: int) -> Iterator[slice]:
    return (slice(start, min(start + ROW_BLOCK, rows)) for start in range(0, rows, ROW_BLOCK))


def fit_numeric(template: Pipeline, numeric: pd.DataFrame) -> Pipeline:
    """The numeric branch (impute, then scale for a linear model) fitted with no copy of
    the whole matrix: the medians column by column, the scaler's mean and variance a
    block of rows at a time (StandardScaler.partial_fit, whose merged figures differ
    from a one-pass fit's in the last bits only)."""
    from sklearn.base import clone

    branch: Pipeline = clone(template)
    imputer = median_imputer(numeric)
    branch.steps[0] = (branch.steps[0][0], imputer)
    if "scale" in branch.named_steps:
        scaler = branch.named_steps["scale"]
        for rows in row_blocks(len(numeric)):
            scaler.partial_fit(imputer.transform(numeric.iloc[rows]))
    return branch


def fit_preprocess(preprocess: ColumnTransformer, features: pd.DataFrame) -> None:
    """Fit `preprocess` on `features` without transforming them all at once.

    Each branch is fitted on its own columns first (the numeric one in blocks). The
    ColumnTransformer then learns its layout (input columns, output widths) from one
    row, its branches frozen so that the row refits none of them; the fitted branches
    then take their frozen wrappers' places, and the unfitted templates stay its
    parameters, as a plain fit leaves them.
    """
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator

    templates = {name: branch for name, branch, _ in preprocess.transformers}
    fitted = {
        name: fit_numeric(branch, features[columns])
        if name == "numeric"
        else clone(branch).fit(features[columns])
        for name, branch, columns in preprocess.transformers
    }
    preprocess.set_params(**{name: FrozenEstimator(branch) for name, branch in fitted.items()})
    preprocess.fit(features.iloc[:1])
    preprocess.set_params(**templates)
    preprocess.transformers_ = [
        (name, fitted.get(name, branch), columns)
        for name, branch, columns in preprocess.transformers_
    ]


def transformed(preprocess: ColumnTransformer, features: pd.DataFrame) -> np.ndarray:
    """Every row through `preprocess`, a block at a time, into one row-major matrix: the
    layout the estimators take without copying it (LogisticRegression copies any other)."""
    width = preprocess.transform(features.iloc[:1]).shape[1]
    matrix = np.empty((len(features), width), dtype="float64")
    for rows in row_blocks(len(features)):
        matrix[rows] = preprocess.transform(features.iloc[rows])
    return matrix


def fit(train: pd.DataFrame, schema: DataSchema, params: TrainParams) -> Pipeline:
    """Fit the pipeline on `train`; labels are the schema's class names.

    Step by step as Pipeline.fit does, with one copy of the features in memory at a time
    (the preprocessed matrix) rather than three: 1,245 MB became about 700 MB at a
    million rows.
    """
    pipeline = build_pipeline(schema, params)
    features = model_input(train, schema)
    check_learnable(features, schema)
    preprocess = pipeline.named_steps["preprocess"]
    fit_preprocess(preprocess, features)
    pipeline.named_steps["model"].fit(
        transformed(preprocess, features), train[schema.target.name].astype(str)
    )
    return pipeline


def read_train(path: Path, schema: DataSchema) -> pd.DataFrame:
    """The training table, its numeric features as float64 (as model_input takes them).

    pandas' own read holds the decoded table and the frame at once; here each numeric
    column, decoded page by page, goes straight into one matrix, so reading adds one
    column to the data rather than a second copy of it (read's peak at a million rows:
    about 300 MB less). The matrix is column-major, as pandas lays out a float block,
    so the fit meets the layout, and sums in the order, that pandas' read gives it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    numeric = list(schema.numeric_features)
    parquet = pq.ParquetFile(path, pre_buffer=False)
    matrix = np.empty((parquet.metadata.num_rows, len(numeric)), dtype="float64", order="F")
    for position, name in enumerate(numeric):
        matrix[:, position] = parquet.read(columns=[name]).column(0).to_numpy()
    frame = pd.DataFrame(matrix, columns=numeric, copy=False)
    others = [name for name in parquet.schema_arrow.names if name not in set(numeric)]
    if others:
        rest = pd.read_parquet(path, columns=others)
        rest.index = frame.index  # row for row, whatever index the file stored
        for name in others:
            frame[name] = rest[name]
    # The pages pyarrow keeps for reuse go back to the system, for the fit's arrays.
    pa.default_memory_pool().release_unused()
    return frame


def run(
    train_path: Path,
    schema: DataSchema,
    params: TrainParams,
    model_out: Path,
    *,
    graph_out: Path,
    opset: int,
) -> Pipeline:
    """Fit, save the pipeline to `model_out` and its ONNX graph (in opset `opset`) to
    `graph_out`.

    The graph is converted here, where scikit-learn is already imported: export, which
    publishes it, then starts without scikit-learn (about 1.5 s of imports).
    """
    import joblib

    from tabml.onnx_graph import to_onnx

    pipeline = fit(read_train(train_path, schema), schema, params)
    model_out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, model_out)
    graph = to_onnx(pipeline, schema, graph_name=params.estimator, opset=opset)
    graph_out.parent.mkdir(parents=True, exist_ok=True)
    graph_out.write_bytes(graph)
    return pipeline
