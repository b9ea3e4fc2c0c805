"""The drift report as one self-contained HTML page (pure): inline CSS and SVG charts,
no scripts and nothing fetched, so it opens anywhere, attachments and artifacts included."""

from __future__ import annotations

import math
from collections import Counter
from html import escape

from tabml.config import DriftParams
from tabml.monitor.drift import DriftSummary, FeatureDrift

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328;max-width:1100px}
h1{font-size:1.5rem}.verdict{padding:.8rem 1rem;border-radius:6px;font-weight:600}
.drift{background:#ffebe9;border:1px solid #cf222e}
.stable{background:#dafbe1;border:1px solid #1a7f37}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #d0d7de;padding:.3rem .6rem}
th{background:#f6f8fa}td.num{text-align:right}.flag{color:#cf222e;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:1rem}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.5rem;max-width:100%}
.card svg{display:block;max-width:100%;height:auto}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}
"""
REFERENCE_COLOUR, SAMPLE_COLOUR = "#8c959f", "#0969da"

# One row per bin, its label left of its two bars (reference above sample): a label as
# long as "-1.804e-05 to -1.232e-05" or a merchant category name gets a line of its
# own, however many bins there are. Labels under vertical bars could not: ten
# numeric bins in a 420 px chart overlapped their neighbours by about 30 px, and a
# 24-category feature by up to 57 px (measured in Chromium at 1280 px).
FONT_PX = 11
ROW_PX = 20
BAR_PX = 7
BAR_AREA_PX = 300
GAP_PX = 8
EDGE_PX = 4
# Longer labels are cut to this many characters; the full text is the label's tooltip.
LABEL_CHARS = 32
# Advance widths as a share of the font size, at the wide end of common sans-serif
# fonts (DejaVu Sans, where "m" is 0.97 em, "<" and "+" 0.84 em, digits 0.64 em): the
# page cannot measure its text, so it reserves room for the widest likely rendering of
# each label. Anything beyond ASCII (the ellipsis, accents, wide scripts) counts as 1 em.
WIDE_GLYPHS = frozenset("mwMW@%")
BROAD_GLYPHS = frozenset("<>+=#&~^")
WIDE_EM, BROAD_EM, OTHER_EM = 1.0, 0.85, 0.65


def _glyph_em(char: str) -> float:
    if char in WIDE_GLYPHS or not char.isascii():
        return WIDE_EM
    return BROAD_EM if char.isupper() or char in BROAD_GLYPHS else OTHER_EM


def text_width(text: str) -> float:
    """An upper estimate of `text`'s width in pixels at FONT_PX."""
    return FONT_PX * sum(_glyph_em(char) for char in text)


def _shortened(label: str) -> str:
    """`label` cut to LABEL_CHARS around an ellipsis, keeping its start and its end:
    categories that share a long prefix ("…-online", "…-in-store") stay told apart."""
    if len(label) <= LABEL_CHARS:
        return label
    head = (LABEL_CHARS - 1) // 2
    return label[:head] + "…" + label[-(LABEL_CHARS - 1 - head) :]


def abbreviations(labels: list[str]) -> list[str]:
    """The labels as drawn: short ones whole, long ones shortened, except where two
    shortened labels would read the same; those stay whole."""
    shortened = [_shortened(label) for label in labels]
    counts = Counter(shortened)
    return [
        short if counts[short] == 1 else label
        for short, label in zip(shortened, labels, strict=True)
    ]


def _axis_label(label: str, shown: str, x: float, y: float) -> str:
    tooltip = "" if shown == label else f"<title>{escape(label)}</title>"
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{FONT_PX}" text-anchor="end" '
        f'dominant-baseline="central">{tooltip}{escape(shown)}</text>'
    )


def bars(labels: list[str], reference: list[float], sample: list[float], title: str) -> str:
    """Reference and sample shares per bin as inline SVG, one labelled row per bin."""
    top = max([*reference, *sample, 1e-9])
    shown = abbreviations(labels)
    label_width = max([text_width(text) for text in shown] or [0.0])
    axis = EDGE_PX + label_width + GAP_PX
    width = math.ceil(axis + BAR_AREA_PX + EDGE_PX)
    height = 2 * EDGE_PX + ROW_PX * len(labels)
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, label in enumerate(labels):
        row = EDGE_PX + i * ROW_PX
        for offset, share, colour in (
            (ROW_PX / 2 - BAR_PX, reference[i], REFERENCE_COLOUR),
            (ROW_PX / 2, sample[i], SAMPLE_COLOUR),
        ):
            parts.append(
                f'<rect x="{axis:.1f}" y="{row + offset:.1f}" '
                f'width="{BAR_AREA_PX * share / top:.1f}" height="{BAR_PX}" fill="{colour}">'
                f"<title>{escape(label)}: {share:.1%}</title></rect>"
            )
        parts.append(_axis_label(label, shown[i], axis - GAP_PX, row + ROW_PX / 2))
    parts.append(
        f'<line x1="{axis:.1f}" y1="{EDGE_PX}" x2="{axis:.1f}" y2="{height - EDGE_PX}" '
        'stroke="#57606a"/></svg>'
    )
    return "".join(parts)


def _feature_row(f: FeatureDrift) -> str:
    psi = "—" if f.psi is None else f"{f.psi:.3f}"
    flag = '<span class="flag">drifted</span>' if f.drifted else "stable"
    return (
        f"<tr><td>{escape(f.feature)}</td><td>{f.kind}</td><td>{f.test}</td>"
        f'<td class="num">{f.statistic:.3f}</td><td class="num">{f.p_value:.2e}</td>'
        f'<td class="num">{psi}</td><td>{flag}</td></tr>'
    )


def render_html(summary: DriftSummary, params: DriftParams, source: str) -> str:
    reasons = summary.reasons(params)
    verdict = (
        f'<p class="verdict drift">Drift detected: {escape("; ".join(reasons))}</p>'
        if reasons
        else '<p class="verdict stable">No drift detected.</p>'
    )
    ranked = sorted(summary.features, key=lambda f: (not f.drifted, -(f.psi or 0.0)))
    p = summary.predictions
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>Drift report: {escape(source)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Drift report</h1><p>Sample <code>{escape(source)}</code>: "
        f"{summary.sample_rows} rows against {summary.reference_rows} reference rows. "
        f"{len(summary.drifted_features)} of {len(summary.features)} features drifted "
        f"({summary.drifted_share:.0%}).</p>",
        verdict,
        '<p class="legend"><span style="background:' + REFERENCE_COLOUR + '"></span>reference'
        '<span style="background:' + SAMPLE_COLOUR + '"></span>production sample</p>',
        "<h2>Predictions</h2>",
        bars(p.classes, p.reference_shares, p.sample_shares, "Predicted-class shares"),
        f"<p>PSI {p.psi:.3f} (threshold {params.prediction_psi_threshold}), chi-squared "
        f"p-value {p.p_value:.2e}.</p>",
    ]
    if summary.live:
        live = summary.live
        parts.append(
            f"<h2>Live metrics ({live.rows} labelled rows)</h2><table><tr><th>metric"
            "</th><th>live</th><th>evaluation</th></tr>"
        )
        parts += [
            f'<tr><td>{name}</td><td class="num">{value:.3f}</td><td class="num">'
            f"{live.evaluation.get(name, float('nan')):.3f}</td></tr>"
            for name, value in live.metrics.items()
        ]
        parts.append("</table>")
    parts += [
        "<h2>Features</h2>",
        f"<p>A numeric feature drifts when its Kolmogorov-Smirnov p-value is below "
        f"{summary.alpha:.2e} ({params.p_value} split over {len(summary.features)} features) "
        f"and its PSI is at least {params.psi_threshold}; a categorical one when its "
        "chi-squared p-value is below that level.</p>",
        "<table><tr><th>feature</th><th>type</th><th>test</th><th>statistic</th><th>p-value"
        "</th><th>PSI</th><th>status</th></tr>",
        *[_feature_row(f) for f in ranked],
        "</table>",
        '<div class="grid">',
        *[
            f'<div class="card"><strong>{escape(f.feature)}</strong>'
            f"{' (drifted)' if f.drifted else ''}<br>"
            f"{bars(f.bin_labels, f.reference_shares, f.sample_shares, f.feature)}</div>"
            for f in ranked
        ],
        "</div></body></html>",
    ]
    return "\n".join(parts) + "\n"
