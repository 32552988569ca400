"""Entry point of the ``rung`` command: parse, dispatch, and turn errors into one line."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rung import __version__
from rung.errors import RungError

# Subcommand modules under rung.cli; each defines register(subparsers).
SUBCOMMANDS = ("serve", "chat", "models", "traces", "keys", "config_cmd", "router", "verify", "eval_cmd",
               "drift", "learn", "bench_cmd", "select_cmd", "prompts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rung",
        description="A small-model-first, OpenAI-compatible LLM gateway.",
    )
    parser.add_argument("--version", action="version", version=f"rung {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"rung.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed, for manifests
    try:
        return int(args.func(args) or 0)
    except RungError as exc:
        print(f"rung: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
