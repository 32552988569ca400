"""``rung config``: check a config file, or print the generated reference."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("config", help="validate a config file or print the key reference")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = csub.add_parser("check", help="validate FILE and print it resolved")
    check.add_argument("file")
    check.set_defaults(func=_check)
    docs = csub.add_parser("docs", help="print the config reference (Markdown)")
    docs.add_argument("--update", metavar="FILE", default=None,
                      help="replace the reference between its markers in FILE instead")
    docs.add_argument("--cli", action="store_true",
                      help="the command reference instead of the config keys")
    docs.set_defaults(func=_docs)


def _check(args: argparse.Namespace) -> int:
    from rung.config import load_config

    cfg = load_config(args.file)
    print(cfg.model_dump_json(indent=2, exclude={"tiers": {"__all__": {"backend": {"api_key"}}}}))
    return 0


def _docs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rung.errors import ConfigError

    if args.cli:
        from rung.cli_docs import BEGIN, END, render
    else:
        from rung.config_docs import BEGIN, END, render

    if args.update is None:
        print(render())
        return 0
    path = Path(args.update)
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ConfigError(f"{path} has no {BEGIN} ... {END} markers")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + render() + text[end:])
    return 0
