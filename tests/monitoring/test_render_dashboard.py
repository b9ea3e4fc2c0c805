"""deploy/monitoring/render_dashboard.py draws every panel of dashboard.json: lines for
time series, last values for stats, labels for tables, in a well-formed SVG."""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.monitoring.conftest import MONITORING

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def renderer() -> Iterator[ModuleType]:
    """The script, loaded from its file (deploy/ is no package); registered while it runs,
    as dataclasses look their module up by name."""
    spec = importlib.util.spec_from_file_location(
        "render_dashboard", MONITORING / "render_dashboard.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_legends_fill_labels_and_units_read_as_grafana_shows_them(renderer: ModuleType) -> None:
    assert renderer.legend_for("{{status}} {{endpoint}}", {"status": "422", "endpoint": "/p"}) == (
        "422 /p"
    )
    assert renderer.legend_for("", {"job": "tabml", "instance": "a:1"}) == "instance=a:1, job=tabml"
    assert renderer.format_value(0.0123, "s") == "12.3 ms"
    assert renderer.format_value(0.25, "percentunit") == "25%"
    assert renderer.format_value(40.0, "reqps") == "40/s"
    version = "e43a13fac6c22db163067e608adc8d7b"
    assert renderer._cell(version) == version[:17] + "…"
    assert renderer._cell("tabml") == "tabml"


def test_every_panel_is_drawn_with_its_series(
    renderer: ModuleType, dashboard: dict[str, Any]
) -> None:
    series = renderer.Series
    line = ((0.0, 0.1), (60.0, 0.2), (120.0, 0.15))
    by_title = {panel["title"]: panel["id"] for panel in dashboard["panels"]}
    panels = {panel_id: [series("x", line)] for panel_id in by_title.values()}
    panels[by_title["Predicted class mix"]] = [
        series("benign predicted", line),
        series("malignant predicted", line),
        series("malignant in training", ((0.0, 0.37), (120.0, 0.37))),
    ]
    panels[by_title["Ready servers"]] = [series("ready", ((0.0, 1.0),))]
    labels = (("data_version", "d1"), ("instance", "a:1"), ("name", "m"), ("version", "v1"))
    panels[by_title["Model and data version"]] = [series("", ((0.0, 1.0),), labels)]
    panels[by_title["Refused and in flight"]] = []

    svg = ET.fromstring(renderer.render(dashboard, panels, "snapshot"))
    texts = [element.text for element in svg.iter(f"{SVG}text")]
    assert set(by_title) <= set(texts)
    assert "snapshot" in texts and "no data" in texts
    table = ["data_version", "instance", "name", "version", "d1", "a:1", "m", "v1"]
    assert [text for text in texts if text in table] == table
    timeseries = sum(1 for panel in dashboard["panels"] if panel["type"] == "timeseries")
    polylines = list(svg.iter(f"{SVG}polyline"))
    # one line for each time series panel, two more on the class mix, none where no data
    assert len(polylines) == timeseries + 2 - 1
    dashed = [line for line in polylines if line.get("stroke-dasharray")]
    assert len(dashed) == 1
    malignant = [line for line in polylines if line.get("stroke") == dashed[0].get("stroke")]
    assert len(malignant) == 2, "the training line takes its class's colour"
