"""Baseline: Starlette + onnxruntime on the same model.onnx, with a minimal decoder.

What a framework server with the same model and no checks costs: rows parsed with
orjson, the numeric features gathered in metadata order into the graph's one float32
input, no check of names, types or ranges, and the records response tabml gives. The
gap between it and tabml's API is what the hand-written ASGI layer buys (and what the
checks cost). Runs in the FastAPI baseline's throwaway venv (Starlette comes with
FastAPI) with onnxruntime and orjson added; reads TABML_MODEL_DIR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MODEL_DIR = Path(os.environ.get("TABML_MODEL_DIR", "models"))
METADATA = json.loads((MODEL_DIR / "metadata.json").read_text())
NUMERIC = [feature["name"] for feature in METADATA["features"] if feature["dtype"] != "category"]
CLASSES = METADATA["target"]["classes"]
OPTIONS = ort.SessionOptions()
OPTIONS.intra_op_num_threads = 1
OPTIONS.inter_op_num_threads = 1
SESSION = ort.InferenceSession(
    str(MODEL_DIR / "model.onnx"), sess_options=OPTIONS, providers=["CPUExecutionProvider"]
)


async def predict(request: Request) -> Response:
    payload: Any = orjson.loads(await request.body())
    rows = payload if isinstance(payload, list) else [payload]
    values = np.array([[row[name] for name in NUMERIC] for row in rows], dtype=np.float32)
    labels, probabilities = SESSION.run(["label", "probabilities"], {"numeric_features": values})
    body = {
        "predictions": [
            {"label": label, "probabilities": dict(zip(CLASSES, row))}  # noqa: B905
            for label, row in zip(labels.tolist(), probabilities.tolist())  # noqa: B905
        ]
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/ready", ready)])
