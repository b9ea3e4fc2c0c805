"""Batch scoring in the real serving image, run as deploy/batch's CronJob runs it: user
10001, read-only root filesystem, every capability dropped, no network, the table on a
read-only volume and the predictions on a writable one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tabml.score.options import ScoreOptions
from tabml.score.run import ScorePaths, run
from tests.serve.conftest import ExportedModel
from tests.serve.test_container import Image

pytestmark = pytest.mark.slow


def score_in_image(image: Image, table: Path, out: Path) -> tuple[int, str]:
    """`python -m tabml.score` in the image on `table`; predictions go to `out`."""
    out.mkdir(mode=0o777, exist_ok=True)
    out.chmod(0o777)  # the image's user, 10001, writes there
    done = image.podman(
        "run",
        "--rm",
        "--network=none",
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--user=10001:10001",
        "-v",
        f"{table.parent}:/data/input:ro",
        "-v",
        f"{out}:/data/output",
        "--entrypoint",
        "python",
        image.tag,
        "-m",
        "tabml.score",
        "--input",
        f"/data/input/{table.name}",
        "--output",
        "/data/output/predictions.csv",
        "--bad-rows",
        "set_aside",
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_the_image_scores_a_csv_as_the_cli_does(
    image: Image, breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    rows = breast_cancer_model.feature_rows(50)
    rows[7]["mean_radius"] = "n/a"
    (tmp_path / "in").mkdir()
    table = tmp_path / "in" / "table.csv"
    pd.DataFrame(rows).to_csv(table, index=False, float_format="%.17g")
    status, output = score_in_image(image, table, tmp_path / "out")
    assert status == 0, output
    local = tmp_path / "local" / "predictions.csv"
    run(ScorePaths(table, local, breast_cancer_model.directory), ScoreOptions(bad_rows="set_aside"))
    assert (tmp_path / "out/predictions.csv").read_text() == local.read_text()
    summary = json.loads((tmp_path / "out/predictions.summary.json").read_text())
    assert (summary["rows_scored"], summary["rows_refused"]) == (49, 1)
    [refused] = (tmp_path / "out/predictions.refused.jsonl").read_text().splitlines()
    assert json.loads(refused)["row"] == 8


def test_the_image_names_what_it_cannot_read(
    image: Image, breast_cancer_model: ExportedModel, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    table = tmp_path / "in" / "table.parquet"
    pd.DataFrame(breast_cancer_model.feature_rows(3)).to_parquet(table)
    status, output = score_in_image(image, table, tmp_path / "out")
    assert status == 2
    assert "Parquet needs pyarrow, which is not installed here" in output
    assert "Traceback" not in output
