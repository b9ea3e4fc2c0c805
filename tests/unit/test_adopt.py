"""The pure parts of `tabml init`: name rules, rename plan, params edit, data checks."""

from __future__ import annotations

import re
import tomllib
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabml.adopt import data as data_file
from tabml.adopt.command import _remove_empty_dirs
from tabml.adopt.names import (
    Names,
    canonical,
    check_package_name,
    check_project_name,
    python_identifiers,
)
from tabml.adopt.params_edit import ParamsEditError, Setting, set_params
from tabml.adopt.rename import (
    drop_project_from_lock,
    mentions,
    plan_rename,
    rename_path,
    rename_text,
)
from tabml.config import parse_params
from tabml.errors import InputError
from tabml.tables import read_table

# Made-up names, so that renaming this repository leaves these tests as they are.
OLD = Names(project="Old.Project", package="old_pkg")
WINE = Names(project="Wine.Quality", package="wine_quality")
# A project named like its package, as the template is, and one that is not.
SAME = Names(project="samename", package="samename")
FRAUD = Names(project="Acme-Fraud", package="fraud")


# --------------------------------------------------------------------------- names


def check_package(name: str, identifiers: dict[str, str] | None = None) -> None:
    check_package_name(
        name,
        current="old_pkg",
        installed_modules={"dvc", "sklearn", "yaml"},
        identifiers=identifiers or {},
    )


@pytest.mark.parametrize("name", ["wine_quality", "churn2", "a"])
def test_valid_package_names_pass(name: str) -> None:
    check_package(name)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("Wine", "must be a lowercase Python identifier"),
        ("wine-quality", "must be a lowercase Python identifier"),
        ("2wine", "must be a lowercase Python identifier"),
        ("_wine", "must be a lowercase Python identifier"),
        ("", "must be a lowercase Python identifier"),
        ("class", "must not be a Python keyword"),
        ("match", "must not be a Python keyword"),
        ("json", "must not shadow the standard-library module 'json'"),
        ("dvc", "must not shadow the installed module 'dvc'"),
        ("sklearn", "must not shadow the installed module 'sklearn'"),
    ],
)
def test_bad_package_names_are_refused_naming_flag_value_and_rule(name: str, rule: str) -> None:
    with pytest.raises(InputError) as caught:
        check_package(name)
    assert str(caught.value).startswith(f"--package-name {name!r}: {rule}")


def test_a_package_name_the_code_already_uses_is_refused() -> None:
    identifiers = python_identifiers({"src/old_pkg/stages/export.py": "model = load()\n"})
    with pytest.raises(InputError, match=r"identifier 'model' that src/old_pkg/stages/export.py"):
        check_package("model", identifiers)


def test_the_current_package_name_is_not_a_collision() -> None:
    check_package_name(
        "old_pkg", current="old_pkg", installed_modules={"old_pkg"}, identifiers={"old_pkg": "x"}
    )


@pytest.mark.parametrize("name", ["wine-quality", "Wine.Quality", "a", "x_1-b.c2"])
def test_valid_project_names_pass(name: str) -> None:
    check_project_name(name, ["dvc", "scikit-learn"])


@pytest.mark.parametrize("name", ["-wine", "wine-", "wine quality", "wine/q", "é", ""])
def test_bad_project_names_are_refused(name: str) -> None:
    with pytest.raises(InputError) as caught:
        check_project_name(name, [])
    assert str(caught.value).startswith(f"--project-name {name!r}: must be a valid PyPI")


def test_a_project_name_starting_with_a_digit_is_refused() -> None:
    # PyPI takes it, but metric names and environment variables are built from it.
    with pytest.raises(InputError, match=r"--project-name '3d-model': must start with a letter"):
        check_project_name("3d-model", [])


def test_a_project_named_like_a_dependency_is_refused() -> None:
    with pytest.raises(InputError, match=r"--project-name 'Scikit_Learn': must not be the name"):
        check_project_name("Scikit_Learn", ["scikit-learn"])


def test_each_spelling_derives_from_the_project_name_but_the_package() -> None:
    assert canonical("Wine..Quality__x") == "wine-quality-x"
    assert WINE.slug == "wine-quality"
    assert WINE.env_prefix == "WINE_QUALITY"
    assert (FRAUD.slug, FRAUD.identifier, FRAUD.env_prefix) == (
        "acme-fraud",
        "acme_fraud",
        "ACME_FRAUD",
    )
    assert FRAUD.spellings() == {"fraud", "Acme-Fraud", "acme-fraud", "acme_fraud"}


# --------------------------------------------------------------------------- rename


@pytest.mark.parametrize(
    ("path", "before", "after"),
    [
        # Imports, paths and dotted names: the package.
        ("src/x.py", "from old_pkg.config import load", "from fraud.config import load"),
        ("pyproject.toml", 'packages = ["src/old_pkg"]', 'packages = ["src/fraud"]'),
        (
            "Dockerfile",
            'ENTRYPOINT ["python", "-m", "old_pkg.serve"]',
            'ENTRYPOINT ["python", "-m", "fraud.serve"]',
        ),
        # The distribution name itself.
        ("pyproject.toml", 'name = "Old.Project"', 'name = "Acme-Fraud"'),
        ("src/old_pkg/__init__.py", 'DISTRIBUTION = "Old.Project"', 'DISTRIBUTION = "Acme-Fraud"'),
        ("README.md", "# Old.Project\n", "# Acme-Fraud\n"),
        ("LICENSE", "(c) 2026 the Old.Project authors", "(c) 2026 the Acme-Fraud authors"),
        ("other.md", "# Old.Project", "# Old.Project"),
        # The slug: the command, image names, label namespace, model name.
        ("pyproject.toml", 'old-project = "old_pkg.cli:main"', 'acme-fraud = "fraud.cli:main"'),
        (
            "src/old_pkg/cli.py",
            'ArgumentParser(prog="old-project")',
            'ArgumentParser(prog="acme-fraud")',
        ),
        (
            "src/old_pkg/cli.py",
            'f"old-project {args.command}: error"',
            'f"acme-fraud {args.command}: error"',
        ),
        ("dvc.yaml", "cmd: old-project ingest --out x", "cmd: acme-fraud ingest --out x"),
        ("README.md", "Run `old-project init`.", "Run `acme-fraud init`."),
        ("params.yaml", "model_name: old-project-classifier", "model_name: acme-fraud-classifier"),
        ("Dockerfile", 'io.old-project.model.version="x"', 'io.acme-fraud.model.version="x"'),
        # The slug as an identifier: metric names and, upper case, environment variables.
        ("x.py", 'metric("old_project_http_requests")', 'metric("acme_fraud_http_requests")'),
        ("Makefile", "OLD_PROJECT_MODEL_DIR=models", "ACME_FRAUD_MODEL_DIR=models"),
    ],
)
def test_each_spelling_of_the_name_gets_its_own_replacement(
    path: str, before: str, after: str
) -> None:
    assert rename_text(path, before, OLD, FRAUD) == after


@pytest.mark.parametrize(
    ("path", "before", "after"),
    [
        (
            "src/x.py",
            "from samename import cli\nimport samename\n",
            "from fraud import cli\nimport fraud\n",
        ),
        (
            "src/x.py",
            'log = logging.getLogger("samename.serve")',
            'log = logging.getLogger("fraud.serve")',
        ),
        ("benchmarks/x.py", "samename = Server()\nsamename[0]", "fraud = Server()\nfraud[0]"),
        ("Makefile", "python -m samename.serve", "python -m fraud.serve"),
        ("dvc.yaml", "- src/samename/stages/train.py", "- src/fraud/stages/train.py"),
        ("pyproject.toml", 'name = "samename"', 'name = "Acme-Fraud"'),
        ("pyproject.toml", 'samename = "samename.cli:main"', 'acme-fraud = "fraud.cli:main"'),
        ("src/samename/__init__.py", 'DISTRIBUTION = "samename"', 'DISTRIBUTION = "Acme-Fraud"'),
        ("src/samename/cli.py", 'prog="samename"', 'prog="acme-fraud"'),
        ("dvc.yaml", "cmd: samename ingest --out x", "cmd: acme-fraud ingest --out x"),
        (
            "README.md",
            "`samename <stage>`; samename drift",
            "`acme-fraud <stage>`; acme-fraud drift",
        ),
        ("x.py", 'f"samename {args.command}: error"', 'f"acme-fraud {args.command}: error"'),
        ("Dockerfile", 'LABEL io.samename.metrics="x"', 'LABEL io.acme-fraud.metrics="x"'),
        ("x.yml", "IMAGE: samename-smoke:1", "IMAGE: acme-fraud-smoke:1"),
        ("x.py", '"samename_http_requests"', '"acme_fraud_http_requests"'),
        ("x.py", "SAMENAME_PORT", "ACME_FRAUD_PORT"),
    ],
)
def test_names_that_coincide_are_told_apart_by_where_they_stand(
    path: str, before: str, after: str
) -> None:
    assert rename_text(path, before, SAME, FRAUD) == after


def test_a_project_named_like_its_package_keeps_one_spelling() -> None:
    text = "from old_pkg import x\nold-project train\nOLD_PROJECT_PORT old_project_rows"
    assert rename_text("a", text, OLD, WINE) == (
        "from wine_quality import x\nwine-quality train\nWINE_QUALITY_PORT wine_quality_rows"
    )


def test_a_second_rename_starts_from_the_renamed_spellings() -> None:
    renamed = rename_text(
        "a", "io.old-project.x old-project-serve OLD_PROJECT_PORT old_pkg", OLD, FRAUD
    )
    assert renamed == "io.acme-fraud.x acme-fraud-serve ACME_FRAUD_PORT fraud"
    again = rename_text("a", renamed, FRAUD, Names("churn", "churn"))
    assert again == "io.churn.x churn-serve CHURN_PORT churn"


def test_plan_moves_the_package_and_rewrites_only_files_that_change() -> None:
    files = {
        "src/old_pkg/__init__.py": '"""old_pkg."""\n',
        "src/old_pkg/stages/train.py": "from old_pkg.config import x\n",
        "data/notes.txt": "nothing to see\n",
        "uv.lock": 'x\n[[package]]\nname = "old-project"\nsource = { editable = "." }\n',
    }
    plan = plan_rename(files, OLD, WINE, {"uv.lock": lambda text: text.upper()})
    assert plan.moves == {
        "src/old_pkg/__init__.py": "src/wine_quality/__init__.py",
        "src/old_pkg/stages/train.py": "src/wine_quality/stages/train.py",
    }
    assert plan.contents == {
        "src/wine_quality/__init__.py": '"""wine_quality."""\n',
        "src/wine_quality/stages/train.py": "from wine_quality.config import x\n",
        "uv.lock": files["uv.lock"].upper(),
    }
    assert plan_rename(files, WINE, WINE).empty


def test_rename_path() -> None:
    assert rename_path("tests/old-project-x/old_pkg.py", OLD, WINE) == (
        "tests/wine-quality-x/wine_quality.py"
    )


def test_renaming_the_template_rewrites_every_name_in_the_readme_and_the_docs_pages(
    repo_root: Path,
) -> None:
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    package = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"][0]
    current = Names(project=pyproject["project"]["name"], package=package.removeprefix("src/"))
    pages = ["README.md", *sorted(f"docs/{p.name}" for p in (repo_root / "docs").glob("*.md"))]
    texts = {page: (repo_root / page).read_text() for page in pages}
    renamed = {page: rename_text(page, text, current, FRAUD) for page, text in texts.items()}
    gone = current.spellings() - FRAUD.spellings()
    assert not [found for name in sorted(gone) for found in mentions(renamed, name)]
    assert renamed["README.md"].startswith("# Acme-Fraud\n")
    assert any(renamed[page] != texts[page] for page in pages if page.startswith("docs/"))


def test_mentions_finds_any_case_in_text_and_file_names() -> None:
    found = mentions({"a/Old_Pkg.md": "x\nsee OLD_pkg here\n", "b": "clean"}, "old_pkg")
    assert found == ["a/Old_Pkg.md (file name)", "a/Old_Pkg.md:2: see OLD_pkg here"]


LOCK = """version = 1

[[package]]
name = "pandas"
version = "2.0"

[[package]]
name = "old-project"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "zipp"
"""


def test_the_project_entry_is_dropped_from_uv_lock_and_nothing_else() -> None:
    dropped = drop_project_from_lock(LOCK, "old-project")
    assert "old-project" not in dropped
    assert dropped.count("[[package]]") == 2
    assert 'name = "pandas"\nversion = "2.0"\n\n[[package]]\nname = "zipp"' in dropped
    with pytest.raises(ValueError, match="expected one editable entry named 'churn'"):
        drop_project_from_lock(LOCK, "churn")


# --------------------------------------------------------------------------- params edit


USE = " ".join(["Predicts the cultivar of a wine from its chemistry."] * 5)


def test_the_template_params_are_retargeted_keeping_every_comment(repo_root: Path) -> None:
    text = (repo_root / "params.yaml").read_text()
    settings = [
        Setting("data", "source", "file"),
        Setting("data", "sklearn_dataset", None),
        Setting("data", "path", "data/external/wine.csv"),
        Setting("data", "delimiter", "\t"),
        Setting("validate", "schema", "schemas/wine_2.yaml"),
        Setting("model_card", "intended_use", USE),
        Setting("model_card", "limitations", ["One vineyard.", "Check: the ranges # twice"]),
        Setting("model_card", "slices", ["alcohol", "malic_acid"]),
        Setting("model_card", "sensitive_attribute", None, ("Groups to compare; null skips.",)),
    ]
    edited = set_params(text, settings)

    loaded = yaml.safe_load(edited)
    assert loaded["data"] == {
        "source": "file",
        "sklearn_dataset": None,
        "path": "data/external/wine.csv",
        "delimiter": "\t",
    }
    assert loaded["model_card"]["intended_use"] == USE
    assert loaded["model_card"]["limitations"] == ["One vineyard.", "Check: the ranges # twice"]
    assert loaded["model_card"]["slices"] == ["alcohol", "malic_acid"]
    parse_params(loaded)
    # Comments the user relies on stay, in place: the option lists after values, the
    # section notes; the example's own comment above sensitive_attribute is replaced.
    assert re.search(r"^  path: data/external/wine\.csv +# with source: file", edited, re.M)
    assert re.search(r'^  delimiter: "\\t" +# a \.csv path.s field separator', edited, re.M)
    assert "# breast_cancer | wine | iris" in edited
    assert "# fail | drop columns the schema does not list" in edited
    assert "  slices: [alcohol, malic_acid]" in edited
    assert "  # Groups to compare; null skips.\n  sensitive_attribute: null\n" in edited
    assert "tumour" not in edited and "Wisconsin" not in edited
    untouched = [line for line in text.splitlines() if line.startswith(("drift", "gate", "  p_"))]
    assert all(line in edited.splitlines() for line in untouched)
    assert edited.count("\n") >= text.count("\n") - 2


def test_an_edit_that_does_not_read_back_is_refused() -> None:
    with pytest.raises(ParamsEditError, match=r"no key 'data\.path'"):
        set_params("data:\n  source: sklearn\n", [Setting("data", "path", "x.csv")])
    with pytest.raises(ParamsEditError, match="no top-level section 'validate'"):
        set_params("data:\n  source: sklearn\n", [Setting("validate", "schema", "x")])
    # A flow mapping is a layout this editor does not rewrite; the check catches it.
    with pytest.raises(ParamsEditError):
        set_params("data: {source: sklearn}\n", [Setting("data", "source", "file")])


# --------------------------------------------------------------------------- data


def test_data_checks_name_the_flag_the_value_and_the_rule() -> None:
    frame = pd.DataFrame({"x": range(10), "y": ["a", "b"] * 5})
    data_file.check_target(frame, "y", 5, "d.csv", min_rows_per_class=5)
    with pytest.raises(InputError, match=r"--target 'z': must be a column of d.csv; its columns"):
        data_file.check_target(frame, "z", 5, "d.csv", min_rows_per_class=5)
    with pytest.raises(InputError, match=r"--target 'x': must hold at least 2 classes"):
        data_file.check_target(frame.assign(x=1), "x", 5, "d.csv", min_rows_per_class=5)
    with pytest.raises(InputError, match=r"has 10 rows; validate.min_rows .* at least 50"):
        data_file.check_target(frame, "y", 50, "d.csv", min_rows_per_class=5)
    rare = frame.assign(y=["a"] * 8 + ["b"] * 2)
    with pytest.raises(
        InputError,
        match=r"--target 'y': every class needs at least 5 rows "
        r"\(validate.min_rows_per_class in params.yaml\); d.csv has 'b': 2",
    ):
        data_file.check_target(rare, "y", 5, "d.csv", min_rows_per_class=5)


@pytest.mark.parametrize(("delimiter", "name"), [(";", ";"), ("\t", "tab"), ("|", "|")])
def test_a_csv_is_read_with_the_delimiter_its_header_shows(
    tmp_path: Path, delimiter: str, name: str
) -> None:
    frame = pd.DataFrame({"a": [1.5, 2.0], "b": ["x, y", "z"], "species": ["p", "q"]})
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False, sep=delimiter)
    assert data_file.detect_delimiter(path) == delimiter
    pd.testing.assert_frame_equal(read_table(path, field="--data", delimiter=delimiter), frame)
    assert data_file.parse_delimiter(name) == delimiter
    assert data_file.delimiter_name(delimiter) == name
    # Read as commas, the file is one column: the message names the likely cause.
    misread = read_table(path, field="--data")
    looks = "tab" if name == "tab" else repr(delimiter)
    with pytest.raises(InputError) as raised:
        data_file.check_target(misread, "species", 1, "d.csv", min_rows_per_class=2)
    assert str(raised.value).startswith("--target 'species': must be a column of d.csv")
    assert f"(the file looks {looks}-delimited: pass --delimiter {name!r} or convert" in str(
        raised.value
    )


def test_a_comma_file_and_a_one_column_header_are_read_as_commas(tmp_path: Path) -> None:
    commas = tmp_path / "commas.csv"
    commas.write_text('"price; in EUR",kind\n1,a\n')
    assert data_file.detect_delimiter(commas) == ","
    single = tmp_path / "single.csv"
    single.write_text("\n\nkind\na\n")
    assert data_file.detect_delimiter(single) == ","
    assert data_file.detect_delimiter(tmp_path / "missing.csv") == ","
    # A header that is simply missing the target gets no separator hint.
    with pytest.raises(InputError) as raised:
        data_file.check_target(
            read_table(single, field="--data"), "label", 1, "single.csv", min_rows_per_class=2
        )
    assert "delimited" not in str(raised.value)


@pytest.mark.parametrize(("flag", "delimiter"), [("\\t", "\t"), ("\t", "\t"), (",", ",")])
def test_a_tab_may_be_spelled_as_a_shell_passes_it(flag: str, delimiter: str) -> None:
    assert data_file.parse_delimiter(flag) == delimiter


def test_an_unknown_delimiter_is_refused_with_the_choices() -> None:
    with pytest.raises(
        InputError, match=r"^--delimiter ':': must be one of ',', ';', 'tab', '\|'$"
    ):
        data_file.parse_delimiter(":")


def test_model_card_text_describes_the_data_not_the_example() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [1, 1, 2], "kind": ["x", "y", "z"]})
    intended_use, limitations = data_file.model_card_text(frame, "kind", "d.csv", "s.yaml")
    assert intended_use.startswith("Predicts `kind` (3 classes: x, y, z) from 2 columns of d.csv")
    assert "the 3 rows of d.csv" in limitations[0]
    assert "s.yaml" in limitations[1]
    assert data_file.slice_columns(frame, "kind") == ["a", "b"]


def test_the_old_package_folder_goes_with_its_caches_and_compiled_modules(
    tmp_path: Path,
) -> None:
    # What the rename leaves behind that git does not track: the interpreter's caches and
    # the extension module the editable install compiled beside its source.
    old = tmp_path / "src" / "tabml"
    (old / "serve" / "__pycache__").mkdir(parents=True)
    (old / "serve" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"")
    suffix = EXTENSION_SUFFIXES[0]
    (old / "serve" / f"_body_readers{suffix}").write_bytes(b"")
    _remove_empty_dirs(old)
    assert not old.exists()


def test_the_old_package_folder_stays_while_it_holds_other_files(tmp_path: Path) -> None:
    old = tmp_path / "src" / "tabml"
    (old / "serve").mkdir(parents=True)
    (old / "serve" / f"_body_readers{EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    (old / "serve" / "notes.txt").write_text("mine")
    _remove_empty_dirs(old)
    assert (old / "serve" / "notes.txt").read_text() == "mine"
