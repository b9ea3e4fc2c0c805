"""A bad setting in params.yaml reaches the user through `dvc repro` as the stage's own
message, naming the key, the value and the rule, with a failing exit status and no
traceback."""

from __future__ import annotations

import pytest

from .project import Project

pytestmark = pytest.mark.slow


def test_dvc_repro_with_an_unknown_estimator_fails_naming_the_setting(fresh: Project) -> None:
    params = fresh.read_params()
    train = params["train"]
    assert isinstance(train, dict)
    allowed = [name for name in train if name != "estimator" and isinstance(train[name], dict)]
    fresh.set_params(train={"estimator": "svm"})

    result = fresh.dvc("repro", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "train.estimator = 'svm': Input should be " in output, output
    # The rule lists every estimator there is a section of settings for.
    for name in allowed:
        assert f"'{name}'" in output, (name, output)
    assert "Traceback" not in output, output
    assert not (fresh.path / "models" / "model.onnx").exists()
