"""score.yml under act: a table in a real S3 server on 127.0.0.1 is scored with the model
the project's DVC remote (the same server) holds, refused rows are set aside, and the
predictions are added to DVC, pushed to the remote and uploaded as the run's artifact.
Without a table the job stops green before installing anything; a table that is neither
a URL nor a path in the repository stops it at the first step."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.integration.project import copy_project
from tests.integration.servers import rclone_s3

from .harness import REPOSITORY, ActRun, publish_origin, run_act
from .test_act import S3_SECRETS, reproduced_once, with_env

pytestmark = pytest.mark.slow


def dispatch(table: str, bad_rows: str = "params.yaml") -> dict[str, object]:
    owner, name = REPOSITORY.split("/")
    return {
        "inputs": {"input": table, "bad-rows": bad_rows},
        "repository": {"full_name": REPOSITORY, "name": name, "owner": {"login": owner}},
    }


def succeeded(run: ActRun) -> None:
    assert run.returncode == 0, run.explain()


def test_a_table_in_s3_is_scored_and_its_predictions_pushed(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project = copy_project(reproduced_once(tmp_path_factory), tmp_path / "project")
    test = pd.read_parquet(project.path / "data/split/test.parquet")
    features = list(project.schema().features)
    table = test[features].head(20).copy()
    table[features[0]] = table[features[0]].astype(object)
    table.loc[table.index[3], features[0]] = "n/a"  # row 4: text where a number goes
    root = tmp_path / "s3"
    (root / "tables").mkdir(parents=True)  # buckets exist before rclone lists them
    table.to_csv(root / "tables/today.csv", index=False)
    (root / "dvc").mkdir()
    with rclone_s3(root) as s3:
        project.dvc("remote", "add", "--default", "shared", "s3://dvc/models")
        project.dvc("remote", "modify", "shared", "endpointurl", s3.endpoint)
        project.git("commit", "-q", "-am", "Use shared S3 storage")
        with_env(project, **S3_SECRETS).dvc("push")
        publish_origin(project, tmp_path / "origin.git")

        run = run_act(
            project,
            "score.yml",
            "workflow_dispatch",
            dispatch("s3://tables/today.csv", "set_aside"),
            tmp_path / "act",
            secrets=S3_SECRETS,
            variables={"SCORE_S3_ENDPOINT": s3.endpoint},
        )
        succeeded(run)
        assert run.step_succeeded("The model (dvc pull)")
        assert run.step_succeeded("Push the predictions to the DVC remote")
        [artifact] = run.calls("upload-artifact")
        assert artifact["inputs"]["name"] == "predictions"
        uploaded = run.record / "artifacts" / "predictions"
        summary = json.loads((uploaded / "predictions/predictions.summary.json").read_text())
        assert (summary["rows_scored"], summary["rows_refused"]) == (19, 1)
        [refused] = (uploaded / "predictions/predictions.refused.jsonl").read_text().splitlines()
        assert json.loads(refused)["row"] == 4
        predictions = pd.read_csv(uploaded / "predictions/predictions.csv")
        assert predictions["row"].tolist() == [row for row in range(1, 21) if row != 4]
        # The pointer in the artifact names what the remote now holds.
        [out] = yaml.safe_load((uploaded / "predictions.dvc").read_text())["outs"]
        digest = out["md5"].removesuffix(".dir")
        assert (root / "dvc/models/files/md5" / digest[:2] / f"{digest[2:]}.dir").is_file()
        assert "DVC remote credentials blanked" in run.output


def test_without_a_table_the_job_says_so_and_a_bad_one_stops_it(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project = copy_project(reproduced_once(tmp_path_factory), tmp_path / "project")
    quiet = run_act(project, "score.yml", "schedule", {"schedule": "41 3 * * *"}, tmp_path / "a")
    succeeded(quiet)
    assert "Scoring skipped" in quiet.output
    assert not quiet.step_ran("Install the environment")
    bad = run_act(
        project, "score.yml", "workflow_dispatch", dispatch("../secrets.csv"), tmp_path / "b"
    )
    assert bad.returncode != 0
    assert "without '..'" in bad.output
    assert not bad.step_ran("Install the environment")
