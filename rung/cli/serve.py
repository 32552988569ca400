"""``rung serve``: run the OpenAI-compatible gateway."""

from __future__ import annotations

import argparse
import logging

from rung.cli.common import add_config_arg, config_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the OpenAI-compatible gateway")
    add_config_arg(p)
    p.add_argument("--minimal", action="store_true",
                   help="without --config: serve the embedded SmolLM2 alone, not the ladder")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port to bind (default 8080)")
    p.add_argument("--store", default=None, metavar="URL",
                   help="trace store (and API keys): sqlite:///PATH, or postgresql://... "
                   "for replicas sharing keys and limits (default: config store.url, "
                   "sqlite:///~/.local/share/rung/traces.db)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rung.server.app import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    config = config_from(args)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        config = config.model_copy(update={
            "server": config.server.model_copy(update=overrides)})
    if args.store is not None:
        config = config.model_copy(update={
            "store": config.store.model_copy(update={"url": args.store})})
    serve(config)
    return 0
