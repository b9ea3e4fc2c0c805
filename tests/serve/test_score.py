"""Batch scoring (tabml.score): tables in chunks, every refused row with the API's words,
predictions equal to the API's for the same rows."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tabml.cli import main
from tabml.config import ConfigError, parse_params
from tabml.errors import InputError
from tabml.score.options import ScoreOptions
from tabml.score.run import RefusedRowsError, ScorePaths, run
from tests.serve.conftest import REPO_ROOT, ExportedModel, make_client

# MIXED_SCHEMA (conftest): size float in [0, 100], nullable; count int in [0, 50];
# colour one of red, green, blue, not nullable.
HEADER = ["size", "count", "colour"]
GOOD = ["12.5", "3", "red"]
SET_ASIDE = ScoreOptions(bad_rows="set_aside")


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def score(
    model: ExportedModel, table: Path, options: ScoreOptions = SET_ASIDE, suffix: str = ".csv"
) -> tuple[dict[str, Any], Path]:
    out = table.with_name(f"predictions{suffix}")
    return run(ScorePaths(table, out, model.directory), options), out


def refused_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def api_problems(model: ExportedModel, body: bytes, **settings: Any) -> list[dict[str, Any]]:
    with make_client(model, **settings) as client:
        reply = client.request("POST", "/predict", body)
    assert reply.status == 422, reply.body
    details: list[dict[str, Any]] = reply.json()["details"]
    return details


# --- a refused row gets the API's problem: field, value and rule ---------------------------


@pytest.mark.parametrize(
    ("column", "cell", "json_value"),
    [
        pytest.param("size", "abc", '"abc"', id="text-for-a-number"),
        pytest.param("count", "", "null", id="null-where-not-nullable"),
        pytest.param("size", "nan", "NaN", id="nan"),
        pytest.param("count", "-inf", "-Infinity", id="minus-infinity"),
        pytest.param("size", "1e400", "1e400", id="overflows-float64"),
        pytest.param("size", "1e39", "1e39", id="overflows-float32"),
        pytest.param("size", "100.5", "100.5", id="above-the-schema-range"),
        pytest.param("count", "-1", "-1", id="below-the-schema-range"),
        pytest.param("count", "2.5", "2.5", id="not-whole-for-an-int"),
        pytest.param("colour", "pink", '"pink"', id="unknown-category"),
        pytest.param("colour", "", "null", id="null-category"),
    ],
)
def test_a_refused_row_gets_the_apis_problem(
    mixed_model: ExportedModel, tmp_path: Path, column: str, cell: str, json_value: str
) -> None:
    bad = list(GOOD)
    bad[HEADER.index(column)] = cell
    table = write_csv(tmp_path / "in.csv", [GOOD, bad, GOOD])
    summary, out = score(mixed_model, table)
    assert (summary["rows_scored"], summary["rows_refused"]) == (2, 1)
    assert pd.read_csv(out)["row"].tolist() == [1, 3]
    [refused] = refused_lines(Path(summary["refused_rows"]))
    assert refused["row"] == 2
    values = {"size": "12.5", "count": "3", "colour": '"red"', column: json_value}
    body = "{" + ", ".join(f'"{name}": {value}' for name, value in values.items()) + "}"
    assert refused["problems"] == api_problems(mixed_model, body.encode())


def test_every_problem_of_a_row_is_named(mixed_model: ExportedModel, tmp_path: Path) -> None:
    table = write_csv(tmp_path / "in.csv", [["x", "3.5", "pink"], GOOD])
    summary, _ = score(mixed_model, table)
    [refused] = refused_lines(Path(summary["refused_rows"]))
    assert [problem["field"] for problem in refused["problems"]] == ["size", "count", "colour"]
    assert refused["values"] == {"size": "x", "count": 3.5, "colour": "pink"}


def test_an_empty_nullable_cell_is_null_and_scored(
    mixed_model: ExportedModel, tmp_path: Path
) -> None:
    table = write_csv(tmp_path / "in.csv", [["", "3", "blue"]])
    summary, _ = score(mixed_model, table, ScoreOptions())
    assert summary["rows_scored"] == 1


# --- chunks ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 4, 7, 100])
def test_chunk_boundaries_change_nothing(
    mixed_model: ExportedModel, tmp_path: Path, chunk_rows: int
) -> None:
    rows = [GOOD, ["1", "2", "green"], ["x", "1", "red"], ["99", "50", "blue"]]
    rows += [["50", "0", "nope"], ["0", "0", "red"], ["7.25", "9", "green"]]
    table = write_csv(tmp_path / "in.csv", rows)
    options = ScoreOptions(chunk_rows=chunk_rows, bad_rows="set_aside")
    summary, out = score(mixed_model, table, options)
    written = pd.read_csv(out)
    assert written["row"].tolist() == [1, 2, 4, 6, 7]
    assert [line["row"] for line in refused_lines(Path(summary["refused_rows"]))] == [3, 5]
    one_chunk, _ = score(mixed_model, table, ScoreOptions(chunk_rows=7, bad_rows="set_aside"))
    assert summary["rows_scored"] == one_chunk["rows_scored"] == 5
    with make_client(mixed_model) as client:
        good = [rows[index - 1] for index in written["row"]]
        records = [
            {"size": float(size), "count": int(count), "colour": colour}
            for size, count, colour in good
        ]
        reply = client.post("/predict", records).json()["predictions"]
    assert written["label"].tolist() == [prediction["label"] for prediction in reply]


# --- the bad-row policy --------------------------------------------------------------------


def test_fail_stops_at_the_first_refused_rows_and_leaves_no_output(
    mixed_model: ExportedModel, tmp_path: Path
) -> None:
    table = write_csv(tmp_path / "in.csv", [GOOD, ["x", "3", "red"], GOOD])
    with pytest.raises(RefusedRowsError, match=r'row 2: size = "x": must be a number'):
        score(mixed_model, table, ScoreOptions(bad_rows="fail", chunk_rows=2))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv"]


def test_fail_through_the_cli_exits_1_naming_row_field_and_rule(
    mixed_model: ExportedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_csv(tmp_path / "in.csv", [GOOD, ["5", "3", "pink"]])
    out = tmp_path / "out.csv"
    argv = ["--params", str(REPO_ROOT / "params.yaml"), "predict", "--input", str(table)]
    argv += ["--output", str(out), "--model-dir", str(mixed_model.directory)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "row 2: colour = \"pink\": must be one of ['blue', 'green', 'red']" in err
    assert not out.exists()
    assert main([*argv, "--bad-rows", "set_aside"]) == 0
    assert "scored 1 rows" in capsys.readouterr().out
    assert (tmp_path / "out.refused.jsonl").is_file()


def test_a_later_clean_run_removes_the_stale_refused_file(
    mixed_model: ExportedModel, tmp_path: Path
) -> None:
    score(mixed_model, write_csv(tmp_path / "in.csv", [["x", "3", "red"]]))
    assert (tmp_path / "predictions.refused.jsonl").is_file()
    summary, _ = score(mixed_model, write_csv(tmp_path / "in.csv", [GOOD]))
    assert summary["refused_rows"] is None
    assert not (tmp_path / "predictions.refused.jsonl").exists()


def test_the_count_policy_scores_values_outside_their_range(
    mixed_model: ExportedModel, tmp_path: Path
) -> None:
    table = write_csv(tmp_path / "in.csv", [["150", "60", "red"], GOOD])
    summary, _ = score(mixed_model, table, ScoreOptions(out_of_range="count"))
    assert (summary["rows_scored"], summary["rows_refused"]) == (2, 0)
    assert summary["values_outside_range"] == 2


def test_rows_whose_probabilities_overflow_are_refused_with_the_apis_words(
    breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    rows = breast_cancer_model.feature_rows(3)
    rows[1] = dict.fromkeys(rows[1], 3.0e38)
    table = tmp_path / "in.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    options = ScoreOptions(out_of_range="count", bad_rows="set_aside")
    summary, out = score(breast_cancer_model, table, options)
    assert pd.read_csv(out)["row"].tolist() == [1, 3]
    [refused] = refused_lines(Path(summary["refused_rows"]))
    assert refused["row"] == 2
    expected = api_problems(breast_cancer_model, json.dumps(rows[1]).encode(), out_of_range="count")
    assert refused["problems"] == expected
    assert "probabilities are not finite" in refused["problems"][0]["rule"]


# --- predictions equal the API's -----------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predictions_equal_the_apis_for_the_same_rows(
    breast_cancer_model: ExportedModel, tmp_path: Path, suffix: str
) -> None:
    rows = breast_cancer_model.feature_rows()
    frame = pd.DataFrame(rows)
    table = tmp_path / f"in{suffix}"
    if suffix == ".csv":
        # repr-exact floats: the CSV carries the values the API receives as JSON.
        frame.to_csv(table, index=False, float_format="%.17g")
    else:
        frame.to_parquet(table, index=False)
    summary, out = score(breast_cancer_model, table, ScoreOptions(chunk_rows=100), suffix)
    written = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    with make_client(breast_cancer_model) as client:
        reply = client.post("/predict", rows).json()
    assert summary["rows_scored"] == len(rows) == len(written)
    assert written["row"].tolist() == list(range(1, len(rows) + 1))
    assert written["label"].tolist() == [p["label"] for p in reply["predictions"]]
    classes = breast_cancer_model.metadata["target"]["classes"]
    served = np.array(
        [[p["probabilities"][name] for name in classes] for p in reply["predictions"]]
    )
    ours = written[[f"probability_{name}" for name in classes]].to_numpy(dtype=np.float64)
    assert np.array_equal(ours.astype(np.float32), served.astype(np.float32))
    assert set(written["model_version"]) == {reply["model_version"]}


def test_the_summary_names_the_model_and_both_data_versions(
    mixed_model: ExportedModel, tmp_path: Path
) -> None:
    table = write_csv(tmp_path / "in.csv", [GOOD])
    summary, _ = score(mixed_model, table)
    assert summary["model"] == {
        "name": mixed_model.metadata["model"]["name"],
        "version": mixed_model.metadata["model"]["version"],
    }
    assert summary["training_data"] == {"version": "test-data-version"}
    import hashlib

    assert summary["input"]["sha256"] == hashlib.sha256(table.read_bytes()).hexdigest()
    assert json.loads((tmp_path / "predictions.summary.json").read_text()) == summary


# --- Parquet ---------------------------------------------------------------------------


def test_parquet_nulls_and_nan_are_null_and_other_types_get_the_apis_words(
    mixed_model: ExportedModel, tmp_path: Path
) -> None:
    table = tmp_path / "in.parquet"
    pd.DataFrame(
        {
            "size": [math.nan, None, 5.0],
            "count": pd.array([3, 4, None], dtype="Int64"),
            "colour": ["red", "blue", "green"],
            "id": ["a", "b", "c"],  # not a feature: not read
        }
    ).to_parquet(table, index=False)
    summary, out = score(mixed_model, table, SET_ASIDE, ".parquet")
    assert pd.read_parquet(out)["row"].tolist() == [1, 2]
    [refused] = refused_lines(Path(summary["refused_rows"]))
    assert refused["problems"] == api_problems(
        mixed_model, b'{"size": 5.0, "count": null, "colour": "green"}'
    )


def test_a_boolean_column_is_refused_as_the_api_refuses_a_boolean(
    mixed_model: ExportedModel, tmp_path: Path
) -> None:
    table = tmp_path / "in.parquet"
    pd.DataFrame({"size": [True], "count": [1], "colour": ["red"]}).to_parquet(table)
    summary, _ = score(mixed_model, table)
    [refused] = refused_lines(Path(summary["refused_rows"]))
    assert refused["problems"] == api_problems(
        mixed_model, b'{"size": true, "count": 1, "colour": "red"}'
    )


def test_parquet_without_pyarrow_names_the_rule(
    mixed_model: ExportedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tmp_path / "in.parquet"
    pd.DataFrame({"size": [1.0], "count": [1], "colour": ["red"]}).to_parquet(table)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(InputError, match=r"Parquet needs pyarrow.*use a CSV file"):
        score(mixed_model, table)
    with pytest.raises(InputError, match=r"--output.*Parquet needs pyarrow"):
        score(mixed_model, write_csv(tmp_path / "in.csv", [GOOD]), SET_ASIDE, ".parquet")


# --- tables it cannot score ------------------------------------------------------------------


def test_a_header_only_table_scores_nothing(mixed_model: ExportedModel, tmp_path: Path) -> None:
    summary, out = score(mixed_model, write_csv(tmp_path / "in.csv", []))
    assert (summary["rows_scored"], summary["rows_refused"]) == (0, 0)
    assert pd.read_csv(out).columns.tolist()[:2] == ["row", "label"]


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        pytest.param("", "must not be empty", id="empty"),
        pytest.param("size,colour\n1,red\n", r"lacks the feature columns \['count'\]", id="column"),
        pytest.param("size,count,colour\n1,2\n", "row 1 has 2 fields, the header 3", id="ragged"),
        pytest.param(b"size,count,colour\n\xff,1,red\n", "must be UTF-8", id="encoding"),
    ],
)
def test_a_table_it_cannot_read_is_an_input_error(
    mixed_model: ExportedModel, tmp_path: Path, content: str | bytes, rule: str
) -> None:
    table = tmp_path / "in.csv"
    if isinstance(content, bytes):
        table.write_bytes(content)
    else:
        table.write_text(content)
    with pytest.raises(InputError, match=rule):
        score(mixed_model, table)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv"]


def test_other_columns_are_not_read(mixed_model: ExportedModel, tmp_path: Path) -> None:
    table = write_csv(tmp_path / "in.csv", [["id-1", *GOOD, "yes"]], ["id", *HEADER, "label"])
    summary, _ = score(mixed_model, table, ScoreOptions())
    assert summary["rows_scored"] == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--chunk-rows", "0"], "--chunk-rows 0: Input should be greater than or equal to 1"),
        (["--input", "missing.csv"], "--input 'missing.csv': no such file"),
        (["--output", "out.txt"], "--output 'out.txt': must be a CSV (.csv) or Parquet"),
        (["--model-dir", "nowhere"], "--model-dir 'nowhere': "),
    ],
)
def test_bad_flags_exit_2_naming_flag_value_and_rule(
    mixed_model: ExportedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "in.csv", [GOOD])
    given = dict(zip(flags[::2], flags[1::2], strict=True))
    defaults = {
        "--input": "in.csv",
        "--output": "out.csv",
        "--model-dir": str(mixed_model.directory),
    }
    argv = ["--params", str(REPO_ROOT / "params.yaml"), "predict"]
    for flag, value in {**defaults, **given}.items():
        argv += [flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tabml predict: error: ")
    assert message in err


def test_a_bad_score_section_names_the_key() -> None:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["score"]["bad_rows"] = "drop"
    with pytest.raises(ConfigError, match=r"score.bad_rows = 'drop': Input should be"):
        parse_params(raw)


def test_the_score_section_does_not_change_the_models_settings() -> None:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    changed = {**raw, "score": {"chunk_rows": 5}}
    assert parse_params(raw).model_settings() == parse_params(changed).model_settings()


def test_python_dash_m_tabml_score_runs_as_the_image_runs_it(
    mixed_model: ExportedModel, tmp_path: Path
) -> None:
    table = write_csv(tmp_path / "in.csv", [GOOD, ["x", "1", "red"]])
    env = {**os.environ, "TABML_MODEL_DIR": str(mixed_model.directory)}
    command = [sys.executable, "-m", "tabml.score", "--input", str(table)]
    command += ["--output", str(tmp_path / "out.csv")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert 'row 2: size = "x"' in done.stderr
    done = subprocess.run(
        [*command, "--bad-rows", "set_aside"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tabml.score: scored 1 rows")


def test_scoring_a_csv_imports_only_what_the_serving_image_holds(
    mixed_model: ExportedModel, tmp_path: Path
) -> None:
    """The CronJob runs the serving image, which copies tabml's __init__, contract,
    validation, errors, serve/ and score/ (the Dockerfile) and installs no training
    stack and no pyarrow."""
    table = write_csv(tmp_path / "in.csv", [GOOD])
    code = (
        "import json, sys\n"
        "from tabml.score.__main__ import main\n"
        f"code = main(['--input', {str(table)!r}, '--output', {str(tmp_path / 'o.csv')!r},"
        f" '--model-dir', {str(mixed_model.directory)!r}])\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    status, modules = json.loads(done.stdout.splitlines()[-1])
    assert status == 0
    outside = ("sklearn", "skl2onnx", "dvc", "pandas", "pandera", "pyarrow", "yaml")
    assert [name for name in modules if name.split(".")[0] in outside] == []
    image = ("tabml", "tabml.contract", "tabml.validation", "tabml.errors")
    ours = [name for name in modules if name.startswith("tabml")]
    assert [
        name
        for name in ours
        if name not in image and name.split(".")[:2] not in (["tabml", "serve"], ["tabml", "score"])
    ] == []


def test_other_commands_do_not_import_scoring_or_serving() -> None:
    """Workflows install the CLI without the serving libraries; only `tabml predict`
    needs them, so building the parser must not import them."""
    code = (
        "import json, sys\n"
        "from tabml.cli import build_parser\n"
        "build_parser().parse_args(['train'])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    modules = json.loads(done.stdout)
    heavy = ("tabml.serve", "tabml.score.run", "msgspec", "orjson", "onnxruntime")
    assert [name for name in modules if name.startswith(heavy)] == []


def test_a_csv_with_a_byte_order_mark_is_read(mixed_model: ExportedModel, tmp_path: Path) -> None:
    table = tmp_path / "in.csv"
    table.write_text("\ufeffsize,count,colour\n12.5,3,red\n", encoding="utf-8")
    summary, _ = score(mixed_model, table, ScoreOptions())
    assert summary["rows_scored"] == 1
