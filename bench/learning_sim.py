"""Learning from traffic, simulated at scale: does a router learned through the gateway,
from one-sided and partly wrong feedback, route as well as one trained offline?

    .venv/bin/python bench/learning_sim.py [--requests 3000] [--window 500]
        [--feedback 0.5] [--flip 0.1] [--shadow 0] [--shadow-down 0] [--seed 0]
        [--plot docs/learning.png]

Data: RouteLLM's outcome tables in ../shared (MMLU and GSM8K: for each question, whether
Mixtral-8x7B (weak) and GPT-4 (strong) answered it right), shuffled; the first
``--requests`` are the traffic, the rest are kept to evaluate the routers on.

Set-up, all real and on loopback: two upstreams that answer as the recorded models did
(GSM8K: the models' recorded answers; MMLU, where only correctness is recorded: a stand-in
"The answer is X.", the right letter when the model was right, else another one,
learning_replica.replies), and `rung serve` (a process) with tiers weak -> strong and
``routing.scorer = {type = "learned", path = <learn folder>}``: the heuristic until a
router is promoted, then the promoted one, swapped without a restart.

The loop: each request goes to the alias, with ``rung.thresholds`` set per window so that
half of the traffic starts at the strong tier (the median score of the previous window's
prompts under the router in use), so windows compare at equal cost. A ``--feedback`` share
of the answers is rated through POST /v1/feedback with the answering model's recorded
correctness, a ``--flip`` share of those ratings inverted. After every ``--window``
requests, `rung learn` runs (in-process, as the CLI) and the server picks up what it
promotes. With ``--shadow SHARE``, ``routing.shadow = {share = SHARE}``: that share of the
weak tier's answers is answered again by the strong tier in the background and compared
(labels rung learn reads, rung.learning); with ``--shadow-down SHARE``,
``routing.shadow.down``: that share of the strong tier's answers is answered again by the
weak tier (labels about the weak tier where the router in use sends traffic past it).

Printed: per window, the router in use (and how many prompts it found out of its domain,
scored by its fallback), the traffic's accuracy and strong share; at the
end, APGR on the held-out rest for the learned router, the heuristic, random routing, and
a router trained offline on the traffic's full (two-sided, never flipped) outcomes. Bounded:
every request and learn has a timeout, and the server and upstreams are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from learning_replica import replies

from rung.cli.main import main as rung_main
from rung.devtools.upstream import UpstreamBehaviour, create_upstream_app
from rung.routing.data import Outcome, load_many
from rung.routing.heads import HeadsRouter, load_router
from rung.routing.learned import RouterModel, train_router
from rung.routing.metrics import evaluate
from rung.routing.scorers import OUT_OF_DOMAIN, HeuristicScorer
from rung.types import ChatRequest, Message

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "routellm"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream:
    """An OpenAI-compatible upstream on its own thread, answering as a recorded model."""

    def __init__(self, reply: dict[str, str]) -> None:
        self.port = _port()
        self.loop = asyncio.new_event_loop()
        app = create_upstream_app(UpstreamBehaviour(
            reply=None, reply_fn=lambda prompt: reply.get(prompt, "(no recording)")))
        self._runner = web.AppRunner(app, access_log=None)
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return dict(json.loads(r.read()))


def _apgr(scores: Any, items: list[Outcome]) -> float:
    return evaluate(np.asarray(scores, dtype=np.float64), [o.weak_correct for o in items],
                    [o.strong_correct for o in items]).apgr


def _scores(router: RouterModel | HeadsRouter | None, prompts: list[str]) -> Any:
    if router is None:
        h = HeuristicScorer()
        return np.array([h.score(ChatRequest(messages=(Message("user", p),))) for p in prompts])
    return router.score_batch(prompts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--feedback", type=float, default=0.5, help="share of answers rated")
    ap.add_argument("--flip", type=float, default=0.1, help="share of ratings inverted")
    ap.add_argument("--shadow", type=float, default=0.0,
                    help="routing.shadow's share (0: no shadow comparisons)")
    ap.add_argument("--shadow-down", type=float, default=0.0,
                    help="routing.shadow's down share (0: no downward shadows)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=None, help="write a PNG of the windows here")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    items = load_many(DATA, ("mmlu", "gsm8k"))
    # one item per prompt text: the upstreams and the feedback look items up by prompt
    by_prompt = {o.prompt: o for o in items}
    items = list(by_prompt.values())
    rng.shuffle(items)
    traffic, rest = items[:args.requests], items[args.requests:]
    said = {o.prompt: replies(o) for o in items}
    weak = Upstream({p: w for p, (w, _) in said.items()})
    strong = Upstream({p: s for p, (_, s) in said.items()})
    tmp = Path(tempfile.mkdtemp(prefix="rung-learning-"))
    learned, store = tmp / "learned", f"sqlite:///{tmp / 'traces.db'}"
    learned.mkdir()
    cfg = tmp / "rung.toml"
    shadow = (f"shadow = {{ share = {args.shadow}, down = {args.shadow_down}, "
              "max_in_flight = 64 }\n") if args.shadow or args.shadow_down else ""
    cfg.write_text(
        f'[store]\nurl = "{store}"\n'
        f'[routing]\nscorer = {{ type = "learned", path = "{learned}" }}\n{shadow}'
        '[[tiers]]\nname = "weak"\n'
        f'backend = {{ type = "openai", base_url = "http://127.0.0.1:{weak.port}/v1", '
        'model = "mixtral" }\n'
        '[[tiers]]\nname = "strong"\n'
        f'backend = {{ type = "openai", base_url = "http://127.0.0.1:{strong.port}/v1", '
        'model = "gpt-4" }\n')
    port = _port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rung.cli.main", "serve", "--config", str(cfg), "--port",
         str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    windows: list[dict[str, Any]] = []
    router: RouterModel | HeadsRouter | None = None
    version = "heuristic"
    t_start = time.monotonic()
    try:
        for _ in range(200):
            try:
                _post(f"{url}/v1/chat/completions", {"model": "weak", "messages": [
                    {"role": "user", "content": "warm-up"}]})
                break
            except OSError:
                time.sleep(0.1)
        for w0 in range(0, len(traffic), args.window):
            window = traffic[w0:w0 + args.window]
            calib = traffic[max(0, w0 - args.window):w0] or window
            threshold = float(np.median(_scores(router, [o.prompt for o in calib])))
            right = strong_n = rated = fallback = 0
            routers: set[str] = set()
            for o in window:
                got = _post(f"{url}/v1/chat/completions", {
                    "model": "rung", "messages": [{"role": "user", "content": o.prompt}],
                    "rung": {"thresholds": [threshold]}})
                tier = got["rung"]["tier"]
                used = str(got["rung"].get("router"))
                fallback += used.endswith(OUT_OF_DOMAIN)
                routers.add(used.removesuffix(OUT_OF_DOMAIN))
                ok = o.strong_correct if tier == "strong" else o.weak_correct
                right += ok
                strong_n += tier == "strong"
                if rng.random() < args.feedback:
                    said = ok if rng.random() >= args.flip else not ok
                    _post(f"{url}/v1/feedback", {"id": got["id"], "score": float(said)})
                    rated += 1
            windows.append({"requests": w0 + len(window), "router": sorted(routers),
                            "threshold": round(threshold, 4),
                            "accuracy": round(right / len(window), 4),
                            "strong_share": round(strong_n / len(window), 4), "rated": rated,
                            "out_of_domain": fallback})
            t0 = time.monotonic()
            rc = rung_main(["learn", "--config", str(cfg), "--out", str(learned),
                            "--seed", str(args.seed)])
            report = json.loads((learned / "report.json").read_text())
            windows[-1]["learn"] = {"rc": rc, "labelled": report["labelled"],
                                    "promoted": report["promoted"],
                                    "ranking_held_back": report["router"].get("ranking"),
                                    "current_ranking": report["current"].get("ranking"),
                                    "difference": report.get("difference"),
                                    "seconds": round(time.monotonic() - t0, 1)}
            if report["promoted"]:
                promoted = json.loads((learned / "promoted.json").read_text())
                router = load_router(learned / promoted["path"])
                version = f"learned:{promoted['version']}"
                time.sleep(1.2)  # the server looks at promoted.json once a second
            print(json.dumps(windows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        weak.stop()
        strong.stop()
    # APGR on the rest, which no router saw
    prompts = [o.prompt for o in rest]
    last = json.loads((learned / "report.json").read_text())
    candidate = load_router(learned / "versions" / last["version"] / "router.npz") \
        if (learned / "versions" / last["version"] / "router.npz").is_file() else None
    offline = train_router(traffic, use_embeddings=False, seed=args.seed)
    result = {
        "requests": len(traffic), "held_out": len(rest), "feedback": args.feedback,
        "shadow": args.shadow, "shadow_down": args.shadow_down,
        "flip": args.flip, "windows": windows, "final_router": version,
        "apgr_on_rest": {
            "router in use at the end (promoted, else the heuristic)": round(
                _apgr(_scores(router, prompts), rest), 4),
            "last candidate rung learn fitted (promoted or not)": round(
                _apgr(_scores(candidate, prompts), rest), 4) if candidate is not None else None,
            "heuristic": round(_apgr(_scores(None, prompts), rest), 4),
            "random": 0.5,
            "offline, the traffic's full outcomes": round(
                _apgr(offline.score_batch(prompts), rest), 4)},
        "seconds": round(time.monotonic() - t_start, 1)}
    print(json.dumps(result["apgr_on_rest"], indent=2))
    print("\n| after requests | router in use | out of domain | accuracy | strong share | "
          "labelled | promoted |")
    print("|---|---|---|---|---|---|---|")
    for w in windows:
        print(f"| {w['requests']} | {', '.join(w['router'])} | {w['out_of_domain']} | "
              f"{w['accuracy']:.3f} | {w['strong_share']:.2f} | {w['learn']['labelled']} | "
              f"{w['learn']['promoted']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.2))
        xs = [w["requests"] for w in windows]
        ax.plot(xs, [w["accuracy"] for w in windows], marker="o", label="accuracy per window")
        ax.set_xlabel("requests")
        ax.set_ylabel("accuracy (half the traffic on strong)")
        ax.axhline(np.mean([(o.weak_correct + o.strong_correct) / 2 for o in traffic]),
                   color="grey", linestyle="--", label="random routing (expected)")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
