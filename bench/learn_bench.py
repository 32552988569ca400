"""How long `rung learn` takes on a store of 10,000 labelled traces.

    .venv/bin/python bench/learn_bench.py [--traces 10000] [--repeat 3]

Writes a fresh SQLite trace store of ``--traces`` requests (RouteLLM's MMLU + GSM8K prompts
from ../shared, half answered by the weak tier and half by the strong one, each with a
user rating of that answer: its recorded correctness) and times `rung learn` on it, in a
fresh process each time (imports included), ``--repeat`` times; prints each run and the
median.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rung.routing.data import load_many
from rung.store.feedback import Feedback
from rung.store.sqlite import SqliteStore
from rung.store.trace import Trace

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "routellm"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    items = list({o.prompt: o for o in load_many(DATA, ("mmlu", "gsm8k"))}.values())
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="rung-learn-bench-") as tmp:
        db = Path(tmp) / "traces.db"
        store = SqliteStore(db)
        t0 = time.time() - args.traces
        for i in range(args.traces):
            o = items[i % len(items)]
            tier = "weak" if rng.random() < 0.5 else "strong"
            tid = f"chatcmpl-bench{i:012d}"
            store.write_sync(Trace(
                id=tid, time=t0 + i, model="rung", tier=tier,
                messages=[{"role": "user", "content": o.prompt}], response="(answer)",
                route={"tier": tier, "attempts": [{"tier": tier, "outcome": "answered"}]}))
            ok = o.weak_correct if tier == "weak" else o.strong_correct
            store.add_feedback(Feedback(tid, float(ok), t0 + i + 0.5))
        store.close()
        cfg = Path(tmp) / "rung.toml"
        cfg.write_text(f'[store]\nurl = "sqlite:///{db}"\n'
                       '[[tiers]]\nname = "weak"\n'
                       'backend = { type = "openai", base_url = "http://127.0.0.1:9/v1", '
                       'model = "w" }\n'
                       '[[tiers]]\nname = "strong"\n'
                       'backend = { type = "openai", base_url = "http://127.0.0.1:9/v1", '
                       'model = "s" }\n')
        runs = []
        for k in range(args.repeat):
            t = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "rung.cli.main", "learn", "--config",
                                   str(cfg), "--out", f"{tmp}/out{k}"],
                                  check=False, capture_output=True, text=True, timeout=600)
            runs.append(time.perf_counter() - t)
            print(f"run {k + 1}: {runs[-1]:.1f} s, rc {done.returncode}: "
                  f"{done.stdout.strip()[:200]}", flush=True)
        print(f"\n{args.traces} traces: rung learn median {statistics.median(runs):.1f} s "
              f"over {len(runs)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
