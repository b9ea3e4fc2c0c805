"""Draw dashboard.json's panels as one SVG from a Prometheus's range queries: a picture of
the dashboard without Grafana (for docs/operations.md, or a quick look at a Prometheus).

    python deploy/monitoring/render_dashboard.py --prometheus http://127.0.0.1:9090 \
        --minutes 30 --job tabml --out dashboard.svg

Standard library only. Each panel sits where its gridPos puts it; a time series panel
draws every series of its queries as a line, a stat panel its last values, a table panel
its rows. Grafana's $__rate_interval becomes --rate-interval, $job the --job regex.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parent / "dashboard.json"
GRID_WIDTH = 24  # Grafana's grid is 24 units wide
UNIT_PX = 40  # one grid unit across, in pixels
ROW_PX = 32  # one grid unit down
COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
LEGEND_COLUMNS = 2
TABLE_CELL_CHARACTERS = 18
# The class-mix panel pairs "<class> predicted" with "<class> in training" (dashed).
REFERENCE_SUFFIX, OBSERVED_SUFFIX = " in training", " predicted"


@dataclass(frozen=True)
class Series:
    """One line: its legend, its (unix time, value) points and its labels."""

    legend: str
    points: tuple[tuple[float, float], ...]
    labels: tuple[tuple[str, str], ...] = ()


def legend_for(template: str, labels: dict[str, str]) -> str:
    """Grafana's legendFormat: {{label}} replaced by the series' label value."""
    text = template
    for name, value in labels.items():
        text = text.replace("{{" + name + "}}", value)
    return text or ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def query_range(
    prometheus: str, expr: str, start: float, end: float, step: float
) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{query}", timeout=30) as reply:
        body = json.load(reply)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def fetch(
    prometheus: str,
    dashboard: dict[str, Any],
    start: float,
    end: float,
    variables: dict[str, str],
) -> dict[int, list[Series]]:
    """Every panel's series, by panel id, from range queries over [start, end]."""
    step = max((end - start) / 240, 1.0)
    panels: dict[int, list[Series]] = {}
    for panel in dashboard["panels"]:
        found: list[Series] = []
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in variables.items():
                expr = expr.replace(name, value)
            for item in query_range(prometheus, expr, start, end, step):
                points = tuple(
                    (float(moment), float(value))
                    for moment, value in item["values"]
                    if math.isfinite(float(value))
                )
                labels = {k: v for k, v in item["metric"].items() if k != "__name__"}
                legend = legend_for(target.get("legendFormat", ""), labels)
                found.append(Series(legend, points, tuple(sorted(labels.items()))))
        panels[panel["id"]] = found
    return panels


def format_value(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.3g} ms"
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    if unit == "reqps":
        return f"{value:.3g}/s"
    return f"{value:.3g}"


def render(dashboard: dict[str, Any], panels: dict[int, list[Series]], title: str) -> str:
    """The SVG document: every panel of `dashboard` drawn with its series from `panels`."""
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    width, height = GRID_WIDTH * UNIT_PX, bottom * ROW_PX + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="24" font-size="16" font-weight="bold">{escape(title)}</text>',
    ]
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        box = (
            grid["x"] * UNIT_PX + 4,
            grid["y"] * ROW_PX + 40,
            grid["w"] * UNIT_PX - 8,
            grid["h"] * ROW_PX - 8,
        )
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        parts.append(_panel_frame(box, panel["title"]))
        series = panels.get(panel["id"], [])
        if panel["type"] == "timeseries":
            parts.append(_time_series(box, series, unit))
        elif panel["type"] == "stat":
            parts.append(_stat(box, series, unit))
        else:
            parts.append(_table(box, series))
    parts.append("</svg>")
    return "\n".join(parts)


def _panel_frame(box: tuple[float, float, float, float], title: str) -> str:
    x, y, w, h = box
    return (
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#f8f9fa" stroke="#cccccc"/>'
        f'<text x="{x + 8}" y="{y + 16}" font-weight="bold">{escape(title)}</text>'
    )


def _time_series(box: tuple[float, float, float, float], series: list[Series], unit: str) -> str:
    x, y, w, h = box
    plot_x, plot_y, plot_w = x + 60, y + 28, w - 72
    legend_rows = math.ceil(len(series) / LEGEND_COLUMNS)
    plot_h = h - 48 - legend_rows * 14
    points = [point for line in series for point in line.points]
    if not points:
        return f'<text x="{x + 8}" y="{y + 40}" fill="#888888">no data</text>'
    start, end = min(p[0] for p in points), max(p[0] for p in points)
    low, high = min(0.0, min(p[1] for p in points)), max(p[1] for p in points)
    high = high if high > low else low + 1.0
    span = max(end - start, 1.0)

    def at(moment: float, value: float) -> str:
        px = plot_x + (moment - start) / span * plot_w
        py = plot_y + plot_h - (value - low) / (high - low) * plot_h
        return f"{px:.1f},{py:.1f}"

    out = [
        f'<line x1="{plot_x}" y1="{plot_y + plot_h}" x2="{plot_x + plot_w}" '
        f'y2="{plot_y + plot_h}" stroke="#999999"/>',
        f'<line x1="{plot_x}" y1="{plot_y}" x2="{plot_x}" y2="{plot_y + plot_h}" '
        'stroke="#999999"/>',
        f'<text x="{plot_x - 4}" y="{plot_y + 8}" text-anchor="end">'
        f"{escape(format_value(high, unit))}</text>",
        f'<text x="{plot_x - 4}" y="{plot_y + plot_h}" text-anchor="end">'
        f"{escape(format_value(low, unit))}</text>",
        f'<text x="{plot_x}" y="{plot_y + plot_h + 12}">'
        f"{time.strftime('%H:%M', time.gmtime(start))} UTC</text>",
        f'<text x="{plot_x + plot_w}" y="{plot_y + plot_h + 12}" text-anchor="end">'
        f"{time.strftime('%H:%M', time.gmtime(end))}</text>",
    ]
    colours: dict[str, str] = {}
    for index, line in enumerate(series):
        observed = line.legend.removesuffix(REFERENCE_SUFFIX) + OBSERVED_SUFFIX
        reference = line.legend.endswith(REFERENCE_SUFFIX)
        colour = colours.get(observed) if reference else None
        colour = colour or COLOURS[len(colours) % len(COLOURS)]
        colours.setdefault(line.legend, colour)
        dash = ' stroke-dasharray="6,4"' if reference else ""
        coordinates = " ".join(at(moment, value) for moment, value in line.points)
        out.append(
            f'<polyline points="{coordinates}" fill="none" stroke="{colour}" '
            f'stroke-width="1.5"{dash}/>'
        )
        column, row = index % LEGEND_COLUMNS, index // LEGEND_COLUMNS
        lx = x + 8 + column * (w - 16) / LEGEND_COLUMNS
        ly = plot_y + plot_h + 28 + row * 14
        out.append(
            f'<rect x="{lx:.1f}" y="{ly - 8:.1f}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{lx + 14:.1f}" y="{ly:.1f}">{escape(line.legend[:34])}</text>'
        )
    return "".join(out)


def _stat(box: tuple[float, float, float, float], series: list[Series], unit: str) -> str:
    x, y, w, _ = box
    out = []
    for index, line in enumerate(series):
        value = line.points[-1][1] if line.points else float("nan")
        cx = x + (index + 0.5) * w / max(len(series), 1)
        out.append(
            f'<text x="{cx:.1f}" y="{y + 70}" font-size="28" text-anchor="middle">'
            f"{escape(format_value(value, unit))}</text>"
            f'<text x="{cx:.1f}" y="{y + 90}" text-anchor="middle">{escape(line.legend)}</text>'
        )
    return "".join(out)


def _table(box: tuple[float, float, float, float], series: list[Series]) -> str:
    """A header of label names and a row of label values for each series."""
    x, y, _, h = box
    if not series:
        return f'<text x="{x + 8}" y="{y + 40}" fill="#888888">no data</text>'
    names = [name for name, _ in series[0].labels]
    rows = [names, *([_cell(dict(line.labels).get(name, "")) for name in names] for line in series)]
    widths = [max(len(row[column]) for row in rows) * 6.5 + 16 for column in range(len(names))]
    out = []
    for index, row in enumerate(rows[: int((h - 30) // 16)]):
        weight = ' font-weight="bold"' if index == 0 else ""
        left = x + 8
        for cell, width in zip(row, widths, strict=True):
            out.append(
                f'<text x="{left:.1f}" y="{y + 38 + index * 16}"{weight}>{escape(cell)}</text>'
            )
            left += width
    return "".join(out)


def _cell(value: str, width: int = TABLE_CELL_CHARACTERS) -> str:
    """A table cell cut to fit the panel (an md5 version is 32 characters)."""
    return value if len(value) <= width else value[: width - 1] + "…"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="base URL, http://host:port")
    parser.add_argument("--minutes", type=float, default=30.0, help="the last N minutes")
    parser.add_argument("--job", default=".+", help="regex for the dashboard's $job")
    parser.add_argument("--rate-interval", default="1m", help="for $__rate_interval")
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    parser.add_argument("--out", type=Path, required=True, help="the SVG file to write")
    args = parser.parse_args()
    dashboard = json.loads(args.dashboard.read_text(encoding="utf-8"))
    end = time.time()
    start = end - args.minutes * 60
    variables = {"$__rate_interval": args.rate_interval, "$job": args.job}
    panels = fetch(args.prometheus, dashboard, start, end, variables)
    title = f"{dashboard['title']} — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(end))}"
    args.out.write_text(render(dashboard, panels, title), encoding="utf-8")
    print(f"wrote {args.out} ({len(dashboard['panels'])} panels)")


if __name__ == "__main__":
    main()
