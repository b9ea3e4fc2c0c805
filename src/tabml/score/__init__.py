"""Batch scoring: a CSV or Parquet table scored with the exported ONNX model, in chunks.

It shares serving's pieces (the model loader, the row decoder and its named problems)
so that a refused row gets the text the API gives the same row; like serving, it
imports nothing from training, and the serving image runs it (`python -m tabml.score`).
"""
