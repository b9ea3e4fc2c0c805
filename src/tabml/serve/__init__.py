"""The prediction API: an ASGI app over the exported ONNX model and its metadata.

Imports nothing from the training code; it shares only models/model.onnx and
models/metadata.json. Run it with `python -m tabml.serve` (settings from TABML_*).
"""
