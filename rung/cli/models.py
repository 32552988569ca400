"""``rung models``: the model catalogue and where each file is."""

from __future__ import annotations

import argparse

from rung.cli.common import add_config_arg, config_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("models", help="list the model catalogue")
    add_config_arg(p)
    p.set_defaults(func=run)


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
