"""Stage modules import heavy libraries where they use them: every stage is a process
of its own under `dvc repro`, and what its module imports is paid on each run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def modules_after_import(module: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after importing `module`."""
    code = (
        f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("tabml.cli", {"sklearn", "pandas", "pandera", "fairlearn", "onnx"}),
        ("tabml.stages.ingest", {"sklearn", "pandas", "numpy"}),
        ("tabml.stages.split", {"sklearn", "pandera"}),
        ("tabml.stages.train", {"sklearn", "joblib", "skl2onnx"}),
        ("tabml.stages.export", {"sklearn", "joblib", "skl2onnx", "onnx", "onnxruntime", "pandas"}),
        ("tabml.stages.model_card", {"sklearn", "fairlearn", "joblib"}),
    ],
)
def test_stage_module_leaves_unused_libraries_unimported(module: str, absent: set[str]) -> None:
    assert modules_after_import(module) & absent == set()


def modules_after_command(argv: list[str], cwd: Path) -> set[str]:
    """The top-level packages a fresh interpreter holds after running `tabml *argv`."""
    code = (
        "import sys\nfrom tabml.cli import main\n"
        f"status = main({argv!r})\n"
        "print(' '.join(sorted({m.split('.')[0] for m, v in sys.modules.items() if v})))\n"
        "raise SystemExit(status)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, check=True, capture_output=True, text=True
    )
    return set(out.stdout.splitlines()[-1].split())


def test_data_stage_commands_leave_unused_libraries_unimported(
    tmp_path: Path, repo_root: Path
) -> None:
    """ingest, validate and split as dvc.yaml runs them, on the bundled data: ingest
    reads scikit-learn's file without importing it, validate keeps pandera from loading
    hypothesis, and none of them loads a model library."""
    raw, validated, schema = tmp_path / "raw.csv", tmp_path / "valid.parquet", tmp_path / "s.json"
    commands = {
        "ingest": (["ingest", "--out", str(raw)], {"sklearn", "pandas", "numpy", "pyarrow"}),
        "validate": (
            [
                *("validate", "--raw", str(raw), "--out", str(validated)),
                *("--report", str(tmp_path / "report.json"), "--schema-out", str(schema)),
            ],
            {"sklearn", "hypothesis", "onnx", "joblib"},
        ),
        "split": (
            [
                *("split", "--validated", str(validated), "--schema", str(schema)),
                *("--train", str(tmp_path / "train.parquet")),
                *("--test", str(tmp_path / "test.parquet")),
            ],
            {"sklearn", "pandera", "hypothesis", "onnx", "joblib"},
        ),
    }
    for name, (argv, absent) in commands.items():
        loaded = modules_after_command(
            ["--params", str(repo_root / "params.yaml"), *argv], repo_root
        )
        assert loaded & absent == set(), name


def test_model_card_command_loads_no_model_library(tmp_path: Path, repo_root: Path) -> None:
    """The card reads each test row's predicted class from evaluate's predictions; it
    never loads the model, so neither scikit-learn nor fairlearn (which imports it) is
    imported."""
    import json

    import numpy as np
    import pandas as pd

    from tabml.config import load_schema
    from tabml.stages.ingest import bundled_frame

    frame = bundled_frame("breast_cancer")
    schema = load_schema(repo_root / "schemas" / "breast_cancer.yaml")
    train, test = frame.iloc[:455], frame.iloc[455:].reset_index(drop=True)
    train.to_parquet(tmp_path / "train.parquet")
    test.to_parquet(tmp_path / "test.parquet")
    predicted = np.random.default_rng(0).choice(schema.target.classes, len(test))
    predictions = {"actual": test[schema.target.name].astype(str), "predicted": predicted}
    pd.DataFrame(predictions).to_parquet(tmp_path / "predictions.parquet")
    metadata = {
        "model": {"version": "m" * 32},
        "data": {"version": "d" * 32, "rows": len(frame)},
        "metrics": {"accuracy": 0.9, "test_rows": len(test)},
    }
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    (tmp_path / "importance.json").write_text("[]")
    # The project's params, with the card's slices and sensitive attribute named from
    # this data (a project made with `tabml init` names its own data's columns there).
    params = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    params["model_card"].update(slices=["mean_radius", "mean_texture"])
    params["model_card"].update(sensitive_attribute="mean_radius")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    argv = [
        *("--params", str(tmp_path / "params.yaml"), "model-card"),
        *("--predictions", str(tmp_path / "predictions.parquet")),
        *("--train", str(tmp_path / "train.parquet"), "--test", str(tmp_path / "test.parquet")),
        *("--schema", str(repo_root / "schemas" / "breast_cancer.yaml")),
        *("--metadata", str(tmp_path / "metadata.json")),
        *("--importance", str(tmp_path / "importance.json")),
        *("--out", str(tmp_path / "card.md"), "--json", str(tmp_path / "card.json")),
    ]
    loaded = modules_after_command(argv, repo_root)
    assert loaded & {"sklearn", "fairlearn", "joblib", "onnx", "onnxruntime"} == set()
    assert (tmp_path / "card.md").is_file()


def test_export_command_loads_no_model_library(tmp_path: Path, repo_root: Path) -> None:
    """export publishes the graph train converted, with evaluate's parity report: it
    never loads the scikit-learn pipeline, nor converts or runs the graph, and it
    counts the labels with pyarrow alone."""
    import json

    from tabml.parity_report import Parity, build_report
    from tabml.stages.ingest import bundled_frame

    frame = bundled_frame("breast_cancer")
    frame.to_csv(tmp_path / "raw.csv", index=False)
    frame.to_parquet(tmp_path / "validated.parquet")
    test = frame.iloc[455:].reset_index(drop=True)
    test.to_parquet(tmp_path / "test.parquet")
    (tmp_path / "pipeline.onnx").write_bytes(b"graph")
    parity = Parity(rows=len(test), max_abs_diff=1e-7, worst_row=0, labels_equal=True)
    classes = ["benign", "malignant"]
    report = build_report(parity, tolerance=1e-5, classes=classes, graph=b"graph")
    (tmp_path / "parity.json").write_text(json.dumps(report))
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.9}')
    argv = [
        *("--params", str(repo_root / "params.yaml"), "export"),
        *("--graph", str(tmp_path / "pipeline.onnx"), "--parity", str(tmp_path / "parity.json")),
        *("--test", str(tmp_path / "test.parquet"), "--raw", str(tmp_path / "raw.csv")),
        *("--validated", str(tmp_path / "validated.parquet")),
        *("--metrics", str(tmp_path / "metrics.json")),
        *("--schema", str(repo_root / "schemas" / "breast_cancer.yaml")),
        *("--onnx", str(tmp_path / "model.onnx"), "--metadata", str(tmp_path / "meta.json")),
    ]
    loaded = modules_after_command(argv, repo_root)
    absent = {"sklearn", "skl2onnx", "joblib", "onnx", "onnxruntime", "scipy", "pandas"}
    assert loaded & absent == set()
    assert (tmp_path / "model.onnx").read_bytes() == b"graph"


def test_dvc_reads_yaml_in_c_and_reads_this_projects_files_alike(repo_root: Path) -> None:
    """`dvc repro` reads params.yaml for each params dependency it checks (45 times in a
    cold run of this pipeline) and dvc.lock on every stage, with ruamel.yaml's safe
    loader: in C when ruamel.yaml.clib is installed (a dependency of this project, as
    ruamel.yaml 0.19 no longer requires it), a quarter of the pure-Python time here. The
    C parser reads the project's files into the same values."""
    from ruamel.yaml import YAML
    from ruamel.yaml.main import CParser

    assert CParser is not None, "ruamel.yaml.clib is not installed: DVC parses YAML in Python"
    assert YAML(typ="safe").Parser is CParser
    paths = [repo_root / "params.yaml", repo_root / "dvc.yaml"]
    if (repo_root / "dvc.lock").is_file():  # none before a project's first `dvc repro`
        paths.append(repo_root / "dvc.lock")
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert YAML(typ="safe").load(text) == YAML(typ="safe", pure=True).load(text), path.name
