"""``rung traces``: list, filter and export the traces of every request."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from datetime import datetime
from typing import Any

from rung.cli.common import add_config_arg, config_from
from rung.errors import ConfigError
from rung.types import Outcome

EXPORT_FIELDS = ("id", "time", "tier", "status", "model", "input_tokens", "output_tokens",
                 "latency_ms", "ttft_ms", "cost", "escalated", "score", "key_id", "stream",
                 "prompt_hash", "error")


def _when(value: str) -> float:
    """An ISO time, unix seconds, or a span back from now: 30s, 15m, 2h, 7d."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", value)
    if m:
        return time.time() - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[
            m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as exc:
        raise ConfigError(f"not a time: {value!r} (use ISO 8601, unix seconds or 2h)") from exc


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("traces", help="list, filter and export request traces")
    tsub = p.add_subparsers(dest="traces_command", required=True, metavar="ACTION")
    for name, help_ in (("list", "print traces as a table, newest first"),
                        ("export", "write traces as JSON lines or CSV, oldest first")):
        q = tsub.add_parser(name, help=help_)
        add_config_arg(q)
        q.add_argument("--store", default=None, metavar="URL",
                       help="trace store (default: config store.url)")
        q.add_argument("--since", type=_when, default=None, help="ISO time, unix time or 2h")
        q.add_argument("--until", type=_when, default=None)
        q.add_argument("--tier", default=None)
        q.add_argument("--key", default=None, help="API key id")
        esc = q.add_mutually_exclusive_group()
        esc.add_argument("--escalated", dest="escalated", action="store_const", const=True)
        esc.add_argument("--not-escalated", dest="escalated", action="store_const", const=False)
        err = q.add_mutually_exclusive_group()
        err.add_argument("--errors", dest="errors", action="store_const", const=True)
        err.add_argument("--ok", dest="errors", action="store_const", const=False)
        q.add_argument("--limit", type=int, default=50 if name == "list" else None)
        if name == "export":
            q.add_argument("--format", choices=("jsonl", "csv", "outcomes"), default="jsonl",
                           help="outcomes: a table `rung router train --benchmark traffic` "
                           "reads (needs --output DIR)")
            q.add_argument("--output", "-o", default="-", help="file (default stdout), or "
                           "the directory for --format outcomes")
        q.set_defaults(func=_list if name == "list" else _export)


def _open(args: argparse.Namespace) -> Any:
    from rung.store.base import open_store, sqlite_path

    url = args.store or config_from(args).store.url
    if url.startswith("sqlite:///") and not sqlite_path(url).exists():
        raise ConfigError(f"no trace store at {sqlite_path(url)}")
    return open_store(url)


def _query(args: argparse.Namespace, store: Any, *, newest_first: bool) -> Any:
    return store.query(since=args.since, until=args.until, tier=args.tier, key_id=args.key,
                       escalated=args.escalated, errors=args.errors, limit=args.limit,
                       newest_first=newest_first)


def _list(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        print(f"{'TIME':<19} {'ID':<14} {'TIER':<16} {'STATUS':<22} {'IN':>6} {'OUT':>6} "
              f"{'MS':>8} {'COST':>10} ESC")
        for t in _query(args, store, newest_first=True):
            when = datetime.fromtimestamp(t.time).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{when:<19} {t.id[-14:]:<14} {(t.tier or '-'):<16} {t.status[:22]:<22} "
                  f"{t.input_tokens:>6} {t.output_tokens:>6} {t.latency_ms:>8.1f} "
                  f"{t.cost:>10.6f} {'yes' if t.escalated else 'no'}")
    finally:
        store.close()
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.format == "outcomes":
        return _export_outcomes(args)
    store = _open(args)
    out = sys.stdout if args.output == "-" else open(  # noqa: SIM115 - or stdout
        args.output, "w", newline="")
    try:
        said: dict[str, list[dict[str, Any]]] = {}  # trace id -> its feedback, oldest first
        for fb in store.feedback():
            said.setdefault(fb.trace_id, []).append(fb.as_dict())
        if args.format == "jsonl":
            for t in _query(args, store, newest_first=False):
                d = t.as_dict()
                if t.prompt is not None:
                    d["prompt"] = t.prompt
                if t.id in said:
                    d["feedback"] = said[t.id]
                out.write(json.dumps(d, ensure_ascii=False) + "\n")
        else:
            w = csv.writer(out)
            # new columns last: the ones before kept their places when each was added
            w.writerow([*EXPORT_FIELDS, "route", "messages", "response", "tools", "feedback",
                        "prompt"])
            for t in _query(args, store, newest_first=False):
                d = t.as_dict()
                w.writerow([*(d[f] for f in EXPORT_FIELDS), json.dumps(d["route"]),
                            json.dumps(d["messages"]), d["response"],
                            json.dumps(t.tools) if t.tools is not None else "",
                            json.dumps(said[t.id]) if t.id in said else "",
                            json.dumps(t.prompt) if t.prompt is not None else ""])
    finally:
        store.close()
        if out is not sys.stdout:
            out.close()
    return 0


def _export_outcomes(args: argparse.Namespace) -> int:
    """Label live traffic with the cascade's own verdicts, for retraining the router:
    a request that started on the cheapest tier is "weak right" when that tier's answer
    was accepted and "weak wrong" when its verifiers rejected it; the tier above is
    taken as right. A router trained on it learns which prompts the cheapest tier's
    verifiers will reject, so those can skip it."""
    from pathlib import Path

    from rung.eval.outcomes import write_outcomes

    if args.output == "-":
        raise ConfigError("--format outcomes needs --output DIR")
    cheapest = config_from(args).ladder_tiers[0].name
    store = _open(args)
    rows = []
    try:
        for t in _query(args, store, newest_first=False):
            attempts = t.routing.attempts
            if t.status != "ok" or not t.messages or not attempts:
                continue
            first = attempts[0]
            if first.tier != cheapest or first.outcome not in (Outcome.ANSWERED,
                                                               Outcome.REJECTED):
                continue
            if not first.verdicts:
                continue  # not verified (a pinned tier or the last tier): no label
            question = next((m["content"] for m in reversed(t.messages)
                             if m.get("role") == "user"), "")
            accepted = first.outcome is Outcome.ANSWERED
            rows.append({"item": t.id, "target": cheapest, "question": question,
                         "correct": accepted, "answer": ""})
            rows.append({"item": t.id, "target": "escalated", "question": question,
                         "correct": True, "answer": ""})
    finally:
        store.close()
    path = write_outcomes(rows, [cheapest, "escalated"], "traffic", Path(args.output))
    print(f"{len(rows) // 2} labelled requests -> {path}", file=sys.stderr)
    return 0
