"""``rung bench models``: several models side by side on one dataset, in one run.

Each model runs in a process of its own (:mod:`rung.eval.model_worker`), so its peak RSS
is its own and one model's load cannot disturb another's timings. There it is loaded as
the local tier loads it (:class:`rung.backends.llama.LlamaBackend`, prefix reuse off so
every prompt is evaluated in full), and answers every item greedily; each answer is
scored by the dataset's own check (:mod:`rung.eval.checks`). Measured per model:

- accuracy, with its 95% Wilson interval;
- prompt tokens/s (prompt tokens over the time to the first token), generation tokens/s
  (tokens after the first over the time after it), the median time to first token;
- peak RSS of its process, file size, load time;
- against ``--reference``: mean KL divergence of next-token distributions and top-1
  agreement on the dataset's own text (:mod:`rung.eval.kld`).

A candidate may name a test-time-compute strategy after ``+`` (``qwen2.5-coder-0.5b+sc8``):
its answers then go through :func:`rung.ttc.run`, as the gateway's would.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rung.config import CatalogConfig
from rung.errors import ConfigError, RungError
from rung.eval.datasets import Item


@dataclass(frozen=True)
class Candidate:
    """A model reference and, after ``+``, a test-time-compute strategy suffix."""

    name: str  # as typed
    model: str
    strategy: str | None = None


def parse_candidate(text: str) -> Candidate:
    """``MODEL`` or ``MODEL+STRATEGY``; the strategy is checked by :mod:`rung.ttc`."""
    text = text.strip()
    model, plus, suffix = text.partition("+")
    if not model:
        raise ConfigError(f"empty model name in {text!r}")
    if not plus:
        return Candidate(name=text, model=model)
    if not suffix:
        raise ConfigError(f"{text!r}: a strategy is needed after '+' (e.g. +sc8)")
    strategy_from_suffix(suffix)  # refuse an unknown suffix before any model loads
    return Candidate(name=text, model=model, strategy=suffix)


def strategy_from_suffix(suffix: str) -> Any:
    try:
        from rung.ttc import strategy_from_suffix as parse
    except ImportError as exc:
        raise ConfigError(f"'+{suffix}': this rung has no test-time-compute strategies "
                          "(rung.ttc)") from exc
    try:
        return parse(suffix)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (sound at 0 and n, unlike p±2se)."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def kl_text(items: Sequence[Item]) -> str:
    """The dataset's own text for the KL measurement: each question with its reference
    solution (GSM8K's worked answer, HumanEval's canonical code, BFCL's calls)."""
    parts = []
    for item in items:
        solution = item.extra.get("solution") or item.extra.get("canonical_solution") \
            or item.reference
        parts.append(f"{item.question}\n{solution}")
    return "\n\n".join(parts)


def is_traffic(dataset: str) -> bool:
    return dataset == "traffic" or dataset.endswith(".jsonl")


def load_items(dataset: str, data: str | None, limit: int | None) -> tuple[list[Item], str]:
    """A named dataset's first ``limit`` items (as ``rung eval run`` takes them), or a
    traffic export's (``--dataset traffic --data FILE``, or ``--dataset FILE.jsonl``)."""
    from rung.eval import traffic
    from rung.eval.datasets import first, load

    if is_traffic(dataset):
        path = data if dataset == "traffic" else dataset
        if path is None:
            raise ConfigError("dataset traffic needs --data FILE (`rung traces export`)")
        items, digest = traffic.load(path)
        return items[:limit] if limit else items, digest
    items, digest = load(dataset, data)
    return first(items, limit), digest


@dataclass(frozen=True)
class Spec:
    """What a worker process is asked to measure (passed as JSON)."""

    model: str
    dataset: str
    data: str | None
    limit: int | None
    max_tokens: int
    n_ctx: int
    threads: int
    seed: int
    strategy: str | None
    cache_dir: str


def measure_in_subprocess(spec: Spec, *, progress: bool = True) -> dict[str, Any]:
    """Run :mod:`rung.eval.model_worker` on ``spec``; its result, or ``error``."""
    with tempfile.TemporaryDirectory(prefix="rung-bench-") as tmp:
        src, dst = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        src.write_text(json.dumps(spec.__dict__))
        cmd = [sys.executable, "-m", "rung.eval.model_worker", str(src), str(dst)]
        if not progress:
            cmd.append("--quiet")
        done = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL,
                              stderr=None if progress else subprocess.PIPE, text=True)
        if done.returncode != 0 or not dst.exists():
            tail = (done.stderr or "").strip().splitlines()[-1:] if not progress else []
            return {"error": f"worker exited with status {done.returncode}"
                    + (f": {tail[0]}" if tail else "")}
        result: dict[str, Any] = json.loads(dst.read_text())
        return result


def bench(candidates: Sequence[Candidate], *, dataset: str, data: str | None,
          limit: int | None, reference: str | None, catalog: CatalogConfig,
          max_tokens: int = 384, n_ctx: int = 2048, threads: int = 2, seed: int = 0,
          kl_tokens: int = 1024, progress: bool = True, judge: tuple[Any, str] | None = None,
          log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every candidate measured on the dataset, and the KL columns against ``reference``.
    Traffic is scored by ``judge``: (a config, the name of its judging tier).

    Returns ``{"models": [...], "dataset", "items", "reference", ...}``."""
    from rung.catalog import resolve
    from rung.quantize import label

    items, digest = load_items(dataset, data, limit)
    if not items:
        raise ConfigError(f"dataset {dataset} has no items")
    if is_traffic(dataset) and judge is None:
        raise ConfigError("traffic has no reference answers: name a judging tier with "
                          "--judge TIER (of --config)")
    paths = {c.name: resolve(c.model, catalog=catalog) for c in candidates}
    ref_path = resolve(reference, catalog=catalog) if reference else None
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(candidates, 1):
        log(f"[{i}/{len(candidates)}] {c.name}: {len(items)} items")
        spec = Spec(model=str(paths[c.name]), dataset=dataset, data=data, limit=limit,
                    max_tokens=max_tokens, n_ctx=n_ctx, threads=threads, seed=seed,
                    strategy=c.strategy, cache_dir=str(catalog.cache_dir))
        result = measure_in_subprocess(spec, progress=progress)
        path = paths[c.name]
        row: dict[str, Any] = {"model": c.name, "path": str(path), "type": label(path),
                               "strategy": c.strategy, **result}
        rows.append(row)
        if judge is not None and "answers" in row:
            log(f"judging {c.name}'s answers with tier {judge[1]}")
            add_judged(row, judge)
    if ref_path is not None:
        log(f"KL divergence against {reference} on {kl_tokens} tokens of the dataset's text")
        add_divergence(rows, ref_path, kl_text(items), max_tokens=kl_tokens, threads=threads)
    return {"dataset": dataset, "data_sha256": digest, "items": len(items),
            "reference": reference, "max_tokens": max_tokens, "threads": threads,
            "models": rows}


def add_judged(row: dict[str, Any], judge: tuple[Any, str]) -> None:
    """Score a traffic row's answers with the judge: its accuracy and interval."""
    import asyncio

    from rung.eval import traffic

    answers = row.pop("answers")
    verdicts = asyncio.run(traffic.judge(judge[0], judge[1], answers))
    right, n = sum(verdicts), int(row.get("n") or len(verdicts))  # a failed answer: wrong
    lo, hi = wilson(right, n)
    row.update(correct=right, accuracy=round(right / max(n, 1), 4),
               ci95=[round(lo, 4), round(hi, 4)], judge=judge[1])


def add_divergence(rows: list[dict[str, Any]], reference: Path, text: str, *,
                   max_tokens: int, threads: int) -> None:
    """Fill each row's ``kld``, ``kld_p99`` and ``top1_agree`` (None, with ``kld_note``,
    where the tokenizers differ)."""
    from rung.eval import kld

    paths = list(dict.fromkeys(Path(r["path"]) for r in rows))
    try:
        found = kld.compare(reference, paths, text, max_tokens=max_tokens, threads=threads)
    except RungError as exc:
        found = {p: exc.message for p in paths}
    for row in rows:
        d = found.get(Path(row["path"]))
        if isinstance(d, kld.Divergence):
            row.update(kld=round(d.kld, 5), kld_p99=round(d.kld_p99, 4),
                       top1_agree=round(d.top1_agree, 4), kl_positions=d.positions)
        else:
            row.update(kld=None, kld_p99=None, top1_agree=None, kld_note=d)


COLUMNS = (("model", "model"), ("type", "type"), ("accuracy", "acc"), ("ci95", "95% CI"),
           ("prompt_tok_s", "prompt tok/s"), ("gen_tok_s", "gen tok/s"),
           ("ttft_ms", "TTFT ms"), ("peak_rss_mb", "peak RSS MB"), ("file_mb", "file MB"),
           ("load_s", "load s"), ("kld", "KLD"), ("top1_agree", "top-1 agree"))


def display_name(model: str) -> str:
    """A candidate as tables show it: a path by its file name (stem), else as typed."""
    name, plus, strategy = model.partition("+")
    return (Path(name).stem if name.endswith(".gguf") else name) + plus + strategy


def _cell(row: dict[str, Any], key: str) -> str:
    if row.get("error") and key not in ("model", "type"):
        return "error" if key == "accuracy" else ""
    v = row.get(key)
    if key == "model":
        return display_name(str(v))
    if key == "ci95" and isinstance(v, list):
        return f"{v[0]:.2f}-{v[1]:.2f}"
    if v is None:
        return "n/a"
    if key == "accuracy":
        return f"{v:.3f}"
    if key == "kld":
        return f"{v:.4f}"
    if key == "top1_agree":
        return f"{v * 100:.1f}%"
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 10 or key == "ttft_ms" else f"{v:.2f}"
    return str(v)


def markdown(result: dict[str, Any]) -> str:
    """The result as a markdown table, notes under it."""
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |",
             "|" + "---|" * 2 + "---:|" * (len(COLUMNS) - 2)]
    notes = []
    for row in result["models"]:
        lines.append("| " + " | ".join(_cell(row, k) for k, _ in COLUMNS) + " |")
        if row.get("error"):
            notes.append(f"- {row['model']}: {row['error']}")
        elif row.get("kld_note"):
            notes.append(f"- {row['model']}: no KLD ({row['kld_note']})")
    head = (f"{result['dataset']}, {result['items']} items, greedy, max_tokens "
            f"{result['max_tokens']}, {result['threads']} threads; KLD/top-1 against "
            f"{result['reference'] or '(no reference)'}")
    return "\n".join([head, "", *lines, *([""] + notes if notes else [])])
