"""`python -m tabml.serve`: run the API under uvicorn with settings from the environment."""

from __future__ import annotations

import copy
import sys
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from tabml.serve.prediction_log import STDOUT
from tabml.serve.protocol import HeaderDeadlineProtocol
from tabml.serve.settings import Settings, SettingsError, load_settings


def log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging setup, with the app's own logger sent to the same handler.

    With the prediction log on standard output, uvicorn's access log (which writes
    there too) moves to standard error, so standard output holds JSON lines only."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    if str(settings.prediction_log) == STDOUT:
        config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["tabml"] = {
        "handlers": ["default"],
        "level": settings.log_level.upper().replace("TRACE", "DEBUG"),
        "propagate": False,
    }
    return config


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"tabml.serve: {error}", file=sys.stderr)
        return 2
    uvicorn.run(
        "tabml.serve.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=log_config(settings),
        access_log=settings.access_log,
        lifespan="on",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        # No limit_concurrency: the app bounds requests itself (tabml.serve.limits).
        http=HeaderDeadlineProtocol,
    )
    # uvicorn.run returns after a clean shutdown and exits the process itself on a
    # failed startup (the lifespan message says why).
    return 0


if __name__ == "__main__":
    sys.exit(main())
