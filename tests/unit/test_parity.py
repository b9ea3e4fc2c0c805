"""Parity: the check that the ONNX graph answers as the scikit-learn pipeline does."""

from __future__ import annotations

import pandas as pd
import pytest

from tabml.config import DataSchema, TrainParams
from tabml.onnx_graph import to_onnx
from tabml.parity import check_parity
from tabml.parity_report import ParityError
from tabml.stages.train import fit


def test_parity_failure_names_the_difference(
    tiny_frame: pd.DataFrame, tiny_schema: DataSchema
) -> None:
    model = fit(tiny_frame, tiny_schema, TrainParams(estimator="logistic_regression"))
    onnx_bytes = to_onnx(model, tiny_schema, graph_name="model", opset=17)
    # float32 inference cannot agree with float64 to 1e-15: the check must notice.
    with pytest.raises(
        ParityError,
        match=r"differ by .* on test row \d+, above "
        r"export.parity_tolerance = 1e-15",
    ):
        check_parity(onnx_bytes, model, tiny_frame, tiny_schema, 1e-15)
    parity = check_parity(onnx_bytes, model, tiny_frame, tiny_schema, 1e-5)
    assert parity.rows == len(tiny_frame) and parity.labels_equal
    assert 0 < parity.max_abs_diff <= 1e-5
