"""The command line: known failures become a message and exit status 1, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabml.cli import main
from tabml.config import load_schema
from tabml.stages.ingest import bundled_frame
from tests.tools import run_tool


def test_bad_params_exit_2_naming_the_key(
    tmp_path: Path, repo_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw["train"]["estimator"] = "svm"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    assert main(["--params", str(params), "train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tabml train: error: ")
    assert "train.estimator = 'svm'" in err


def test_unknown_stage_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["deploy"])
    assert caught.value.code == 2
    assert "invalid choice: 'deploy'" in capsys.readouterr().err


def test_ingest_then_validate_through_the_cli(
    tmp_path: Path,
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(repo_root)
    # The bundled data and its schema, whatever data the project's params.yaml names
    # (a project's own data may not be in a checkout without the DVC remote).
    raw_params = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw_params["data"] = {"source": "sklearn", "sklearn_dataset": "breast_cancer", "path": None}
    raw_params["validate"]["schema"] = str(repo_root / "schemas" / "breast_cancer.yaml")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw_params))
    raw, out = tmp_path / "raw.csv", tmp_path / "validated.parquet"
    assert main(["--params", str(params), "ingest", "--out", str(raw)]) == 0
    validate = [
        "--params",
        str(params),
        "validate",
        "--raw",
        str(raw),
        "--out",
        str(out),
        "--report",
        str(tmp_path / "report.json"),
        "--schema-out",
        str(tmp_path / "s.json"),
    ]
    assert main(validate) == 0
    assert "569 rows passed validation" in capsys.readouterr().out

    frame = pd.read_csv(raw)
    frame.loc[3, "mean_radius"] = -4.0
    frame.to_csv(raw, index=False)
    assert main(validate) == 1
    err = capsys.readouterr().err
    assert "column 'mean_radius', rule in_range(0.0, 39.0): 1 bad row(s), e.g. line 5: -4.0" in err


def test_infer_schema_writes_a_loadable_schema(tmp_path: Path) -> None:
    data = tmp_path / "wine.parquet"
    bundled_frame("wine").to_parquet(data)
    out = tmp_path / "schema.yaml"
    assert (
        main(["infer-schema", "--data", str(data), "--target", "cultivar", "--out", str(out)]) == 0
    )
    schema = load_schema(out)
    assert schema.target.classes == ["class_0", "class_1", "class_2"]
    assert len(schema.features) == 13


def test_infer_schema_reads_a_csv_at_its_delimiter(tmp_path: Path) -> None:
    data = tmp_path / "wine.csv"
    bundled_frame("wine").to_csv(data, index=False, sep="\t")
    out = tmp_path / "schema.yaml"
    args = ["infer-schema", "--data", str(data), "--target", "cultivar", "--out", str(out)]
    assert main([*args, "--delimiter", "tab"]) == 0
    assert len(load_schema(out).features) == 13
    out.unlink()
    assert main(args) == 2  # read at commas, the file has one column and no target
    assert not out.exists()


def test_infer_schema_refuses_a_target_the_file_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x,y\n1,a\n2,b\n")
    out = tmp_path / "schema.yaml"
    assert main(["infer-schema", "--data", str(data), "--target", "nope", "--out", str(out)]) == 2
    assert "--target 'nope': no such column" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("absent.csv", None, "no such file"),
        ("d.txt", b"x,y\n1,a\n", "must be a CSV (.csv) or Parquet (.parquet) file"),
        ("empty.csv", b"", "must not be empty (no header, no rows)"),
        ("header.csv", b"x,y\n", "must hold at least one data row (it has a header only)"),
        ("quote.csv", b'x,y\n1,"a\n', "must be a readable CSV file (Error tokenizing data."),
        ("latin1.csv", "x,y\n1,\xe9t\xe9\n".encode("latin-1"), "must be a readable CSV file"),
        ("fake.parquet", b"PAR1 not really", "must be a readable Parquet file"),
    ],
)
def test_infer_schema_names_a_file_it_cannot_read_and_the_rule(
    tmp_path: Path,
    name: str,
    content: bytes | None,
    rule: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / name
    if content is not None:
        data.write_bytes(content)
    out = tmp_path / "schema.yaml"
    assert main(["infer-schema", "--data", str(data), "--target", "y", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tabml infer-schema: error: --data {str(data)!r}: {rule}"), err
    assert not out.exists()


def test_report_exits_1_when_the_gate_fails(
    tmp_path: Path,
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "metrics").mkdir()
    champion = json.loads((repo_root / "metrics/metrics.json").read_text())
    (tmp_path / "metrics/metrics.json").write_text(json.dumps(champion))
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t.invalid",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "champion"]):
        run_tool(["git", *command], cwd=tmp_path)
    challenger = {**champion, "roc_auc": champion["roc_auc"] - 0.1}
    (tmp_path / "metrics/metrics.json").write_text(json.dumps(challenger))
    monkeypatch.chdir(tmp_path)

    assert main(["report", "--base", "main", "--summary", "summary.json"]) == 1
    assert "quality gate failed" in capsys.readouterr().err
    assert "❌ quality gate failed" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "summary.json").read_text())["passed"] is False

    assert main(["report", "--base", "main", "--metrics", str(tmp_path / "metrics/x.json")]) == 2
    assert "must be relative to the repository root" in capsys.readouterr().err
