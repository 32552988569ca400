"""``rung chat "question"``: answer through the same core the server uses."""

from __future__ import annotations

import argparse
import asyncio
import sys

from rung.cli.common import add_config_arg, config_from


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("chat", help="answer one question on the command line")
    add_config_arg(p)
    p.add_argument("prompt", help="the user message")
    p.add_argument("--system", default=None, help="a system message")
    p.add_argument("--model", default=None, help="tier name, or the alias (default)")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=None,
                   help="default: the model's recommended sampling (rung.sampling)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--show-route", action="store_true", help="print who answered, on stderr")
    p.set_defaults(func=run)


async def _chat(args: argparse.Namespace) -> int:
    from rung.errors import RequestError
    from rung.gateway import Gateway
    from rung.types import ChatRequest, Message

    if args.max_tokens < 1:
        raise RequestError("--max-tokens must be at least 1")
    if args.temperature is not None and not 0.0 <= args.temperature <= 2.0:
        raise RequestError("--temperature must be between 0 and 2")
    config = config_from(args)
    gateway = Gateway(config)
    model = args.model or config.alias
    messages = ([Message("system", args.system)] if args.system else [])
    messages.append(Message("user", args.prompt))
    req = ChatRequest(messages=tuple(messages), max_tokens=args.max_tokens,
                      temperature=args.temperature, seed=args.seed, stream=True)
    try:
        await gateway.start()
        reply = gateway.reply(model, req)
        async for chunk in reply:
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
        sys.stdout.write("\n")
    finally:
        await gateway.aclose()
    route = reply.route
    if args.show_route:
        print(f"[tier {route.tier}: {route.header()}]", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_chat(args))
