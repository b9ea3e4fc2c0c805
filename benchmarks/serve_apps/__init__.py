"""Servers the serving benchmark compares tabml's API with; each runs in its own venv."""
