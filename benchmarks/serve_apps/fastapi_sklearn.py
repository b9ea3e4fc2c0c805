"""Baseline: the usual FastAPI + scikit-learn server (pydantic rows, pandas, predict_proba).

Runs in a throwaway venv with fastapi, uvicorn[standard], scikit-learn and pandas;
reads models/model.joblib and models/metadata.json from TABML_MODEL_DIR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel, create_model

MODEL_DIR = Path(os.environ.get("TABML_MODEL_DIR", "models"))
METADATA = json.loads((MODEL_DIR / "metadata.json").read_text())
FEATURES = [feature["name"] for feature in METADATA["features"]]
Row: type[BaseModel] = create_model("Row", **dict.fromkeys(FEATURES, (float, ...)))
PIPELINE = joblib.load(MODEL_DIR / "model.joblib")
CLASSES = [str(name) for name in PIPELINE.classes_]

app = FastAPI()


@app.post("/predict")
def predict(rows: Row | list[Row]) -> dict[str, Any]:  # type: ignore[valid-type]
    batch = rows if isinstance(rows, list) else [rows]
    frame = pd.DataFrame([row.model_dump() for row in batch], columns=FEATURES)
    probabilities = PIPELINE.predict_proba(frame)
    labels = PIPELINE.classes_[probabilities.argmax(axis=1)]
    return {
        "predictions": [
            {"label": str(label), "probabilities": dict(zip(CLASSES, row, strict=True))}
            for label, row in zip(labels, probabilities.tolist(), strict=True)
        ]
    }


@app.get("/ready")
def ready() -> dict[str, str]:
    return {"status": "ok"}
