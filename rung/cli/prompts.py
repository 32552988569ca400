"""``rung prompts``: push versions, move and roll back labels, list, show and diff
registered prompts, and test one version against another (``rung prompts test``)."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import TYPE_CHECKING, Any

from rung.cli.common import add_config_arg, config_from
from rung.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from rung.prompts.model import PromptVersion, Target
    from rung.store.prompts import PromptStore


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("prompts", help="versioned prompts: push, label, roll back, diff, "
                       "test")
    psub = p.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    push = psub.add_parser("push", help="store FILE as the prompt's next version and print "
                           '{"name": ..., "version": N}')
    push.add_argument("name")
    push.add_argument("--file", required=True, metavar="FILE",
                      help="TOML: messages = [{role, content}, ...], optional [variables] "
                      "(defaults) and [config] (temperature, top_p, max_tokens, "
                      "response_format, tools, tier, thresholds)")
    push.add_argument("--label", default=None, help="point this label at the new version "
                      "(e.g. production)")
    push.add_argument("--message", "-m", default="", help="what changed (the commit message)")
    push.set_defaults(func=_push)
    label = psub.add_parser("label", help="point LABEL at VERSION (or split it: 3=0.9,4=0.1)")
    label.add_argument("name")
    label.add_argument("version", metavar="VERSION",
                       help="a version, or a weighted split for an A/B test: 3=0.9,4=0.1")
    label.add_argument("label")
    label.set_defaults(func=_label)
    rollback = psub.add_parser("rollback", help="put LABEL back on the version it pointed "
                               "at before its last move")
    rollback.add_argument("name")
    rollback.add_argument("label")
    rollback.set_defaults(func=_rollback)
    lst = psub.add_parser("list", help="every prompt, its latest version and its labels")
    lst.set_defaults(func=_list)
    show = psub.add_parser("show", help="one version, as TOML: NAME (production), "
                           "NAME@LABEL or NAME@VERSION")
    show.add_argument("ref", metavar="NAME[@LABEL|@VERSION]")
    show.set_defaults(func=_show)
    diff = psub.add_parser("diff", help="a unified diff of two versions (numbers or labels)")
    diff.add_argument("name")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.set_defaults(func=_diff)
    for q in (push, label, rollback, lst, show, diff):
        add_config_arg(q)
        q.add_argument("--store", default=None, metavar="URL",
                       help="store holding the prompts: sqlite:///PATH or postgresql://... "
                       "(default: config store.url)")
    from rung.prompts.testing import register as register_test

    register_test(psub)


def _open(args: argparse.Namespace) -> PromptStore:
    from rung.store.prompts import open_prompts

    return open_prompts(args.store or config_from(args).store.url)


def _author() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is not an error
        return None


def load_file(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _push(args: argparse.Namespace) -> int:
    from rung.prompts.apply import defaults_of
    from rung.prompts.model import new_version

    v = new_version(args.name, load_file(args.file), message=args.message, author=_author())
    defaults_of(v.config)
    store = _open(args)
    try:
        stored = store.push(v, label=args.label)
    finally:
        store.close()
    print(json.dumps({"name": stored.name, "version": stored.version}))
    return 0


def _label(args: argparse.Namespace) -> int:
    from rung.prompts.model import Target

    target = Target.parse(args.version)
    return _move(args, lambda s: s.set_label(args.name, args.label, target, author=_author()))


def _rollback(args: argparse.Namespace) -> int:
    return _move(args, lambda s: s.rollback(args.name, args.label, author=_author()))


def _move(args: argparse.Namespace, fn: Callable[[PromptStore], Target]) -> int:
    """Move a label and print where it points now."""
    store = _open(args)
    try:
        target = fn(store)
    finally:
        store.close()
    print(json.dumps({"name": args.name, "label": args.label, "target": target.as_dict()}))
    return 0


def _list(args: argparse.Namespace) -> int:
    from datetime import datetime

    store = _open(args)
    try:
        print(f"{'NAME':<28} {'LATEST':>6} {'PUSHED':<19} LABELS")
        for name, latest, when in store.names():
            labels = ", ".join(f"{k}={t}" for k, t in store.labels(name).items())
            pushed = datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{name:<28} {latest:>6} {pushed:<19} {labels or '-'}")
    finally:
        store.close()
    return 0


def resolve(store: PromptStore, name: str, ref: str) -> tuple[PromptVersion, str]:
    """A version by number or label (a split label: its first version), and how it was
    found, for headers."""
    if ref.isdigit():
        return store.version(name, int(ref)), f"{name}@{ref}"
    target = store.target(name, ref)
    v = store.version(name, target.versions[0])
    return v, f"{name}@{ref} (version {v.version}" + (
        f"; split {target}" if len(target.split) > 1 else "") + ")"


def to_toml(v: PromptVersion) -> str:
    """The version as a file ``rung prompts push`` reads back (JSON strings are valid
    TOML basic strings)."""
    lines = [f"# {v.name} version {v.version}" + (f": {v.message}" if v.message else ""),
             ""]
    lines += [f"[[messages]]\nrole = {json.dumps(m['role'])}\ncontent = "
              f"{json.dumps(m['content'], ensure_ascii=False)}\n" for m in v.messages]
    if v.variables:
        lines.append("[variables]")
        lines += [f"{k} = {json.dumps(x, ensure_ascii=False)}" for k, x in v.variables.items()]
        lines.append("")
    if v.config:
        lines.append("[config]")
        lines += [f"{k} = {_toml_value(x)}" for k, x in v.config.items()]
        lines.append("")
    return "\n".join(lines)


def _toml_value(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(y)}"
                                for k, y in x.items()) + " }"
    if isinstance(x, list):
        return "[" + ", ".join(_toml_value(y) for y in x) + "]"
    return json.dumps(x, ensure_ascii=False)


def _show(args: argparse.Namespace) -> int:
    from rung.prompts.model import PromptRef

    ref = PromptRef.parse(args.ref)
    store = _open(args)
    try:
        v, how = resolve(store, ref.name, str(ref.version) if ref.version is not None
                         else ref.label or "production")
    finally:
        store.close()
    print(f"# {how}, pushed by {v.author or '?'}")
    sys.stdout.write(to_toml(v))
    return 0


def _diff(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        a, how_a = resolve(store, args.name, args.a)
        b, how_b = resolve(store, args.name, args.b)
    finally:
        store.close()
    sys.stdout.writelines(difflib.unified_diff(
        to_toml(a).splitlines(keepends=True), to_toml(b).splitlines(keepends=True),
        fromfile=how_a, tofile=how_b))
    return 0
