"""The command line: known failures become a message and exit status 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabml.cli import main
from tabml.config import load_schema
from tabml.stages.ingest import bundled_frame


def test_bad_params_exit_1_naming_the_key(
    tmp_path: Path, repo_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw["train"]["estimator"] = "svm"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    assert main(["--params", str(params), "train"]) == 1
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
    raw, out = tmp_path / "raw.csv", tmp_path / "validated.parquet"
    assert main(["ingest", "--out", str(raw)]) == 0
    assert (
        main(
            [
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
        )
        == 0
    )
    assert "569 rows passed validation" in capsys.readouterr().out

    frame = pd.read_csv(raw)
    frame.loc[3, "mean_radius"] = -4.0
    frame.to_csv(raw, index=False)
    assert (
        main(
            [
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
        )
        == 1
    )
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


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--data", "absent.csv", "--target", "y"], "--data absent.csv: no such file"),
        (["--data", "{csv}", "--target", "nope"], "--target 'nope': no such column"),
        (["--data", "{txt}", "--target", "y"], "must be a .csv or .parquet file"),
    ],
)
def test_infer_schema_refuses_bad_arguments(
    tmp_path: Path, args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d.csv").write_text("x,y\n1,a\n2,b\n")
    (tmp_path / "d.txt").write_text("x,y\n")
    args = [a.format(csv=tmp_path / "d.csv", txt=tmp_path / "d.txt") for a in args]
    out = tmp_path / "schema.yaml"
    assert main(["infer-schema", *args, "--out", str(out)]) == 1
    assert expected in capsys.readouterr().err
    assert not out.exists()
