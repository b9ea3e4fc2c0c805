"""tabml: a reproducible, DVC-driven pipeline for tabular classification models."""

__version__ = "0.1.0"
# The distribution this package is installed as (pyproject's [project] name), which
# need not be the import name: version lookups and anything else that asks the
# installed metadata use this. `init` rewrites it with the project name.
DISTRIBUTION = "tabml"
