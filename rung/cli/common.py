"""Options several subcommands share."""

from __future__ import annotations

import argparse

from rung.config import Config, load_config


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", default=None,
                   help="TOML config file (default: the embedded SmolLM2 model only)")


def config_from(args: argparse.Namespace) -> Config:
    return load_config(args.config)
