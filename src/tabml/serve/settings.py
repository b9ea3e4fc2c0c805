"""Serving settings: environment variables -> one typed, validated object.

Every setting has a `TABML_` environment variable. A bad value stops the server at
start with the variable, the value and the rule, never at the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tabml.contract import OutOfRange

ENV_PREFIX = "TABML_"

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
# TABML_OUT_OF_RANGE (contract.OutOfRange): a value outside its feature's schema range is
# refused (422, or 400 for V2), as the validate stage refuses such a row in training data;
# or accepted, counted in /metrics and marked in the prediction log.


class SettingsError(ValueError):
    """An environment variable holds a value the server cannot run with."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    # 0 lets the operating system pick a free port; uvicorn's startup line names it.
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    # The folder holding model.onnx and metadata.json, as the export stage writes them.
    model_dir: Path = Path("models")
    max_batch_rows: Annotated[int, Field(ge=1)] = 10_000
    # 16 MiB carries a 10,000-row batch of 30 numeric features with room to spare.
    max_body_bytes: Annotated[int, Field(ge=1)] = 16 * 1024 * 1024
    # From a connection's opening (its first request) or a request's first byte (later
    # ones) to the end of the request's headers; past it the connection is closed.
    header_timeout_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 10.0
    # From a request's start (its headers read) to the last byte of its body. Without a
    # bound, a client that sends headers and part of a body holds its connection and a
    # request slot for as long as it likes; 10 s carries a full 16 MiB body at 14 Mbit/s.
    body_timeout_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 10.0
    # Requests with a body being received or answered at once; more are answered 503 with
    # Retry-After. Each may buffer up to max_body_bytes while its body arrives, so this
    # times that is the most request bodies can hold. The default leaves room for a few
    # hundred stalled bodies (each freed within body_timeout_seconds) beside normal traffic.
    max_concurrent_requests: Annotated[int, Field(ge=1)] = 512
    # How long a connection may sit idle between requests before the server closes it.
    keep_alive_timeout_seconds: Annotated[int, Field(ge=1)] = 5
    log_level: LogLevel = "info"
    workers: Annotated[int, Field(ge=1)] = 1
    # Off by default: uvicorn's access log costs about a fifth of the throughput, and
    # /metrics already counts every request by endpoint and status.
    access_log: bool = False
    # Where sampled predictions go as JSON lines, for `tabml drift --sample`: a file, or
    # "-" for standard output; unset, nowhere.
    prediction_log: Path | None = None
    # One row in a hundred: a logged row costs the server about ten microseconds, an
    # eighth of a single-row request, so logging every tenth row costs a few percent of
    # peak throughput; a hundredth is within the serving benchmark's noise and still
    # gives a drift check thousands of rows a day at a few requests a second.
    prediction_log_sample_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    out_of_range: OutOfRange = "reject"

    @property
    def model_path(self) -> Path:
        return self.model_dir / "model.onnx"

    @property
    def metadata_path(self) -> Path:
        return self.model_dir / "metadata.json"

    @property
    def model_card_path(self) -> Path:
        """Optional: the model card the pipeline's model_card stage writes."""
        return self.model_dir / "model_card.md"


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every `TABML_<SETTING>` variable from `environ` (os.environ by default)."""
    source = os.environ if environ is None else environ
    raw = {
        field: source[env_name(field)]
        for field in Settings.model_fields
        if env_name(field) in source
    }
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        from tabml.validation import problems

        found = []
        for problem in problems(error):
            field = problem.key.split(".")[0] or "?"
            found.append(f"{env_name(field)} = {raw.get(field, '')!r}: {problem.rule}")
        raise SettingsError("; ".join(found)) from None
