"""`python -m tabml.score`: score a table in the serving image (the batch CronJob's
command), with the same flags as `tabml predict` and ScoreOptions' defaults."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tabml.errors import PipelineError
from tabml.score.command import add_arguments, score
from tabml.score.options import ScoreOptions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tabml.score", description="Score a CSV or Parquet table in chunks."
    )
    # The image names its model folder in TABML_MODEL_DIR, as it does for serving.
    model_dir = Path(os.environ.get("TABML_MODEL_DIR", "models"))
    add_arguments(parser, defaults_from="ScoreOptions", model_dir=model_dir)
    args = parser.parse_args(argv)
    try:
        message = score(args, ScoreOptions())
    except PipelineError as error:
        print(f"tabml.score: error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"tabml.score: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
