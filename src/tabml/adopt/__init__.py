"""`tabml init`: turn a fresh copy of the template into the user's own project.

The planning modules (names, rename, params_edit, data) are pure: they take file
contents and return what to write. `plan` checks everything and composes their answers
into one frozen plan before a file is touched; `command` gathers the inputs, applies
the plan and runs the pipeline once; `tools` runs git, uv, ruff and dvc for both.
"""

from __future__ import annotations

import argparse

# (attribute, flag, what a terminal prompt asks for)
FIELDS = (
    ("project_name", "--project-name", "Project name (a PyPI distribution name, e.g. churn-model)"),
    ("package_name", "--package-name", "Python package name (e.g. churn_model)"),
    ("data", "--data", "Path to your data (a .csv or .parquet file)"),
    ("target", "--target", "Target column (the label to predict)"),
    ("remote", "--remote", "DVC remote URL (e.g. s3://bucket/path, or a local folder)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The init flags; each of FIELDS may be left out and asked for on a terminal."""
    for attribute, flag, prompt in FIELDS:
        parser.add_argument(flag, dest=attribute, default=None, help=prompt)
    parser.add_argument(
        "--delimiter",
        default=None,
        help="the field separator of a CSV file: ',', ';', 'tab' or '|' "
        "(default: the one its header line holds most of)",
    )
