"""The prediction API: an ASGI app over the exported ONNX model and its metadata.

Imports nothing from the training code; it shares only models/model.onnx,
models/metadata.json and the contract between export and serving (`tabml.contract`).
Run it with `python -m tabml.serve` (settings from TABML_*).

  app          routes, lifespan and handlers; the one prediction path
  http         responses, HTTP errors, header, body and JSON checks
  problems     what a refused request breaks (RequestError) and how it is shown
  numbers      the numeric rule, stated once
  decode       REST rows into the model's feed; the /predict response
  v2           Open Inference Protocol tensors into the feed; the V2 responses
  openapi      the OpenAPI document
  model        metadata.json and the onnxruntime session, checked against each other
  metrics      Prometheus metrics
  limits, protocol, settings, prediction_log: bounds on clients, settings, the sample log
"""
