"""train: one Pipeline per estimator family, preprocessing inside, seeded."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from tabml.config import DataSchema, TrainParams
from tabml.errors import InputError
from tabml.parity import onnx_predict
from tabml.stages import train
from tabml.stages.train import build_pipeline, column_median, fit, model_input, read_train

FAMILIES = ["logistic_regression", "random_forest", "gradient_boosting"]


def with_missing_values(frame: pd.DataFrame) -> pd.DataFrame:
    """Both numeric features with missing values, a different count in each."""
    frame = frame.assign(count=frame["count"].astype("float64"))
    frame.loc[frame.index[::7], "size"] = np.nan
    frame.loc[frame.index[::5], "count"] = np.nan
    return frame


def plain_fit(frame: pd.DataFrame, schema: DataSchema, params: TrainParams) -> Pipeline:
    """The pipeline fitted by its own fit, in one pass over every row."""
    return build_pipeline(schema, params).fit(
        model_input(frame, schema), frame[schema.target.name].astype(str)
    )


@pytest.mark.parametrize("estimator", FAMILIES)
def test_each_family_learns_the_tiny_problem(
    estimator: str, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator=estimator))  # type: ignore[arg-type]
    assert isinstance(model, Pipeline)
    assert list(model.classes_) == ["no", "yes"]
    accuracy = (model.predict(tiny_frame) == tiny_frame["label"]).mean()
    assert accuracy > 0.8


def test_preprocessing_is_part_of_the_saved_pipeline(tiny_schema: DataSchema) -> None:
    pipeline = build_pipeline(tiny_schema, TrainParams(estimator="logistic_regression"))
    preprocess = pipeline.named_steps["preprocess"]
    assert [name for name, _, _ in preprocess.transformers] == ["numeric", "categorical"]
    numeric = preprocess.transformers[0][1]
    assert [name for name, _ in numeric.steps] == ["impute", "scale"]
    trees = build_pipeline(tiny_schema, TrainParams(estimator="random_forest"))
    assert [name for name, _ in trees.named_steps["preprocess"].transformers[0][1].steps] == [
        "impute"
    ]


def test_missing_values_and_unseen_categories_are_handled(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    odd = pd.DataFrame({"size": [np.nan, 1.0], "count": [3, 4], "colour": ["purple", None]})
    assert model.predict_proba(model_input(odd, tiny_schema)).shape == (2, 2)


@pytest.mark.parametrize("estimator", FAMILIES)
def test_training_is_deterministic(
    estimator: str, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    params = TrainParams(estimator=estimator, seed=3)  # type: ignore[arg-type]
    first = pickle.dumps(fit(tiny_frame, tiny_schema, params))
    second = pickle.dumps(fit(tiny_frame, tiny_schema, params))
    assert first == second


def test_run_saves_the_pipeline_and_its_graph(
    tmp_path: Path, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    tiny_frame.to_parquet(tmp_path / "train.parquet")
    params = TrainParams(estimator="random_forest")
    pipeline = train.run(
        tmp_path / "train.parquet",
        tiny_schema,
        params,
        tmp_path / "models" / "model.joblib",
        graph_out=tmp_path / "graphs" / "pipeline.onnx",
        opset=15,
    )
    features = model_input(tiny_frame, tiny_schema)
    saved = joblib.load(tmp_path / "models" / "model.joblib")
    np.testing.assert_array_equal(saved.predict_proba(features), pipeline.predict_proba(features))
    graph = (tmp_path / "graphs" / "pipeline.onnx").read_bytes()
    loaded = onnx.load_from_string(graph)
    assert loaded.graph.name == "random_forest"
    assert {item.domain: item.version for item in loaded.opset_import}[""] == 15
    _, proba = onnx_predict(graph, tiny_frame, tiny_schema)
    np.testing.assert_allclose(proba, pipeline.predict_proba(features), atol=1e-5)


def test_hyperparameters_reach_the_estimator(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    params = TrainParams.model_validate(
        {
            "estimator": "random_forest",
            "seed": 5,
            "random_forest": {"n_estimators": 7, "max_depth": 2},
        }
    )
    forest = fit(tiny_frame, tiny_schema, params).named_steps["model"]
    assert (forest.n_estimators, forest.max_depth, forest.random_state) == (7, 2, 5)


def test_a_category_empty_in_every_row_is_named(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    with pytest.raises(InputError, match=r"feature 'colour': empty in all 120 training rows"):
        fit(
            tiny_frame.assign(colour=None),
            tiny_schema,
            TrainParams(estimator="logistic_regression"),
        )


@pytest.mark.parametrize("estimator", FAMILIES)
@pytest.mark.parametrize("rows", [119, 120])  # an odd and an even count of present values
def test_fitting_step_by_step_saves_the_model_a_plain_fit_saves(
    estimator: str, rows: int, tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    frame = with_missing_values(tiny_frame.iloc[:rows])
    params = TrainParams(estimator=estimator, seed=3)  # type: ignore[arg-type]
    assert pickle.dumps(fit(frame, tiny_schema, params)) == pickle.dumps(
        plain_fit(frame, tiny_schema, params)
    )


def test_fitting_in_row_blocks_predicts_as_a_plain_fit(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train, "ROW_BLOCK", 16)  # 120 rows: eight blocks, the last short
    frame = with_missing_values(tiny_frame)
    params = TrainParams(estimator="logistic_regression")
    blocks, plain = fit(frame, tiny_schema, params), plain_fit(frame, tiny_schema, params)
    numeric = [
        model.named_steps["preprocess"].named_transformers_["numeric"] for model in (blocks, plain)
    ]
    assert [type(step).__name__ for _, step in numeric[0].steps] == [
        "SimpleImputer",
        "StandardScaler",
    ]
    np.testing.assert_array_equal(*(n.named_steps["impute"].statistics_ for n in numeric))
    np.testing.assert_allclose(*(n.named_steps["scale"].var_ for n in numeric), rtol=1e-12)
    assert numeric[0].named_steps["scale"].n_samples_seen_ == len(frame)
    features = model_input(frame, tiny_schema)
    np.testing.assert_allclose(
        blocks.predict_proba(features), plain.predict_proba(features), rtol=0, atol=1e-9
    )


def test_a_numeric_feature_empty_in_every_row_is_imputed_as_zero(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    frame = tiny_frame.assign(size=np.nan)
    model = fit(frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    numeric = model.named_steps["preprocess"].named_transformers_["numeric"]
    imputer = numeric.named_steps["impute"]
    assert type(imputer).__name__ == "SimpleImputer"
    assert imputer.statistics_[0] == 0.0
    assert imputer.statistics_[1] == np.median(frame["count"])
    assert np.isnan(column_median(frame["size"]))


def test_the_training_file_reads_as_pandas_reads_it(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema, tmp_path: Path
) -> None:
    frame = tiny_frame.assign(count=tiny_frame["count"].astype("Int64"))
    frame.loc[frame.index[::4], "count"] = pd.NA
    frame.loc[frame.index[::6], "size"] = np.nan
    path = tmp_path / "train.parquet"
    frame.to_parquet(path)
    read = read_train(path, tiny_schema)
    pd.testing.assert_frame_equal(
        model_input(read, tiny_schema), model_input(pd.read_parquet(path), tiny_schema)
    )
    pd.testing.assert_series_equal(read["label"], pd.read_parquet(path)["label"])
