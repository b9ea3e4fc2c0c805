"""Pull-request reporting: the quality gate (gate.py), the markdown report (render.py), its
inputs from the work tree and git (sources.py), and the verdict written for a pull request
(verdict.py)."""
