"""``rung keys``: create, list and revoke API keys (stored hashed with the traces, in
SQLite or in the Postgres that replicas share)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from rung.cli.common import add_config_arg, config_from

if TYPE_CHECKING:
    from rung.auth.keys import ApiKey


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("keys", help="create, list and revoke API keys")
    ksub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = ksub.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true", help="may read /metrics and admin "
                        "endpoints")
    create.add_argument("--rpm", type=int, default=None, help="requests per minute")
    create.add_argument("--tpm", type=int, default=None, help="tokens per minute")
    create.add_argument("--daily-budget", type=float, default=None, help="cost per UTC day")
    create.add_argument("--monthly-budget", type=float, default=None,
                        help="cost per UTC month")
    create.add_argument("--tools-allow", type=_globs, default=None, metavar="GLOBS",
                        help="comma-separated tool names (globs) this key's requests may "
                        "offer, on top of the config's [tools] lists (default: any)")
    create.add_argument("--tools-deny", type=_globs, default=None, metavar="GLOBS",
                        help="comma-separated tool names (globs) this key's requests may "
                        "not offer (wins over --tools-allow)")
    create.set_defaults(func=_create)
    lst = ksub.add_parser("list", help="list keys (never their secrets)")
    lst.set_defaults(func=_list)
    update = ksub.add_parser("update", help="change an active key's tool lists; running "
                             "servers apply it within 1 s")
    update.add_argument("id")
    update.add_argument("--tools-allow", type=_globs_or_none, default=False, metavar="GLOBS",
                        help="comma-separated globs, or 'none' to lift the list")
    update.add_argument("--tools-deny", type=_globs_or_none, default=False, metavar="GLOBS",
                        help="comma-separated globs, or 'none' to lift the list")
    update.set_defaults(func=_update)
    revoke = ksub.add_parser("revoke", help="revoke a key by id; it gets 401 within 1 s")
    revoke.add_argument("id")
    revoke.set_defaults(func=_revoke)
    for q in (create, lst, update, revoke):
        add_config_arg(q)
        q.add_argument("--store", default=None, metavar="URL",
                       help="store holding the keys: sqlite:///PATH or "
                       "postgresql://... (default: config store.url)")


def _globs(text: str) -> tuple[str, ...]:
    from rung.auth.keys import tool_globs

    globs = tool_globs(text)
    if not globs:
        raise argparse.ArgumentTypeError("expected at least one glob, e.g. 'get_*,search'")
    return globs


def _globs_or_none(text: str) -> tuple[str, ...] | None:
    return None if text.strip().lower() == "none" else _globs(text)


def _update(args: argparse.Namespace) -> int:
    if args.tools_allow is False and args.tools_deny is False:
        from rung.errors import ConfigError

        raise ConfigError("nothing to update: give --tools-allow and/or --tools-deny")
    store = _keys(args)
    try:
        key = store.set_tools(args.id, allow=args.tools_allow, deny=args.tools_deny)
    finally:
        store.close()
    print(f"{key.id}\ttools {_tools(key)}")
    return 0


def _keys(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from rung.auth.keys import open_keys

    return open_keys(args.store or config_from(args).store.url)


def _create(args: argparse.Namespace) -> int:
    store = _keys(args)
    try:
        key, secret = store.create(args.name, admin=args.admin, rpm=args.rpm, tpm=args.tpm,
                                   daily_budget=args.daily_budget,
                                   monthly_budget=args.monthly_budget,
                                   tools_allow=args.tools_allow, tools_deny=args.tools_deny)
    finally:
        store.close()
    print(f"{key.id}\t{secret}")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _keys(args)
    try:
        print(f"{'ID':<17} {'NAME':<16} {'CREATED':<17} {'STATE':<8} {'ADMIN':<6} "
              f"{'RPM':>6} {'TPM':>8} {'DAY':>8} {'MONTH':>8}  TOOLS")
        for k in store.list():
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created))
            state = "revoked" if k.revoked else "active"
            print(f"{k.id:<17} {k.name[:16]:<16} {created:<17} {state:<8} "
                  f"{'yes' if k.admin else 'no':<6} {k.rpm or '-':>6} {k.tpm or '-':>8} "
                  f"{k.daily_budget or '-':>8} {k.monthly_budget or '-':>8}  {_tools(k)}")
    finally:
        store.close()
    return 0


def _tools(key: ApiKey) -> str:
    """``allow=get_*,search deny=delete_*``; ``-`` for a key that narrows no tool."""
    parts = [f"{what}={','.join(globs)}" for what, globs in
             (("allow", key.tools_allow), ("deny", key.tools_deny)) if globs is not None]
    return " ".join(parts) or "-"


def _revoke(args: argparse.Namespace) -> int:
    store = _keys(args)
    try:
        store.revoke(args.id)
    finally:
        store.close()
    print(f"revoked {args.id}")
    return 0
