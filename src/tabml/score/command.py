"""The flags of a scoring run, shared by `tabml predict` and
`python -m tabml.score`.

A flag left out takes its value from the options the caller passes: params.yaml's
`score` section for `tabml predict`; ScoreOptions' defaults for
`python -m tabml.score` in the serving image, which has no params.yaml.

The CLI builds its parser for every command, so this module imports the scoring run
(serving's decoder, onnxruntime, the serving libraries) only when a run starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

from tabml.contract import OutOfRange
from tabml.errors import InputError
from tabml.score.options import BadRows, ScoreOptions

# ScoreOptions' fields a flag may set; the flag is the field with dashes.
OPTION_FLAGS = ("chunk_rows", "bad_rows", "out_of_range")


def add_arguments(
    parser: argparse.ArgumentParser, *, defaults_from: str, model_dir: Path = Path("models")
) -> None:
    """The flags; `defaults_from` says, in the help, where a left-out option comes from."""
    parser.add_argument("--input", type=Path, required=True, help="the CSV or Parquet table")
    parser.add_argument(
        "--output", type=Path, required=True, help="the predictions (.csv or .parquet)"
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=model_dir,
        help=f"the folder with model.onnx and metadata.json (default: {model_dir})",
    )
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=None,
        help=f"rows read and scored at once (default: {defaults_from}.chunk_rows)",
    )
    parser.add_argument(
        "--bad-rows",
        choices=get_args(BadRows),
        default=None,
        help="a row that breaks the feature schema stops the run (fail) or is written "
        f"aside with its problems (set_aside) (default: {defaults_from}.bad_rows)",
    )
    parser.add_argument(
        "--out-of-range",
        choices=get_args(OutOfRange),
        default=None,
        help="a value outside its schema range is refused (reject) or scored and counted "
        f"(count) (default: {defaults_from}.out_of_range)",
    )
    parser.add_argument(
        "--refused",
        type=Path,
        default=None,
        help="where set-aside rows go, as JSON lines (default: OUTPUT's stem + .refused.jsonl)",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        default=None,
        help="the run's summary JSON (default: OUTPUT's stem + .summary.json)",
    )


def options_from(args: argparse.Namespace, base: ScoreOptions) -> ScoreOptions:
    """`base` with the options the flags set; an InputError naming the flag, the value
    and the rule."""
    from pydantic import ValidationError

    from tabml.validation import problems

    given = {name: getattr(args, name) for name in OPTION_FLAGS if getattr(args, name) is not None}
    try:
        return ScoreOptions.model_validate({**base.model_dump(), **given})
    except ValidationError as error:
        found = "; ".join(
            f"--{problem.key.replace('_', '-')} {problem.value!r}: {problem.rule}"
            for problem in problems(error)
        )
        raise InputError(found) from None


def score(args: argparse.Namespace, base: ScoreOptions) -> str:
    from tabml.score.run import ScorePaths, run

    paths = ScorePaths(args.input, args.output, args.model_dir, args.refused, args.summary)
    summary: dict[str, Any] = run(paths, options_from(args, base))
    refused = summary["rows_refused"]
    aside = f", {refused} refused rows in {summary['refused_rows']}" if refused else ""
    return (
        f"scored {summary['rows_scored']} rows with model {summary['model']['version']} "
        f"into {args.output}{aside}; summary in {paths.summary_path}"
    )
