"""The routing report: a self-contained HTML page and a PNG of quality vs cost.

Every scorer and cascade is drawn against random and oracle: accuracy (and PGR) over the
share of calls sent to the strong model. matplotlib (the ``eval`` extra) draws the PNG;
the HTML embeds it, so the page needs nothing else.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from rung.eval.routing import Curve, markdown


def plot(summaries: list[dict[str, Any]], curves: list[dict[str, Curve]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(6.5 * len(summaries), 5),
                             squeeze=False)
    for ax, summary, cs in zip(axes[0], summaries, curves, strict=True):
        for label, c in cs.items():
            style = {"random": {"color": "grey", "ls": "--"},
                     "oracle": {"color": "black", "ls": ":"}}.get(label, {})
            apgr = summary["results"][label]["apgr"]
            ax.plot(c.shares * 100, c.accuracy * 100, label=f"{label} (APGR {apgr:.3f})",
                    **style)
        ax.axhline(summary["weak"] * 100, color="tab:red", lw=0.8, alpha=0.5)
        ax.axhline(summary["strong"] * 100, color="tab:green", lw=0.8, alpha=0.5)
        ax.set_title(f"{summary['benchmark']} ({summary['n']} items, {summary['protocol']})")
        ax.set_xlabel("calls to the strong model (%)")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def write_report(summaries: list[dict[str, Any]], curves: list[dict[str, Curve]],
                 out_dir: Path, *, command: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png, page = out_dir / "routing.png", out_dir / "routing.html"
    plot(summaries, curves, png)
    img = base64.b64encode(png.read_bytes()).decode()
    tables = "".join(f"<pre>{html.escape(markdown(s))}</pre>" for s in summaries)
    page.write_text(
        "<!doctype html><meta charset=utf-8><title>rung routing report</title>"
        "<style>body{font:14px system-ui;margin:2em;max-width:1400px}"
        "pre{background:#f6f6f6;padding:1em}</style>"
        "<h1>Routing: quality vs cost</h1>"
        f"<p>Reproduce: <code>{html.escape(command)}</code></p>"
        f"<img alt='accuracy vs share of strong calls' style='max-width:100%' "
        f"src='data:image/png;base64,{img}'>{tables}"
        f"<h2>JSON</h2><pre>{html.escape(json.dumps(summaries, indent=2))}</pre>")
    return page, png
