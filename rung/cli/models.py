"""``rung models``: the model catalogue; ``rung models install``: fetch a larger tier;
``rung models quantize``: make smaller files of one (:mod:`rung.quantize`)."""

from __future__ import annotations

import argparse

from rung.cli.common import add_config_arg, config_from

LADDER = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("models", help="list the model catalogue, or install a model")
    add_config_arg(p)
    p.set_defaults(func=run)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    inst = msub.add_parser("install", help="download, join and verify a catalogue model")
    add_config_arg(inst)
    inst.add_argument("names", nargs="*", help="catalogue names")
    inst.add_argument("--ladder", action="store_true",
                      help=f"the local tier ladder: {', '.join(LADDER)}")
    inst.set_defaults(func=install)
    q = msub.add_parser("quantize", help="quantize a GGUF with llama.cpp's own quantizer")
    add_config_arg(q)
    q.add_argument("src", help="a catalogue name, .gguf path or hf: reference (ideally "
                   "F16/BF16)")
    q.add_argument("--type", required=True, metavar="T[,T...]",
                   help="Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q3_K_M, Q2_K, ...")
    q.add_argument("--out", required=True, metavar="DIR",
                   help="writes DIR/<name>-<T>.gguf and, beside it, a .json record "
                   "(source sha256 and type)")
    q.add_argument("--allow-requantize", action="store_true",
                   help="quantize an already-quantized file (reports label the result)")
    q.add_argument("--threads", type=int, default=None)
    q.set_defaults(func=quantize)


def run(args: argparse.Namespace) -> int:
    from rung.catalog import BUILTIN, resolve
    from rung.errors import ModelSourceError

    config = config_from(args)
    print(f"{'NAME':<22} {'STATUS':<10} {'LICENSE':<11} DESCRIPTION")
    for entry in BUILTIN.values():
        try:
            where = str(resolve(entry.name, catalog=config.catalog))
            status = "installed"
        except ModelSourceError as exc:
            where, status = exc.message, "missing"
        print(f"{entry.name:<22} {status:<10} {entry.license:<11} {entry.description}")
        print(f"{'':<22} {where}")
    print("\nTiers in this config:")
    for tier in config.tiers:
        b = tier.backend
        target = b.model if b.type == "llama" else f"{b.base_url} ({b.model})"
        print(f"  {tier.name:<20} {b.type:<7} {target}")
    return 0


def install(args: argparse.Namespace) -> int:
    from rung.catalog import install_parts
    from rung.errors import ModelSourceError

    names = list(args.names) + (list(LADDER) if args.ladder else [])
    if not names:
        raise ModelSourceError("name a model to install, or pass --ladder")
    config = config_from(args)
    for name in names:
        print(f"{name}: downloading, joining and verifying ...", flush=True)
        path = install_parts(name, catalog=config.catalog)
        print(f"{name}: {path}")
    return 0


def quantize(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rung.catalog import resolve
    from rung.quantize import parse_types, quantize

    types = parse_types(args.type)
    config = config_from(args)
    src = resolve(args.src, catalog=config.catalog)
    for t in types:
        print(f"{src.name} -> {t} ...", flush=True)
        rec = quantize(src, t, Path(args.out), allow_requantize=args.allow_requantize,
                       threads=args.threads)
        note = f" (requantized from {rec.source_type})" if rec.requantized else ""
        print(f"{rec.path}: {rec.size / 1e6:.1f} MB, {rec.seconds:.1f} s{note}")
    return 0
