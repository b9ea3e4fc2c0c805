"""End-to-end fixtures: the template copied into a temporary git repository, DVC run there.

A session builds one reproduced copy per worker and each test works on its own copy
of that, so tests never touch this checkout, its DVC cache or the user's default
remote, and can run in parallel.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .project import Project, commit_template, copy_project, new_project


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One fresh copy on which `dvc repro` ran once, committed. Do not modify it."""
    root = tmp_path_factory.mktemp("reproduced")
    project = new_project(root / "project", root / "remote")
    project.repro()
    # Reproducing the committed template changes nothing git tracks (see
    # test_fresh_clone_repro_leaves_git_status_clean); a work tree whose dvc.lock is
    # stale would, and the tests built on this copy still start from a clean tree.
    project.git("add", "-A")
    project.git("commit", "-q", "--allow-empty", "-m", "reproduce")
    return project


@pytest.fixture
def trained(reproduced: Project, tmp_path: Path) -> Project:
    """A private copy of the reproduced project, free to modify."""
    return copy_project(reproduced, tmp_path / "project")


@pytest.fixture
def fresh(tmp_path: Path) -> Project:
    """A fresh copy of the template that has not run anything yet."""
    return new_project(tmp_path / "project", tmp_path / "remote")


@pytest.fixture(scope="module")
def committed_template(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The template's files in a fresh git repository with one commit. Do not modify."""
    return commit_template(tmp_path_factory.mktemp("template") / "project")


@pytest.fixture
def template_copy(committed_template: Project, tmp_path: Path) -> Project:
    dest = tmp_path / "project"
    shutil.copytree(committed_template.path, dest, symlinks=True)
    return Project(dest, committed_template.env)
