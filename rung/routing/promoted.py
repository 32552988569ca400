"""The promoted router of a ``rung learn`` folder, reloaded without a restart.

``rung learn --out DIR`` keeps each router it learns under ``DIR/versions/<version>/`` and
names the promoted one in ``DIR/promoted.json``: ``{"version", "path"}`` (the path relative
to DIR) and ``history``, the versions promoted before it, newest first. A learned scorer
whose ``path`` is such a folder serves the promoted version and looks at promoted.json at
most once every ``CHECK_S`` seconds, from the scoring thread: a new promotion (or a
rollback) is picked up then. Until the folder has a promotion, the heuristic scorer
stands in (so a gateway can start learning on day one). A promoted.json that cannot be read keeps the router in
service and is logged. ``rollback`` promotes the previous version again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from rung.errors import ConfigError
from rung.routing.heads import HeadsRouter, load_router
from rung.routing.learned import RouterModel

Router = RouterModel | HeadsRouter

log = logging.getLogger("rung.routing.promoted")

PROMOTED = "promoted.json"
CHECK_S = 1.0


def read(folder: Path) -> dict[str, Any]:
    try:
        info = json.loads((folder / PROMOTED).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"no promoted router in {folder} (run `rung learn --out {folder}` "
                          "until one is promoted)") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder / PROMOTED} cannot be read: {exc}") from exc
    if not isinstance(info, dict) or not {"version", "path"} <= info.keys():
        raise ConfigError(f"{folder / PROMOTED} names no version and path")
    return info


def promote(folder: Path, version: str, path: str) -> None:
    """Make ``version`` (its router at ``path``, relative to ``folder``) the promoted one,
    keeping the one it replaces first in the history."""
    history: list[dict[str, str]] = []
    if (folder / PROMOTED).exists():
        old = read(folder)
        history = [{"version": old["version"], "path": old["path"]}, *old.get("history", [])]
    _write(folder, {"version": version, "path": path, "history": history})


def rollback(folder: Path) -> dict[str, Any]:
    """Promote the version promoted before the current one again; returns the new state."""
    info = read(folder)
    history = list(info.get("history") or [])
    if not history:
        raise ConfigError(f"no earlier promoted version in {folder / PROMOTED} to roll back to")
    back = history.pop(0)
    state = {"version": back["version"], "path": back["path"], "history": history}
    _write(folder, state)
    return state


def _write(folder: Path, state: dict[str, Any]) -> None:
    tmp = folder / (PROMOTED + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(folder / PROMOTED)  # atomic: a reader sees the old file or the new one


class PromotedRouter:
    """The model promoted in ``folder``, swapped for a newer promotion when one appears."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self.model: Router | None = None
        self.version = "heuristic (nothing promoted yet)"
        self._stamp = 0
        if (folder / PROMOTED).exists():
            self._stamp, self.model, self.version = self._load()

    def _load(self) -> tuple[int, Router, str]:
        stamp = (self.folder / PROMOTED).stat().st_mtime_ns if \
            (self.folder / PROMOTED).exists() else 0
        info = read(self.folder)
        path = self.folder / str(info["path"])
        try:
            model = load_router(path)
        except FileNotFoundError as exc:
            raise ConfigError(f"promoted router file not found: {path}") from exc
        return stamp, model, str(info["version"])

    def current(self) -> Router | None:
        """The model to score with (None: nothing promoted yet), after a reload if
        promoted.json changed."""
        now = time.monotonic()
        if now - self._checked >= CHECK_S:
            with self._lock:
                if now - self._checked >= CHECK_S:
                    self._checked = now
                    self._reload_if_changed()
        return self.model

    def _reload_if_changed(self) -> None:
        try:
            stamp = (self.folder / PROMOTED).stat().st_mtime_ns
        except OSError:  # nothing promoted (yet)
            return
        if stamp == self._stamp:
            return
        try:
            self._stamp, model, version = self._load()
        except (ConfigError, OSError, ValueError) as exc:
            log.warning("keeping router %s: the new promotion cannot be loaded: %s",
                        self.version, exc)
            self._stamp = stamp
            return
        self.model, self.version = model, version
        log.info("router %s promoted in %s is now in use", version, self.folder)
