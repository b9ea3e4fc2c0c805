"""POST /predict's response body: the model, and each row's label and class probabilities.

    {"model_name": ..., "model_version": ...,
     "predictions": [{"label": ..., "probabilities": {class: p, ...}}, ...]}

A batch's body is written as bytes: one row template (the class names are known once the
model is loaded) repeated once per row and filled with one `%` format, whose values are
the labels' JSON strings and orjson's digits of the probabilities. Building a dict per
row and serializing them costs 2.6 times as much for 1,000 rows (502 against 192 µs, 2
classes, in process on one core; docs/benchmarks.md). The numbers are the probabilities
as float64, as the dicts' Python floats are, so both ways write the same bytes. A few
rows go by the dicts, which are cheaper for them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from tabml.serve.json_columns import json_columns

# Fewer rows than this are written from dicts. Measured in µs, dicts against template:
# 1 row 1.3 against 2.3, 4 rows 2.7 against 2.9, 6 rows 3.6 against 3.4.
TEMPLATE_MIN_ROWS = 5


class RecordsResponse:
    """The response bodies of one model."""

    def __init__(self, name: str, version: str, classes: list[str]) -> None:
        self.name = name
        self.version = version
        self.classes = list(classes)
        head = orjson.dumps({"model_name": name, "model_version": version})
        self._head = head[:-1] + b',"predictions":['
        # `%` in a class name is literal text of the template, so it is doubled.
        self._labels = {label: orjson.dumps(label) for label in self.classes}
        keys = [text.replace(b"%", b"%%") for text in self._labels.values()]
        self._row = b'{"label":%b,"probabilities":{' + b",".join(k + b":%b" for k in keys) + b"}}"

    def body(self, labels: list[str], probabilities: NDArray[np.float32]) -> bytes:
        """The JSON body for `labels` and their [rows, classes] `probabilities`."""
        rows = len(labels)
        if rows < TEMPLATE_MIN_ROWS:
            return orjson.dumps(self.payload(labels, probabilities))
        try:
            encoded = list(map(self._labels.__getitem__, labels))
        except KeyError:  # a label the metadata does not list: written as it is
            return orjson.dumps(self.payload(labels, probabilities))
        width = len(self.classes)
        # Row by row: the label, then the class probabilities in the classes' order.
        filled: list[bytes] = [b""] * (rows * (width + 1))
        filled[0 :: width + 1] = encoded
        for column, values in enumerate(json_columns(probabilities.astype(np.float64))):
            filled[column + 1 :: width + 1] = values
        return self._head + b",".join([self._row] * rows) % tuple(filled) + b"]}"

    def payload(self, labels: list[str], probabilities: NDArray[np.float32]) -> dict[str, Any]:
        """The response as Python objects, which `body` writes."""
        classes = self.classes
        # Lengths match (OnnxModel.predict checks the probability columns against the
        # classes); zip(strict=True) would double the cost of a large response.
        return {
            "model_name": self.name,
            "model_version": self.version,
            "predictions": [
                {"label": label, "probabilities": dict(zip(classes, row))}  # noqa: B905
                for label, row in zip(labels, probabilities.tolist())  # noqa: B905
            ],
        }
