"""Lineage: which model, data, params and metrics a served model came from.

Three records carry the same facts, and they must agree:

- metadata.json, written by the export stage and served at GET /metadata;
- the model card, written by the model_card stage and served at GET /model-card: its
  "Lineage" section (a JSON block) and its "Params" section;
- the serving image's labels, set from build args that .github/scripts/release_info.py
  derives from metadata.json (`io.tabml.*`, see LABELS).

The commit is not among these facts: the pipeline's outputs depend on their declared
inputs only, so the same model comes out of any commit with the same data, params and
code. The image's `org.opencontainers.image.revision` records the commit it was built
from (the release's github.sha, or HEAD for `make image`).

Params travel in a label as a digest (sha256 of their canonical JSON) and metrics as
`name=value` pairs; release_info.py writes both with the standard library only. The
tests read the three records back and check that they agree (tests/lineage.py).
"""

from __future__ import annotations

LINEAGE_HEADING = "## Lineage"
PARAMS_HEADING = "## Params"
# The card's own settings: in its Params section, not among the model's params.
CARD_SECTION = "model_card"

LABELS = {
    "model name": "io.tabml.model.name",
    "model version": "io.tabml.model.version",
    "data version": "io.tabml.data.version",
    "params": "io.tabml.params.sha256",
    "metrics": "io.tabml.metrics",
}
