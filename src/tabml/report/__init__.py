"""Pull-request reporting: the quality gate (gate.py) and the markdown report (render.py)."""
