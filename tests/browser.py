"""The layout a real browser gives a page's SVG charts: headless Chromium opens a copy of
the page with a measuring script added, and its `--dump-dom` output carries the boxes of
every chart, of every text element inside it and of every bar, in CSS pixels of the
viewport. Reading the HTML text cannot tell whether two labels land on top of each
other; only a layout engine with real fonts can.

Chromium runs offline on a file:// page, with its own temporary profile, and is stopped
by its process id (its whole process group) if it overruns.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from html import unescape
from pathlib import Path

from tests.tools import failure_message

# Big enough for a cold start on a shared 2-core machine; a warm run takes about 2 s.
TIMEOUT_SECONDS = 90
VIEWPORT_HEIGHT = 900
# Sub-pixel rounding of glyph boxes is not an overlap.
TOLERANCE_PX = 0.5
LAYOUT_ID = "tabml-layout"
# Runs after the page's own content is parsed, so every chart is laid out when it
# measures; getBoundingClientRect forces layout and includes any rotation or scaling.
MEASURE_SCRIPT = (
    f"<script>const LAYOUT_ID = {json.dumps(LAYOUT_ID)};\n"
    + """(() => {
  const box = (el) => { const b = el.getBoundingClientRect();
    return [b.left, b.top, b.right, b.bottom]; };
  const shown = (text) => Array.from(text.childNodes)
    .filter((n) => n.nodeName !== "title").map((n) => n.textContent).join("");
  const titled = (text) => { const t = text.querySelector("title");
    return t ? t.textContent : shown(text); };
  const charts = Array.from(document.querySelectorAll("svg")).map((svg) => ({
    name: svg.getAttribute("aria-label") || "",
    box: box(svg),
    texts: Array.from(svg.querySelectorAll("text")).map((t) => ({
      shown: shown(t), full: titled(t), box: box(t) })),
    bars: Array.from(svg.querySelectorAll("rect")).map(box),
  }));
  const pre = document.createElement("pre");
  pre.id = LAYOUT_ID;
  pre.textContent = JSON.stringify({
    viewport: [document.documentElement.clientWidth, window.innerHeight],
    page_width: document.documentElement.scrollWidth,
    charts });
  document.body.appendChild(pre);
})();
</script>"""
)
LAYOUT_BLOCK = re.compile(rf'<pre id="{LAYOUT_ID}">(.*?)</pre>', re.DOTALL)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Label:
    shown: str  # the text drawn
    full: str  # its <title> when it has one (an abbreviated label's full text), else `shown`
    box: Box


@dataclass(frozen=True)
class Chart:
    name: str
    box: Box
    labels: list[Label]
    bars: list[Box]


@dataclass(frozen=True)
class Layout:
    viewport_width: float
    page_width: float
    charts: list[Chart]


def overlap(a: Box, b: Box) -> tuple[float, float]:
    """How far two boxes overlap horizontally and vertically (0 when they do not)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return (max(width, 0.0), max(height, 0.0))


def overlaps(a: Box, b: Box) -> bool:
    width, height = overlap(a, b)
    return width > TOLERANCE_PX and height > TOLERANCE_PX


def outside(inner: Box, outer: Box) -> float:
    """How many pixels `inner` sticks out of `outer` on its worst side (0 when inside)."""
    return max(
        outer[0] - inner[0], outer[1] - inner[1], inner[2] - outer[2], inner[3] - outer[3], 0.0
    )


def _box(values: list[float]) -> Box:
    left, top, right, bottom = (float(v) for v in values)
    return (left, top, right, bottom)


def _parse(dom: str) -> Layout:
    found = LAYOUT_BLOCK.search(dom)
    if found is None:
        raise AssertionError(f"the measuring script wrote no layout; the page ends: {dom[-500:]}")
    raw = json.loads(unescape(found.group(1)))
    charts = [
        Chart(
            name=chart["name"],
            box=_box(chart["box"]),
            labels=[Label(t["shown"], t["full"], _box(t["box"])) for t in chart["texts"]],
            bars=[_box(bar) for bar in chart["bars"]],
        )
        for chart in raw["charts"]
    ]
    return Layout(float(raw["viewport"][0]), float(raw["page_width"]), charts)


def measure(chromium: str, page: str, width: int, workdir: Path) -> Layout:
    """The layout of `page` (a whole HTML document) in a `width`-pixel-wide window."""
    workdir.mkdir(parents=True, exist_ok=True)
    measured = workdir / f"page-{width}.html"
    measured.write_text(page.replace("</body>", MEASURE_SCRIPT + "</body>", 1), encoding="utf-8")
    command = [
        chromium,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",  # root in CI containers; the page is our own file
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-extensions",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={workdir / f'profile-{width}'}",
        f"--window-size={width},{VIEWPORT_HEIGHT}",
        "--dump-dom",
        measured.as_uri(),
    ]
    env = {**os.environ, "HOME": str(workdir)}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group: renderer and zygote stop with it
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(
            failure_message(command, f"ran past {TIMEOUT_SECONDS} s", stderr, stdout)
        ) from None
    if process.returncode != 0:
        raise AssertionError(
            failure_message(command, f"exited {process.returncode}", stderr, stdout)
        )
    return _parse(stdout.decode("utf-8", errors="replace"))
