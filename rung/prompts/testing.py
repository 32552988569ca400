"""``rung prompts test``: placeholder while it is written."""

from __future__ import annotations

import argparse


def register(psub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pass
