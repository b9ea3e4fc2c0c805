"""A copy of the template in a temporary git repository, and the commands run in it."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from tabml.config import DataSchema, load_params, load_schema
from tests.availability import INSTALL_PYTHON_TOOLS, unavailable
from tests.tools import run_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STAGES = ["ingest", "validate", "split", "train", "evaluate", "export", "model_card"]
COMMAND_TIMEOUT = 600


@dataclass
class Project:
    """A copy of the template at `path`, with its own git history and DVC remote."""

    path: Path
    env: dict[str, str]
    last_repro: list[str] = field(default_factory=list)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tool(args, cwd=self.path, env=self.env, timeout=COMMAND_TIMEOUT, check=check)

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(BIN / "dvc"), *args, check=check)

    def default_remote(self) -> str:
        """The name of the DVC remote that push and pull use (`core.remote`)."""
        return self.dvc("config", "core.remote").stdout.strip()

    def git(self, *args: str) -> str:
        return self.run("git", *args).stdout

    def repro(self, *args: str) -> list[str]:
        """Run `dvc repro` and return the stages it ran, in order."""
        self.last_repro = stages_run(self.dvc("repro", *args).stdout)
        return self.last_repro

    def schema(self) -> DataSchema:
        """The data schema that params.yaml's validate.schema names."""
        return load_schema(self.path / load_params(self.path / "params.yaml").validate_.schema_path)

    def raw_rows(self) -> int:
        """Data rows of the ingested dataset."""
        return len(pd.read_csv(self.path / "data/raw/dataset.csv"))

    def read_params(self) -> dict[str, object]:
        loaded: dict[str, object] = yaml.safe_load((self.path / "params.yaml").read_text())
        return loaded

    def set_params(self, **sections: dict[str, object]) -> None:
        """Merge `sections` into params.yaml (one level deep per section)."""
        params = self.read_params()
        for name, values in sections.items():
            section = params[name]
            assert isinstance(section, dict)
            section.update(values)
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def lock_md5(self, path: str) -> str:
        """The md5 that dvc.lock records for the output `path`."""
        lock = yaml.safe_load((self.path / "dvc.lock").read_text())
        for stage in lock["stages"].values():
            for out in stage.get("outs", []):
                if out["path"] == path:
                    return str(out["md5"])
        raise KeyError(path)


def uv_executable() -> str:
    """The uv that runs this suite: `uv run` names itself in UV, else uv on PATH, else
    the one `make setup` installs into .tools/ when PATH has none. Skips when there is
    none, except where the full suite is required (tests/availability.py)."""
    local = REPO_ROOT / ".tools" / "bin" / "uv"
    found = os.environ.get("UV") or shutil.which("uv") or (str(local) if local.is_file() else None)
    if found is None:
        unavailable("uv", "no uv in UV, on PATH or in .tools/", install=INSTALL_PYTHON_TOOLS)
    return found


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def project_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="tabml tests",
        GIT_AUTHOR_EMAIL="tests@tabml.invalid",
        GIT_COMMITTER_NAME="tabml tests",
        GIT_COMMITTER_EMAIL="tests@tabml.invalid",
    )
    return env


def template_files() -> list[str]:
    """The files a clone of this checkout would have (tracked plus new, not ignored),
    and the data files that `dvc add` tracks, which a clone gets from `dvc pull`."""
    listed = run_tool(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO_ROOT
    ).stdout.split("\0")
    names = [name for name in listed if name and (REPO_ROOT / name).is_file()]
    for pointer in [name for name in names if name.endswith(".dvc")]:
        for out in yaml.safe_load((REPO_ROOT / pointer).read_text()).get("outs", []):
            data = (Path(pointer).parent / out["path"]).as_posix()
            if (REPO_ROOT / data).is_file():
                names.append(data)
    return names


def commit_template(dest: Path) -> Project:
    """The template's files in a fresh git repository at `dest`, with one commit."""
    for name in template_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    project = Project(dest, project_env(dest.parent / "home"))
    project.git("init", "-q", "-b", "main")
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "template")
    return project


def new_project(dest: Path, remote: Path) -> Project:
    """A fresh copy of the template, committed, whose default remote is `remote`."""
    project = commit_template(dest)
    remote.mkdir(parents=True, exist_ok=True)
    project.dvc("remote", "modify", "--local", project.default_remote(), "url", str(remote))
    return project


def copy_project(source: Project, dest: Path) -> Project:
    shutil.copytree(source.path, dest, symlinks=True)
    return Project(dest, source.env)


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, .git (index, HEAD, refs, objects) included."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() or path.is_symlink()
    }


def wine_frame() -> pd.DataFrame:
    """scikit-learn's wine data: 178 wines, 13 measurements, 3 cultivars."""
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    frame = bunch.data.rename(columns=lambda name: re.sub(r"\W+", "_", name).strip("_"))
    frame["cultivar"] = [f"cultivar_{index}" for index in bunch.target]
    return frame
