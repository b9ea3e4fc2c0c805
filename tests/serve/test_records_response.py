"""POST /predict's response body: written as bytes from a row template for a batch, from
dicts for a few rows, the same bytes either way."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tabml.serve.records_response import TEMPLATE_MIN_ROWS, RecordsResponse


def dict_body(response: RecordsResponse, labels: list[str], probabilities: np.ndarray) -> bytes:
    """What the dicts give: the reference every body is held to."""
    return orjson.dumps(response.payload(labels, probabilities))


def test_a_batch_body_is_the_payload_written_by_orjson() -> None:
    response = RecordsResponse("tabml-classifier", "0123abcd", ["benign", "malignant"])
    rng = np.random.default_rng(0)
    first = rng.random(1000, dtype=np.float32)
    probabilities = np.stack([first, 1 - first], axis=1)
    labels = ["benign" if p >= 0.5 else "malignant" for p in first]
    body = response.body(labels, probabilities)
    assert body == dict_body(response, labels, probabilities)
    parsed = json.loads(body)
    assert parsed["model_name"] == "tabml-classifier" and parsed["model_version"] == "0123abcd"
    assert len(parsed["predictions"]) == 1000
    assert parsed["predictions"][3] == {
        "label": labels[3],
        "probabilities": {"benign": float(first[3]), "malignant": float(1 - first[3])},
    }


@pytest.mark.parametrize("rows", [1, TEMPLATE_MIN_ROWS - 1, TEMPLATE_MIN_ROWS, 50])
def test_few_rows_and_many_give_the_same_bytes(rows: int) -> None:
    classes = ["setosa", "versicolor", "virginica"]
    response = RecordsResponse("iris", "v1", classes)
    probabilities = np.full((rows, 3), 1 / 3, dtype=np.float32)
    probabilities[:, 0] = np.linspace(0, 1, rows, dtype=np.float32)
    labels = [classes[row % 3] for row in range(rows)]
    assert response.body(labels, probabilities) == dict_body(response, labels, probabilities)


def test_class_names_that_json_or_the_template_must_escape() -> None:
    """A class name's `%` is template text and must not be read as a placeholder; quotes,
    backslashes and non-ASCII are escaped by orjson, as in the dicts."""
    classes = ['100% "sure"', "a\\b", "naïve ✓", "%b"]
    response = RecordsResponse('model "x"', "v%s", classes)
    probabilities = np.tile(np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32), (20, 1))
    labels = [classes[row % 4] for row in range(20)]
    body = response.body(labels, probabilities)
    assert body == dict_body(response, labels, probabilities)
    assert json.loads(body)["predictions"][0]["label"] == '100% "sure"'


def test_a_label_outside_the_classes_is_written_as_it_is() -> None:
    response = RecordsResponse("m", "v", ["no", "yes"])
    probabilities = np.full((10, 2), 0.5, dtype=np.float32)
    labels = ["no"] * 9 + ["maybe"]
    body = response.body(labels, probabilities)
    assert body == dict_body(response, labels, probabilities)
    assert json.loads(body)["predictions"][9]["label"] == "maybe"


@settings(max_examples=200, deadline=None)
@given(
    probabilities=arrays(
        np.float32,
        st.tuples(st.integers(TEMPLATE_MIN_ROWS, 40), st.integers(2, 4)),
        elements=st.floats(0, 1, width=32),
    ),
    classes=st.lists(st.text(min_size=1, max_size=8), min_size=4, max_size=4, unique=True),
)
def test_any_probabilities_and_class_names_give_the_dicts_bytes(
    probabilities: np.ndarray, classes: list[str]
) -> None:
    """Every float32 in [0, 1] (subnormals, 0 and 1 among them) is written with the digits
    the dicts' Python floats get."""
    classes = classes[: probabilities.shape[1]]
    response = RecordsResponse("m", "v", classes)
    labels = [classes[row % len(classes)] for row in range(len(probabilities))]
    assert response.body(labels, probabilities) == dict_body(response, labels, probabilities)
