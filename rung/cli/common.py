"""Options several subcommands share."""

from __future__ import annotations

import argparse
import sys

from rung.config import Config, load_config


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", default=None,
                   help="TOML config file (default: the built-in ladder, SmolLM2-135M then "
                   "Qwen2.5-Coder-0.5B when it is installed, else SmolLM2 alone)")


def config_from(args: argparse.Namespace) -> Config:
    """The ``--config`` file's config, else the built-in one (:mod:`rung.defaults`; with
    ``--minimal``, the embedded model alone), saying in one line on stderr when the
    built-in ladder cannot be served."""
    if args.config is not None:
        return load_config(args.config)
    from rung.defaults import builtin

    config, notice = builtin(minimal=bool(getattr(args, "minimal", False)))
    if notice:
        print(notice, file=sys.stderr)
    return config
