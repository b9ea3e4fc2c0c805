"""Command-line entry points: what dvc.yaml, the Makefile and the workflows call.

Each subcommand reads params.yaml once through `tabml.config`, hands typed values to
one stage's `run`, and turns the stage's known failures into a one-line-per-problem
message and exit status 1. Paths default to the ones dvc.yaml wires.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tabml.config import DELIMITERS, Params, load_params, load_schema
from tabml.errors import InputError, PipelineError

if TYPE_CHECKING:
    from tabml.monitor.github import GitHubClient

Handler = Callable[[argparse.Namespace, Params], str]
# The split stage's outputs by name, as dvc.yaml wires them; drift.reference names one.
SPLIT_OUTPUTS = {"train": "data/split/train.parquet", "test": "data/split/test.parquet"}


def _ingest(args: argparse.Namespace, params: Params) -> str:
    from tabml.stages import ingest

    ingest.ingest(params.data, Path.cwd(), args.out)
    return f"wrote {args.out}"


@contextmanager
def _hypothesis_unimportable() -> Iterator[None]:
    """Imports in the block find no hypothesis, unless it is already imported.

    pandera imports hypothesis, when installed, for data synthesis, which validation
    never does; without it pandera leaves that feature out. Its import is 0.12 of the
    validate stage's 0.9 CPU seconds. Where hypothesis is already imported (the test
    suite) nothing changes.
    """
    blocked = "hypothesis" not in sys.modules
    if blocked:
        sys.modules["hypothesis"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        if blocked:
            del sys.modules["hypothesis"]


def _validate(args: argparse.Namespace, params: Params) -> str:
    # pandera loads its pandas backend's modules during the first validation.
    with _hypothesis_unimportable():
        from tabml.stages import validate

        schema = load_schema(params.validate_.schema_path)
        report = validate.run(
            args.raw,
            schema,
            params.validate_,
            args.out,
            args.report,
            args.schema_out,
            delimiter=params.data.delimiter,
        )
    return report.describe()


def _split(args: argparse.Namespace, params: Params) -> str:
    from tabml.stages import split

    target = load_schema(args.schema).target.name
    n_train, n_test = split.run(args.validated, target, params.split, args.train, args.test)
    return f"split into {n_train} train and {n_test} test rows"


def _train(args: argparse.Namespace, params: Params) -> str:
    from tabml.stages import train

    train.run(
        args.train,
        load_schema(args.schema),
        params.train,
        args.model,
        graph_out=args.graph,
        opset=params.export.target_opset,
    )
    return f"trained {params.train.estimator}, wrote {args.model} and {args.graph}"


def _evaluate(args: argparse.Namespace, params: Params) -> str:
    from tabml.stages import evaluate

    result = evaluate.run(
        args.model,
        args.test,
        load_schema(args.schema),
        params.evaluate,
        args.metrics,
        args.plots,
        graph_path=args.graph,
        parity_tolerance=params.export.parity_tolerance,
        parity_out=args.parity,
        predictions_out=args.predictions,
    )
    return json.dumps(result.metrics)


def _export(args: argparse.Namespace, params: Params) -> str:
    from tabml.stages import export

    metadata = export.run(
        graph_path=args.graph,
        parity_path=args.parity,
        test_path=args.test,
        raw_path=args.raw,
        validated_path=args.validated,
        metrics_path=args.metrics,
        schema=load_schema(args.schema),
        params=params,
        onnx_out=args.onnx,
        metadata_out=args.metadata,
    )
    parity = metadata["parity"]
    return (
        f"exported {args.onnx} (version {metadata['model']['version']}); "
        f"parity max |diff| {parity['max_abs_diff']:.2e} on {parity['rows']} rows"
    )


def _model_card(args: argparse.Namespace, params: Params) -> str:
    from tabml.stages import model_card

    card = model_card.run(
        predictions_path=args.predictions,
        train_path=args.train,
        test_path=args.test,
        schema=load_schema(args.schema),
        params=params,
        metadata_path=args.metadata,
        importance_path=args.importance,
        card_out=args.out,
        json_out=args.json,
    )
    return f"wrote {args.out} and {args.json} for model {card.model_version}"


def _drift(args: argparse.Namespace, params: Params) -> str:
    from tabml.monitor import check

    outcome = check.run(
        sample_path=args.sample,
        reference_path=args.reference or Path(SPLIT_OUTPUTS[params.drift.reference]),
        model_path=args.model,
        schema=load_schema(args.schema),
        metrics_path=args.metrics,
        params=params.drift,
        json_out=args.json_out,
        html_out=args.html_out,
        fail_on_drift=args.fail_on_drift,
    )
    return f"{outcome.describe()} ({args.json_out}, {args.html_out})"


def _check_repository(repo: str) -> None:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise InputError(f"--repo {repo!r}: must be OWNER/NAME")


def _github_client(args: argparse.Namespace, without_token: str) -> GitHubClient:
    """A client for --api-url and --repo with the token in $GITHUB_TOKEN."""
    import os

    from tabml.monitor.github import GitHubClient

    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        raise InputError(f"GITHUB_TOKEN is not set; {without_token}")
    return GitHubClient(args.api_url, args.repo, token)


def _drift_issue(args: argparse.Namespace) -> str:
    from tabml.monitor.issue import file_or_update, issue_body, issue_title

    try:
        summary = json.loads(args.summary.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"--summary {args.summary}: no such file; run `tabml drift` first"
        ) from None
    except json.JSONDecodeError as error:
        raise InputError(f"--summary {args.summary}: not valid JSON: {error}") from None
    _check_repository(args.repo)
    if not summary.get("drift_detected"):
        return "no drift; no issue filed"
    action, number = file_or_update(
        _github_client(args, "the issue cannot be filed"),
        issue_title(summary),
        issue_body(summary, args.run_url, args.sample_name),
        args.label,
    )
    return f"{action} issue #{number}"


def _retrain_pull(args: argparse.Namespace) -> str:
    from tabml.monitor.retrain import TITLE, open_or_update, pull_body

    _check_repository(args.repo)
    if not args.changed:
        raise InputError("--changed: no files; a retrain that changed nothing trains nothing")
    body = pull_body(args.sample_name, args.changed, args.issue, args.run_url, args.base)
    action, number = open_or_update(
        _github_client(args, "the pull request cannot be opened"),
        args.branch,
        args.base,
        TITLE,
        body,
    )
    return f"{action} pull request #{number} from {args.branch} into {args.base}"


def _refresh_data(args: argparse.Namespace) -> str:
    from tabml.monitor import refresh

    return refresh.run(Path.cwd(), args.refresh_command or None).describe()


def _report(args: argparse.Namespace, params: Params) -> str:
    from tabml.report import verdict
    from tabml.report.sources import ReportSources

    sources = ReportSources(
        root=Path.cwd(),
        base=args.base,
        new_ref=args.new_ref,
        params=params,
        params_path=str(args.params),
        metrics_path=str(args.metrics),
        roc_path=str(args.roc),
        artifact_url=args.artifact_url,
    )
    verdict.run(sources, out=args.out, summary_out=args.summary)
    return f"quality gate passed against {args.base}; report in {args.out}"


def _infer_schema(args: argparse.Namespace) -> str:
    from tabml.schema_infer import infer_schema, schema_file_text
    from tabml.tables import read_table

    frame = read_table(args.data, field="--data", delimiter=DELIMITERS[args.delimiter])
    if args.target not in frame.columns:
        raise InputError(
            f"--target {args.target!r}: no such column in {args.data}; "
            f"columns are {[str(c) for c in frame.columns]}"
        )
    schema = infer_schema(frame, args.target)
    text = schema_file_text(schema, command="tabml infer-schema", source=str(args.data))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return f"wrote {args.out} ({len(schema.features)} features, target {args.target!r})"


def _predict(args: argparse.Namespace, params: Params) -> str:
    from tabml.score.command import score

    return score(args, params.score)


def _init(args: argparse.Namespace) -> str:
    from tabml.adopt import command

    return command.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tabml", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--params",
        type=Path,
        default=Path("params.yaml"),
        help="the params file (default: params.yaml)",
    )
    stages = parser.add_subparsers(dest="command", required=True, metavar="STAGE")

    def stage(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = stages.add_parser(name, help=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def path(sub: argparse.ArgumentParser, flag: str, default: str) -> None:
        sub.add_argument(flag, type=Path, default=Path(default), help=f"(default: {default})")

    raw, validated, resolved = (
        "data/raw/dataset.csv",
        "data/validated/dataset.parquet",
        "data/validated/schema.json",
    )
    train_data, test_data, model = (
        SPLIT_OUTPUTS["train"],
        SPLIT_OUTPUTS["test"],
        "models/model.joblib",
    )
    metrics = "metrics/metrics.json"
    # evaluate's per-row predictions on the test split, which model_card reads.
    predictions = "reports/test_predictions.parquet"
    # The pipeline's ONNX graph as train converts it, and evaluate's check of it.
    graph, parity = "models/pipeline.onnx", "reports/parity.json"

    sub = stages.add_parser(
        "init",
        help="make this fresh copy of the template your project: rename, retarget, run once",
        description=(
            "Rename the package, point params.yaml at your data with an inferred schema, "
            "dvc add the data, set the DVC remote, run the pipeline and commit. Missing "
            "flags are asked for on a terminal. Safe to run again with the same flags."
        ),
    )
    sub.set_defaults(handler=None, plain_handler=_init)
    from tabml.adopt import add_arguments

    add_arguments(sub)
    sub = stages.add_parser("infer-schema", help="write a first data schema inferred from a file")
    sub.set_defaults(handler=None, plain_handler=_infer_schema)
    sub.add_argument("--data", type=Path, required=True, help="CSV or Parquet file")
    sub.add_argument("--target", required=True, help="the label column")
    sub.add_argument("--out", type=Path, required=True, help="the schema YAML to write")
    sub.add_argument(
        "--delimiter",
        choices=list(DELIMITERS),
        default=",",
        help="a CSV file's field separator, as params.yaml's data.delimiter (default: ,)",
    )
    sub = stage(
        "report",
        _report,
        "compare metrics and params with a base revision; exit 1 if the gate fails",
    )
    sub.add_argument("--base", required=True, help="the champion's git revision, e.g. main")
    sub.add_argument("--new-ref", default="this work tree", help="how to name the challenger")
    path(sub, "--out", "report.md")
    sub.add_argument("--summary", type=Path, default=None, help="also write the verdict as JSON")
    sub.add_argument("--artifact-url", default=None, help="link to the uploaded plots")
    path(sub, "--metrics", metrics)
    path(sub, "--roc", "plots/roc.json")
    sub = stage("ingest", _ingest, "materialise the raw dataset named in params.yaml")
    path(sub, "--out", raw)
    sub = stage("validate", _validate, "check the raw data against the schema and rules")
    path(sub, "--raw", raw)
    path(sub, "--out", validated)
    path(sub, "--report", "reports/validation.json")
    path(sub, "--schema-out", resolved)
    sub = stage("split", _split, "stratified, seeded train/test split")
    path(sub, "--validated", validated)
    path(sub, "--schema", resolved)
    path(sub, "--train", train_data)
    path(sub, "--test", test_data)
    sub = stage("train", _train, "fit the preprocessing + estimator pipeline, convert it to ONNX")
    path(sub, "--train", train_data)
    path(sub, "--schema", resolved)
    path(sub, "--model", model)
    path(sub, "--graph", graph)
    sub = stage("evaluate", _evaluate, "test-set metrics, plot data, ONNX parity check")
    path(sub, "--model", model)
    path(sub, "--graph", graph)
    path(sub, "--test", test_data)
    path(sub, "--schema", resolved)
    path(sub, "--metrics", metrics)
    path(sub, "--plots", "plots")
    path(sub, "--parity", parity)
    path(sub, "--predictions", predictions)
    sub = stage("export", _export, "the checked ONNX model, and its metadata")
    path(sub, "--graph", graph)
    path(sub, "--parity", parity)
    path(sub, "--test", test_data)
    path(sub, "--raw", raw)
    path(sub, "--validated", validated)
    path(sub, "--metrics", metrics)
    path(sub, "--schema", resolved)
    path(sub, "--onnx", "models/model.onnx")
    path(sub, "--metadata", "models/metadata.json")
    sub = stage(
        "model-card",
        _model_card,
        "the model card: metrics with intervals, slices, fairness, importance",
    )
    path(sub, "--predictions", predictions)
    path(sub, "--train", train_data)
    path(sub, "--test", test_data)
    path(sub, "--schema", resolved)
    path(sub, "--metadata", "models/metadata.json")
    path(sub, "--importance", "plots/feature_importance.json")
    path(sub, "--out", "models/model_card.md")
    path(sub, "--json", "reports/model_card.json")
    sub = stage("drift", _drift, "compare a production sample with the training reference")
    sub.add_argument(
        "--sample",
        type=Path,
        required=True,
        help="logged predictions (.jsonl), or a .csv or .parquet file",
    )
    sub.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="reference rows (default: the split that drift.reference names)",
    )
    path(sub, "--model", model)
    path(sub, "--schema", resolved)
    path(sub, "--metrics", metrics)
    path(sub, "--json-out", "reports/drift.json")
    path(sub, "--html-out", "reports/drift.html")
    sub.add_argument("--fail-on-drift", action="store_true", help="exit 1 when drift is found")
    sub = stage("predict", _predict, "score a CSV or Parquet table in chunks with the ONNX model")
    from tabml.score.command import add_arguments as add_score_arguments

    add_score_arguments(sub, defaults_from="params.yaml's score")
    sub = stages.add_parser("drift-issue", help="file drift as a GitHub issue, or update it")
    sub.set_defaults(handler=None, plain_handler=_drift_issue)
    path(sub, "--summary", "reports/drift.json")
    sub.add_argument("--repo", required=True, help="OWNER/NAME")
    sub.add_argument(
        "--api-url",
        default="https://api.github.com",
        help="the REST API root ($GITHUB_API_URL in a workflow)",
    )
    sub.add_argument("--label", default="drift")
    sub.add_argument("--run-url", default=None, help="link to the run with the HTML report")
    sub.add_argument("--sample-name", default="production sample")
    sub = stages.add_parser(
        "retrain-pr", help="open the retraining pull request after drift, or update it"
    )
    sub.set_defaults(handler=None, plain_handler=_retrain_pull)
    sub.add_argument("--repo", required=True, help="OWNER/NAME")
    sub.add_argument(
        "--api-url",
        default="https://api.github.com",
        help="the REST API root ($GITHUB_API_URL in a workflow)",
    )
    sub.add_argument("--branch", required=True, help="the pushed branch with the retrain")
    sub.add_argument("--base", required=True, help="the branch the pull request merges into")
    sub.add_argument("--changed", nargs="+", default=[], help="the files the retrain changed")
    sub.add_argument("--issue", type=int, default=None, help="the drift issue it closes")
    sub.add_argument("--run-url", default=None, help="link to the drift run")
    sub.add_argument("--sample-name", default="production sample")
    sub = stages.add_parser(
        "refresh-data",
        help="new data for a retrain: dvc update every imported source, then --command",
    )
    sub.set_defaults(handler=None, plain_handler=_refresh_data)
    sub.add_argument(
        "--command",
        dest="refresh_command",  # `command` is the subcommand's name
        default="",
        help="a shell command that fetches the project's own new data and ends with "
        "`dvc add PATH` (empty: none)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.handler is None:
            message = args.plain_handler(args)
        else:
            message = args.handler(args, load_params(args.params))
    except PipelineError as error:
        print(f"tabml {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"tabml {args.command}: {message}")
    return 0
