"""The drift report as one self-contained HTML page (pure): inline CSS and SVG charts,
no scripts and nothing fetched, so it opens anywhere, attachments and artifacts included."""

from __future__ import annotations

from html import escape

from tabml.config import DriftParams
from tabml.monitor.drift import DriftSummary, FeatureDrift

WIDTH, HEIGHT, PAD = 420, 150, 24
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328;max-width:1100px}
h1{font-size:1.5rem}.verdict{padding:.8rem 1rem;border-radius:6px;font-weight:600}
.drift{background:#ffebe9;border:1px solid #cf222e}
.stable{background:#dafbe1;border:1px solid #1a7f37}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #d0d7de;padding:.3rem .6rem}
th{background:#f6f8fa}td.num{text-align:right}.flag{color:#cf222e;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:1rem}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.5rem}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}
"""
REFERENCE_COLOUR, SAMPLE_COLOUR = "#8c959f", "#0969da"


def bars(labels: list[str], reference: list[float], sample: list[float], title: str) -> str:
    """Side-by-side bars of reference and sample shares per bin, as inline SVG."""
    top = max([*reference, *sample, 1e-9])
    slot = (WIDTH - 2 * PAD) / max(len(labels), 1)
    bar = slot * 0.4
    parts = [
        f'<svg width="{WIDTH}" height="{HEIGHT + 40}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, label in enumerate(labels):
        x = PAD + i * slot
        for offset, share, colour in (
            (0, reference[i], REFERENCE_COLOUR),
            (bar, sample[i], SAMPLE_COLOUR),
        ):
            height = (HEIGHT - PAD) * share / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{HEIGHT - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{escape(label)}: '
                f"{share:.1%}</title></rect>"
            )
        parts.append(
            f'<text x="{x + bar:.1f}" y="{HEIGHT + 14}" font-size="9" '
            f'text-anchor="middle">{escape(label[:14])}</text>'
        )
    parts.append(
        f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH - PAD}" y2="{HEIGHT}" stroke="#57606a"/></svg>'
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
