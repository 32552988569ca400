"""The README's command reference, generated from the argument parsers (`rung config docs
--cli`), so it cannot drift from the code."""

from __future__ import annotations

import argparse

BEGIN = "<!-- cli-reference:begin -->"
END = "<!-- cli-reference:end -->"


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(p: argparse.ArgumentParser) -> dict[str, str]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def _walk(p: argparse.ArgumentParser, path: str, help_: str, out: list[str]) -> None:
    """A row for every command that runs something (a leaf, or one like `rung models`
    that runs without its optional action)."""
    subs = _subparsers(p)
    if p.get_default("func") is not None:
        usage = " ".join(p.format_usage().split()).removeprefix("usage: ")
        usage = usage.replace("|", "\\|")
        out.append(f"| `{path}` | {help_.replace('%%', '%')} | `{usage}` |")
    helps = _helps(p)
    for name, sub in subs.items():
        _walk(sub, f"{path} {name}", helps.get(name, ""), out)


def render() -> str:
    from rung.cli.main import build_parser

    lines = [BEGIN, "| command | what it does | usage |", "|---|---|---|"]
    _walk(build_parser(), "rung", "", lines)
    lines.append(END)
    return "\n".join(lines)
