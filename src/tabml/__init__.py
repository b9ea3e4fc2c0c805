"""tabml: a reproducible, DVC-driven pipeline for tabular classification models."""

__version__ = "0.1.0"
