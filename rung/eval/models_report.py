"""The model-selection report: a self-contained HTML page and a PNG of the Pareto fronts
of accuracy against generation tokens/s and against peak memory (matplotlib, the
``eval`` extra). A model is on a front when no other is at least as good on both axes
and better on one."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rung.eval.models import display_name, markdown


def pareto(points: Sequence[tuple[float, float]], *, more_x_better: bool) -> list[int]:
    """Indices of the points on the front (accuracy ``y`` higher is better; ``x`` higher
    is better when ``more_x_better``, else lower), ordered by x."""
    sign = 1.0 if more_x_better else -1.0
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (sign * x2 >= sign * x and y2 >= y) and (sign * x2 > sign * x or y2 > y)
            for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def plot(result: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["models"] if not r.get("error")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, key, xlabel, more in ((axes[0], "gen_tok_s", "generation tokens/s", True),
                                  (axes[1], "peak_rss_mb", "peak RSS (MB)", False)):
        pts = [(float(r[key] or 0), float(r["accuracy"]) * 100) for r in rows]
        for r, (x, y) in zip(rows, pts, strict=True):
            lo, hi = r["ci95"]
            ax.errorbar([x], [y], yerr=[[y - lo * 100], [hi * 100 - y]], fmt="o", capsize=3)
            ax.annotate(f"{display_name(r['model'])}\n{r['type']}", (x, y), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        front = pareto(pts, more_x_better=more)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], color="tab:red",
                lw=1, ls="--", label="Pareto front")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{result['dataset']} ({result['items']} items)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def write_report(result: dict[str, Any], out_dir: Path, *, command: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png, page = out_dir / "models.png", out_dir / "models.html"
    plot(result, png)
    img = base64.b64encode(png.read_bytes()).decode()
    page.write_text(
        "<!doctype html><meta charset=utf-8><title>rung model selection</title>"
        "<style>body{font:14px system-ui;margin:2em;max-width:1400px}"
        "pre{background:#f6f6f6;padding:1em}</style>"
        "<h1>Models: accuracy vs speed and memory</h1>"
        f"<p>Reproduce: <code>{html.escape(command)}</code></p>"
        f"<img alt='Pareto fronts: accuracy vs tokens/s and vs memory' "
        f"style='max-width:100%' src='data:image/png;base64,{img}'>"
        f"<pre>{html.escape(markdown(result))}</pre>"
        f"<h2>JSON</h2><pre>{html.escape(json.dumps(result, indent=2))}</pre>")
    return page, png
