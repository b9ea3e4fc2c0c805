"""`tabml init` in temporary copies of the template: each refusal leaves the copy
byte for byte as it was; a real run turns it into another project on other data."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from tabml.adopt.data import parse_delimiter
from tabml.adopt.names import Names
from tabml.adopt.plan import InitRequest, prepare
from tabml.config import parse_params
from tests.serve.test_container import cache_dir as container_cache_dir
from tests.tools import run_tool
from tests.workflows.test_lint import actionlint, zizmor

from .project import BIN, REPO_ROOT, Project, project_env, snapshot, uv_executable, wine_frame


def template_names() -> Names:
    pyproject = tomllib.loads(REPO_ROOT.joinpath("pyproject.toml").read_text(encoding="utf-8"))
    package = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"][0]
    return Names(project=pyproject["project"]["name"], package=package.removeprefix("src/"))


TEMPLATE = template_names()
# The command that runs init is named after the project (pyproject's [project.scripts]).
TEMPLATE_COMMAND = TEMPLATE.slug
# A project name that does not normalise to the package name, as most do not; and one
# that does, as the template's own does.
NEW = Names(project="Wine-Quality", package="cultivars")
NAMED_LIKE_ITS_PACKAGE = Names(project="Wine-Quality", package="wine_quality")
NEW_PROJECT, NEW_PACKAGE = NEW.project, NEW.package
E2E_TIMEOUT = 3600


@pytest.fixture
def wine_csv(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "wine_cultivars.csv"
    path.parent.mkdir()
    wine_frame().to_csv(path, index=False)
    return path


def init_args(data: Path, **overrides: str) -> list[str]:
    flags = {
        "--project-name": NEW_PROJECT,
        "--package-name": NEW_PACKAGE,
        "--data": str(data),
        "--target": "cultivar",
        "--remote": str(data.parent / "remote"),
    }
    flags.update(overrides)
    # --flag=value, so that a value starting with '-' stays a value.
    return [f"{flag}={value}" for flag, value in flags.items()]


def run_init(
    project: Project, args: list[str], prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    return project.run(*prefix, str(BIN / TEMPLATE_COMMAND), "init", *args, check=False)


def assert_refused(
    project: Project, args: list[str], *expected: str, prefix: Sequence[str] = ()
) -> None:
    before = snapshot(project.path)
    result = run_init(project, args, prefix)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"{TEMPLATE_COMMAND} init: error: "), result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert snapshot(project.path) == before


def test_a_dirty_tree_is_refused(template_copy: Project, wine_csv: Path) -> None:
    (template_copy.path / "notes.txt").write_text("work in progress\n")
    assert_refused(
        template_copy,
        init_args(wine_csv),
        "git working tree: 1 uncommitted change(s) (notes.txt); must be clean",
    )


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("wine-quality", "must be a lowercase Python identifier"),
        ("dvc", "must not shadow the installed module 'dvc'"),
        ("model", "must not collide with the identifier 'model'"),
    ],
)
def test_a_bad_package_name_is_refused(
    template_copy: Project, wine_csv: Path, name: str, rule: str
) -> None:
    args = init_args(wine_csv, **{"--package-name": name})
    assert_refused(template_copy, args, f"--package-name {name!r}: {rule}")


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("wine quality", "must be a valid PyPI distribution name"),
        ("Scikit_Learn", "must not be the name of a dependency in uv.lock"),
    ],
)
def test_a_bad_project_name_is_refused(
    template_copy: Project, wine_csv: Path, name: str, rule: str
) -> None:
    args = init_args(wine_csv, **{"--project-name": name})
    assert_refused(template_copy, args, f"--project-name {name!r}: {rule}")


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("missing.csv", None, "no such file"),
        ("folder.csv", None, "must be a file, not a directory"),
        ("empty.csv", b"", "must not be empty"),
        ("wine.xlsx", b"PK\x03\x04", "must be a CSV (.csv) or Parquet (.parquet) file"),
        ("broken.parquet", b"PAR1 not really", "must be a readable Parquet file"),
        ("latin1.csv", "a,cultivar\n\xe9t\xe9,x\n".encode("latin-1"), "must be a readable CSV"),
    ],
)
def test_a_data_file_that_cannot_be_read_is_refused(
    template_copy: Project, tmp_path: Path, name: str, content: bytes | None, rule: str
) -> None:
    data = tmp_path / name
    if content is not None:
        data.write_bytes(content)
    elif name.startswith("folder"):
        data.mkdir()
    assert_refused(template_copy, init_args(data), f"--data {str(data)!r}: {rule}")


# Root reads any file whatever its mode: it holds CAP_DAC_OVERRIDE. setpriv (util-linux)
# runs init without that capability, so a mode of 0 keeps the file from it too.
WITHOUT_READ_OVERRIDE = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
]


def test_an_unreadable_data_file_is_refused(template_copy: Project, wine_csv: Path) -> None:
    wine_csv.chmod(0)
    assert_refused(
        template_copy,
        init_args(wine_csv),
        f"--data {str(wine_csv)!r}: cannot be read",
        prefix=WITHOUT_READ_OVERRIDE if os.geteuid() == 0 else (),
    )


def test_a_missing_target_column_is_refused(template_copy: Project, wine_csv: Path) -> None:
    args = init_args(wine_csv, **{"--target": "colour"})
    assert_refused(template_copy, args, "--target 'colour': must be a column of", "'alcohol'")


def test_a_missing_flag_without_a_terminal_is_refused(
    template_copy: Project, wine_csv: Path
) -> None:
    args = [arg for arg in init_args(wine_csv) if not arg.startswith("--remote=")]
    assert_refused(template_copy, args, "--remote: required (stdin is not a terminal")


def delimited_wine_csv(tmp_path: Path, delimiter: str) -> Path:
    # A name of its own: a project made from this template by init already keeps the
    # comma-separated wine file as data/external/wine_cultivars.csv.
    path = tmp_path / "data" / "wine_delimited.csv"
    path.parent.mkdir(exist_ok=True)
    wine_frame().to_csv(path, index=False, sep=delimiter)
    return path


@pytest.mark.parametrize(("delimiter", "flag"), [(";", ";"), ("\t", "tab")])
def test_a_file_read_at_the_wrong_delimiter_is_refused_naming_the_likely_one(
    template_copy: Project, tmp_path: Path, delimiter: str, flag: str
) -> None:
    data = delimited_wine_csv(tmp_path, delimiter)
    looks = "tab" if flag == "tab" else f"'{flag}'"
    assert_refused(
        template_copy,
        init_args(data, **{"--delimiter": ","}),
        "--target 'cultivar': must be a column of",
        f"(the file looks {looks}-delimited: pass --delimiter '{flag}' or convert it",
    )


def test_a_bad_or_misplaced_delimiter_is_refused(
    template_copy: Project, tmp_path: Path, wine_csv: Path
) -> None:
    assert_refused(
        template_copy,
        init_args(wine_csv, **{"--delimiter": ":"}),
        "--delimiter ':': must be one of ',', ';', 'tab', '|'",
    )
    parquet = tmp_path / "wine.parquet"
    wine_frame().to_parquet(parquet)
    assert_refused(
        template_copy,
        init_args(parquet, **{"--delimiter": ";"}),
        "--delimiter ';': applies to a CSV file only",
    )


# --------------------------------------------------------------------------- end to end


def test_init_plans_a_tab_delimited_file_read_at_tabs(
    template_copy: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--delimiter tab: the schema is inferred from the file read at tabs, and params.yaml
    is to say data.delimiter: "\\t" so that the pipeline reads it alike."""
    data = delimited_wine_csv(tmp_path, "\t")
    for name in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(name, template_copy.env[name])
    monkeypatch.setenv("UV", uv_executable())
    request = InitRequest(
        project=TEMPLATE.project,
        package=TEMPLATE.package,
        data=data,
        target="cultivar",
        remote=str(tmp_path / "remote"),
        delimiter=parse_delimiter("tab"),
    )
    plan = prepare(template_copy.path, request)
    assert plan.params_text is not None and plan.schema.text is not None
    params = yaml.safe_load(plan.params_text)
    assert params["data"]["delimiter"] == "\t"
    assert '  delimiter: "\\t"' in plan.params_text
    parse_params(params)
    schema = yaml.safe_load(plan.schema.text)
    assert list(schema["features"]) == list(wine_frame().columns[:-1])
    assert schema["target"]["classes"] == ["cultivar_0", "cultivar_1", "cultivar_2"]
    assert plan.notes == ()  # named, not detected


@pytest.mark.slow
def test_init_on_a_semicolon_file_sets_up_a_pipeline_that_reads_it_alike(
    template_copy: Project, tmp_path: Path
) -> None:
    """A ';'-delimited file, found from its header: init infers the schema from the file
    read at semicolons, and params.yaml's data.delimiter makes the pipeline read it alike."""
    data = delimited_wine_csv(tmp_path, ";")
    project = Project(template_copy.path, user_env(tmp_path, TEMPLATE))
    names = {"--project-name": TEMPLATE.project, "--package-name": TEMPLATE.package}
    result = run_init(project, init_args(data, **names))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pipeline ran: ingest, validate, split, train, evaluate, export, model_card" in (
        result.stdout
    )
    assert "as ';'-delimited, as its header line shows" in result.stdout

    params = yaml.safe_load((project.path / "params.yaml").read_text())
    assert params["data"]["delimiter"] == ";"
    assert params["data"]["path"] == "data/external/wine_delimited.csv"
    schema = yaml.safe_load((project.path / "schemas/wine_delimited.yaml").read_text())
    assert list(schema["features"]) == list(wine_frame().columns[:-1])
    # The raw dataset is the user's file byte for byte, and validate read every row of it.
    raw = project.path / "data/raw/dataset.csv"
    assert raw.read_bytes() == data.read_bytes()
    report = json.loads((project.path / "reports/validation.json").read_text())
    assert report["passed"] and report["rows"] == len(wine_frame())
    assert report["columns"] == list(wine_frame().columns)
    metrics = json.loads((project.path / "metrics/metrics.json").read_text())
    assert metrics["accuracy"] > 0.85
    assert project.git("status", "--porcelain") == ""


def user_env(tmp_path: Path, names: Names) -> dict[str, str]:
    """A user's shell: their uv and its cache, git identity; not this test run's venv."""
    env = project_env(tmp_path / "home")
    env["HOME"] = os.environ.get("HOME", str(tmp_path / "home"))
    env.pop("VIRTUAL_ENV", None)
    uv = uv_executable()
    # Not this checkout's venv: the copy makes and uses its own.
    path = [entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry != str(BIN)]
    env["PATH"] = os.pathsep.join([str(Path(uv).parent), *path])
    # The container test's base image and podman storage are made once per machine.
    env[f"{names.env_prefix}_TEST_CACHE"] = str(container_cache_dir())
    return env


def tracked_snapshot(project: Project) -> dict[str, str]:
    files = project.git("ls-files", "-z").split("\0")
    hashes = {
        name: hashlib.sha256((project.path / name).read_bytes()).hexdigest()
        for name in files
        if name
    }
    hashes["HEAD"] = project.git("rev-parse", "HEAD").strip()
    return hashes


def make_init(project: Project, args: list[str]) -> str:
    return project.run("make", "init", f"ARGS={' '.join(args)}").stdout


def initialised(
    committed_template: Project, tmp_path: Path, names: Names, args: list[str]
) -> Project:
    """A clone of the template that `make init` has turned into the project `names`,
    checked for the names it now goes by; the pipeline ran on the new data."""
    clone = tmp_path / names.slug
    run_tool(["git", "clone", "-q", committed_template.path, clone])
    project = Project(clone, user_env(tmp_path, names))
    output = make_init(project, args)
    assert "pipeline ran: ingest, validate, split, train, evaluate, export, model_card" in output
    assert project.git("status", "--porcelain") == ""
    assert len(project.git("log", "--format=%H").split()) == 2

    # Imports use the package; what names the project outside uses the project name.
    assert (clone / "src" / names.package / "cli.py").is_file()
    assert not (clone / "src" / TEMPLATE.package).exists()
    pyproject = tomllib.loads((clone / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == names.project
    assert pyproject["project"]["scripts"] == {names.slug: f"{names.package}.cli:main"}
    lock = (clone / "uv.lock").read_text(encoding="utf-8")
    assert f'name = "{names.slug}"\nversion = "0.1.0"\nsource = {{ editable = "." }}' in lock
    init_py = (clone / "src" / names.package / "__init__.py").read_text(encoding="utf-8")
    assert f'DISTRIBUTION = "{names.project}"' in init_py.splitlines()
    stages = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"]
    assert all(stage["cmd"].startswith(f"{names.slug} ") for stage in stages.values())
    metadata = yaml.safe_load((clone / "models/metadata.json").read_text())
    assert metadata["libraries"][names.project] == "0.1.0"
    params = yaml.safe_load((clone / "params.yaml").read_text())
    assert params["export"]["model_name"] == f"{names.slug}-classifier"
    metrics = (clone / "src" / names.package / "serve" / "metrics.py").read_text(encoding="utf-8")
    assert f'"{names.identifier}_http_requests"' in metrics
    settings = (clone / "src" / names.package / "serve" / "settings.py").read_text()
    assert f'ENV_PREFIX = "{names.env_prefix}_"' in settings

    # No trace of the old names, in any tracked file or file name, in any case.
    for old in sorted(TEMPLATE.spellings() - names.spellings()):
        grep = project.run("git", "grep", "-i", "-I", "-l", old, check=False)
        assert grep.returncode == 1 and not grep.stdout, (old, grep.stdout)
        assert old.lower() not in project.git("ls-files").lower()
    return project


@pytest.mark.slow
def test_init_of_a_project_named_like_its_package_runs_the_pipeline(
    committed_template: Project, tmp_path: Path, wine_csv: Path
) -> None:
    names = NAMED_LIKE_ITS_PACKAGE
    args = init_args(wine_csv, **{"--project-name": names.project, "--package-name": names.package})
    project = initialised(committed_template, tmp_path, names, args)
    # The renamed project's own tests of the names it goes by.
    named = project.run(
        "uv",
        "run",
        "--locked",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/unit/test_project_names.py",
        "tests/unit/test_cli.py",
    )
    assert re.search(r"\d+ passed", named.stdout) and "failed" not in named.stdout, named.stdout


@pytest.mark.slow
def test_init_turns_a_copy_into_another_project_whose_own_tests_pass(
    committed_template: Project, tmp_path: Path, wine_csv: Path
) -> None:
    started = time.monotonic()
    args = init_args(wine_csv)
    project = initialised(committed_template, tmp_path, NEW, args)
    clone = project.path
    first_seconds = time.monotonic() - started

    # The pipeline ran end to end on the new data.
    metrics = yaml.safe_load((clone / "metrics/metrics.json").read_text())
    assert metrics["accuracy"] > 0.85
    dvc = clone / ".venv" / "bin" / "dvc"
    assert "up to date" in project.run(str(dvc), "status").stdout
    params = yaml.safe_load((clone / "params.yaml").read_text())
    assert params["data"] == {
        "source": "file",
        "sklearn_dataset": None,
        "path": "data/external/wine_cultivars.csv",
        "delimiter": ",",
    }
    assert params["validate"]["schema"] == "schemas/wine_cultivars.yaml"
    assert params["model_card"]["slices"] == ["alcohol", "malic_acid"]
    assert params["model_card"]["sensitive_attribute"] is None
    schema = yaml.safe_load((clone / "schemas/wine_cultivars.yaml").read_text())
    assert schema["target"] == {
        "name": "cultivar",
        "classes": ["cultivar_0", "cultivar_1", "cultivar_2"],
    }
    metadata = yaml.safe_load((clone / "models/metadata.json").read_text())
    assert [feature["name"] for feature in metadata["features"]] == list(wine_frame().columns[:-1])
    assert (clone / "data/external/wine_cultivars.csv.dvc").is_file()
    assert "data/external/wine_cultivars.csv" not in project.git("ls-files").splitlines()
    config = project.run(str(dvc), "config", "--list", "--project").stdout.splitlines()
    assert "core.remote=storage" in config
    assert f"remote.storage.url={wine_csv.parent / 'remote'}" in config
    assert not [line for line in config if line.startswith("remote.local.")], config
    card = (clone / "models/model_card.md").read_text()
    assert "Predicts `cultivar` (3 classes" in card
    assert not re.search(r"breast|cancer|tumou?r|malignant|benign", card, re.IGNORECASE)

    # The renamed workflows lint clean with the linters CI runs.
    workflows = sorted(str(path) for path in (clone / ".github/workflows").glob("*.yml"))
    linted = actionlint(*workflows)
    assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout + linted.stderr
    audited = zizmor(str(clone / ".github"))
    assert audited.returncode == 0, audited.stdout + audited.stderr

    # Again, with the same arguments: it succeeds and changes nothing.
    before = tracked_snapshot(project)
    again = make_init(project, args)
    assert f"already initialised as {NEW_PACKAGE}; nothing to rename" in again
    assert "pipeline up to date" in again
    assert "nothing to commit" in again
    assert tracked_snapshot(project) == before
    assert project.git("status", "--porcelain") == ""

    # The renamed project's own tests of what a rename can break, on one worker beside the
    # suite's own: every fast test (imports, the CLI by its new name, configuration,
    # stages, the API and its metric and setting names, the workflows and scripts) and
    # the container tests (the image's package, entry point, settings and labels). The
    # slow pipeline, remote and workflow runs repeat what the pipeline run above and the
    # template's own suite already prove, at several times the cost.
    suite_env = dict(project.env)
    suite_env["PYTHONDONTWRITEBYTECODE"] = "1"
    pytest_run = ["uv", "run", "--locked", "pytest", "-p", "no:cacheprovider", "-q"]
    for selection in (["-m", "not slow", "tests/"], ["tests/serve/test_container.py"]):
        suite = run_tool(
            [*pytest_run, *selection],
            cwd=clone,
            env=suite_env,
            timeout=E2E_TIMEOUT,
            check=False,
        )
        summary = suite.stdout.strip().splitlines()[-1] if suite.stdout.strip() else ""
        print(f"init: {first_seconds:.0f} s; renamed {selection}: {summary}", file=sys.stderr)
        assert suite.returncode == 0, suite.stdout[-20000:] + suite.stderr[-5000:]
        assert re.search(r"\d+ passed", summary) and "failed" not in summary, summary
