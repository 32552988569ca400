"""A drift report as one self-contained HTML page: the table and inline SVG histograms
(reference vs recent) of router and verifier scores. No scripts, no CDN."""

from __future__ import annotations

from html import escape

import numpy as np

from rung.drift.report import DriftReport

BINS = 20
_W, _H, _PAD = 460, 160, 24
_COLOURS = ("#4c78a8", "#f58518")  # reference, recent


def histogram_svg(
    reference: list[float], recent: list[float], *, title: str, bins: int = BINS
) -> str:
    """Two share-of-window histograms over [0, 1], drawn side by side in each bin."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    shares = [
        np.histogram(np.clip(v, 0.0, 1.0), bins=edges)[0] / max(1, len(v))
        for v in (reference, recent)
    ]
    top = max(float(max(s.max() for s in shares)), 1e-9)
    bw = (_W - 2 * _PAD) / bins
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H + 30}" '
            f'role="img" aria-label="{escape(title)}">'
        ),
        f'<text x="{_PAD}" y="14" font-size="12">{escape(title)}</text>',
    ]
    for series, (share, colour) in enumerate(zip(shares, _COLOURS, strict=True)):
        for i, v in enumerate(share):
            h = float(v) / top * (_H - _PAD)
            x = _PAD + i * bw + series * bw / 2
            parts.append(
                f'<rect x="{x:.1f}" y="{_H - h:.1f}" width="{bw / 2 - 1:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{edges[i]:.2f}-'
                f"{edges[i + 1]:.2f}: {v:.1%}</title></rect>"
            )
    parts.append(f'<line x1="{_PAD}" y1="{_H}" x2="{_W - _PAD}" y2="{_H}" stroke="#333"/>')
    for tick in (0.0, 0.5, 1.0):
        x = _PAD + tick * (_W - 2 * _PAD)
        parts.append(
            f'<text x="{x:.1f}" y="{_H + 14}" font-size="10" text-anchor="middle">{tick:g}</text>'
        )
    parts.append(
        f'<text x="{_PAD}" y="{_H + 28}" font-size="10" fill="{_COLOURS[0]}">'
        f"reference (n={len(reference)})</text>"
        f'<text x="{_W / 2:.0f}" y="{_H + 28}" font-size="10" fill="{_COLOURS[1]}">'
        f"recent (n={len(recent)})</text></svg>"
    )
    return "".join(parts)


def render_html(report: DriftReport, *, title: str = "rung drift report") -> str:
    rows = "".join(
        f'<tr class="{"drift" if t.drifted else "ok"}"><td>{escape(t.name)}</td>'
        f"<td>{t.statistic:.4f}</td><td>{t.p_value:.4f}</td><td>{t.threshold:g}</td>"
        f"<td>{'DRIFT' if t.drifted else 'ok'}</td><td>{escape(t.explanation)}</td></tr>"
        for t in report.tests
    )
    charts = "".join(histogram_svg(a, b, title=name) for name, (a, b) in report.samples.items())
    overall = ("DRIFT" if report.drifted else "ok") if report.enough else "too few traces"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd;
text-align: left; font-size: 13px; }} tr.drift td {{ background: #fde2e1; }}
svg {{ margin: 8px 16px 8px 0; }}
</style></head><body>
<h1>{escape(title)}</h1>
<p>reference: {report.n_reference} traces &middot; recent: {report.n_recent} traces &middot;
input features: {escape(report.features)} &middot; overall: <b>{overall}</b>
(Bonferroni threshold {report.corrected_alpha:.3g})</p>
<table><tr><th>test</th><th>statistic</th><th>p</th><th>threshold</th><th>result</th>
<th>explanation</th></tr>{rows}</table>
<div>{charts}</div>
</body></html>
"""
