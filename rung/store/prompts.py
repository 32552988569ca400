"""The prompt registry's storage: immutable versions and movable labels, in the trace
store's database (SQLite, or Postgres where replicas share them; migration 8).

A version is written once and never changed; its number is one more than the prompt's
last (tables: migration 8 of both stores). A label names a version, or splits traffic between versions by weight
(:class:`~rung.prompts.model.Target`); every move of a label is kept in
``prompt_label_moves``, so that a rollback can put it back where it was. ``latest`` is
not stored: it is always the highest version.

One set of SQL over either database (written with ``?``; :class:`PostgresPromptStore`
swaps in ``%s``), as :mod:`rung.auth.keys` does.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from rung.errors import ConfigError, NotFound
from rung.prompts.model import LATEST, PromptVersion, Target, check_label

_VCOLS = "name, version, messages, variables, config, message, author, created"


def _version(r: tuple[Any, ...]) -> PromptVersion:
    return PromptVersion(name=str(r[0]), version=int(r[1]),
                         messages=tuple(json.loads(r[2])), variables=json.loads(r[3]),
                         config=json.loads(r[4]), message=str(r[5]), author=r[6],
                         created=float(r[7]))


class PromptStore:
    """Push versions and move labels in the store's SQLite file. Every method is one
    short transaction; a server reads through :class:`rung.prompts.cache.PromptCache`."""

    _mark = "?"

    def __init__(self, path: Path) -> None:
        from rung.store.sqlite import connect

        self._conn: Any = connect(path)

    def _execute(self, sql: str, args: tuple[object, ...] = ()) -> Any:
        return self._conn.execute(sql.replace("?", self._mark), args)

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self._conn.execute("COMMIT")

    def _rollback(self) -> None:
        self._conn.execute("ROLLBACK")

    # -- versions ---------------------------------------------------------------------

    def push(self, v: PromptVersion, *, label: str | None = None) -> PromptVersion:
        """Store ``v`` as the prompt's next version (its ``version`` is ignored), and
        point ``label`` at it when given; returns the stored version."""
        if label is not None:
            check_label(label)
        self._begin()
        try:
            row = self._execute("SELECT MAX(version) FROM prompt_versions WHERE name = ?",
                                (v.name,)).fetchone()
            n = int(row[0] or 0) + 1
            stored = PromptVersion(name=v.name, version=n, messages=v.messages,
                                   variables=v.variables, config=v.config, message=v.message,
                                   author=v.author, created=time.time())
            self._execute(f"INSERT INTO prompt_versions ({_VCOLS}) VALUES "
                          "(?, ?, ?, ?, ?, ?, ?, ?)",
                          (v.name, n, json.dumps(list(v.messages)), json.dumps(v.variables),
                           json.dumps(v.config), v.message, v.author, stored.created))
            if label is not None:
                self._move(v.name, label, Target.single(n), author=v.author)
            self._commit()
        except BaseException:
            self._rollback()
            raise
        return stored

    def version(self, name: str, version: int) -> PromptVersion:
        r = self._execute(f"SELECT {_VCOLS} FROM prompt_versions WHERE name = ? AND "
                          "version = ?", (name, version)).fetchone()
        if r is None:
            raise NotFound(f"Prompt '{name}' has no version {version}.", param="rung.prompt",
                           code="prompt_not_found")
        return _version(r)

    def versions(self, name: str) -> list[PromptVersion]:
        return [_version(r) for r in self._execute(
            f"SELECT {_VCOLS} FROM prompt_versions WHERE name = ? ORDER BY version",
            (name,)).fetchall()]

    def latest(self, name: str) -> int:
        r = self._execute("SELECT MAX(version) FROM prompt_versions WHERE name = ?",
                          (name,)).fetchone()
        if r is None or r[0] is None:
            raise NotFound(f"Prompt '{name}' does not exist.", param="rung.prompt",
                           code="prompt_not_found")
        return int(r[0])

    # -- labels -----------------------------------------------------------------------

    def target(self, name: str, label: str) -> Target:
        """Where ``label`` points now (``latest``: the highest version)."""
        if label == LATEST:
            return Target.single(self.latest(name))
        r = self._execute("SELECT target FROM prompt_labels WHERE name = ? AND label = ?",
                          (name, label)).fetchone()
        if r is None:
            self.latest(name)  # an unknown prompt says so, rather than "no such label"
            raise NotFound(f"Prompt '{name}' has no label '{label}'.", param="rung.prompt",
                           code="prompt_label_not_found")
        return Target.from_json(r[0])

    def labels(self, name: str) -> dict[str, Target]:
        """Every stored label of the prompt (not ``latest``)."""
        return {str(r[0]): Target.from_json(r[1]) for r in self._execute(
            "SELECT label, target FROM prompt_labels WHERE name = ? ORDER BY label",
            (name,)).fetchall()}

    def set_label(self, name: str, label: str, target: Target, *,
                  author: str | None = None) -> Target:
        """Point ``label`` at ``target`` (every version in it must exist)."""
        check_label(label)
        self._begin()
        try:
            for v in target.versions:
                if self._execute("SELECT 1 FROM prompt_versions WHERE name = ? AND "
                                 "version = ?", (name, v)).fetchone() is None:
                    raise NotFound(f"Prompt '{name}' has no version {v}.",
                                   code="prompt_not_found")
            self._move(name, label, target, author=author)
            self._commit()
        except BaseException:
            self._rollback()
            raise
        return target

    def rollback(self, name: str, label: str, *, author: str | None = None) -> Target:
        """Put ``label`` back where it pointed before its last move (the move is
        forgotten, so a second rollback goes one further back)."""
        check_label(label)
        self._begin()
        try:
            moves = self._execute("SELECT n, target FROM prompt_label_moves WHERE name = ? "
                                  "AND label = ? ORDER BY n DESC LIMIT 2",
                                  (name, label)).fetchall()
            if len(moves) < 2:
                raise ConfigError(f"label '{label}' of prompt '{name}' has no earlier "
                                  "version to go back to")
            self._execute("DELETE FROM prompt_label_moves WHERE name = ? AND label = ? AND "
                          "n = ?", (name, label, moves[0][0]))
            self._execute("UPDATE prompt_labels SET target = ?, updated = ? WHERE name = ? "
                          "AND label = ?", (moves[1][1], time.time(), name, label))
            self._commit()
        except BaseException:
            self._rollback()
            raise
        return Target.from_json(moves[1][1])

    def history(self, name: str, label: str) -> list[tuple[float, Target, str | None]]:
        """The label's moves still in force, oldest first: (time, target, author)."""
        return [(float(r[0]), Target.from_json(r[1]), r[2]) for r in self._execute(
            "SELECT time, target, author FROM prompt_label_moves WHERE name = ? AND "
            "label = ? ORDER BY n", (name, label)).fetchall()]

    def _move(self, name: str, label: str, target: Target, *, author: str | None) -> None:
        now = time.time()
        text = target.to_json()
        r = self._execute("SELECT MAX(n) FROM prompt_label_moves WHERE name = ? AND "
                          "label = ?", (name, label)).fetchone()
        self._execute("INSERT INTO prompt_label_moves (name, label, n, target, time, author)"
                      " VALUES (?, ?, ?, ?, ?, ?)",
                      (name, label, int(r[0] or 0) + 1, text, now, author))
        if self._execute("UPDATE prompt_labels SET target = ?, updated = ? WHERE name = ? "
                         "AND label = ?", (text, now, name, label)).rowcount == 0:
            self._execute("INSERT INTO prompt_labels (name, label, target, updated) VALUES "
                          "(?, ?, ?, ?)", (name, label, text, now))

    # -- listing ----------------------------------------------------------------------

    def names(self) -> list[tuple[str, int, float]]:
        """Every prompt: (name, latest version, when it was pushed), by name."""
        return [(str(r[0]), int(r[1]), float(r[2])) for r in self._execute(
            "SELECT name, MAX(version), MAX(created) FROM prompt_versions GROUP BY name "
            "ORDER BY name").fetchall()]

    def close(self) -> None:
        self._conn.close()


class PostgresPromptStore(PromptStore):
    """The same registry in Postgres (schema migrated as the trace store's)."""

    _mark = "%s"

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        from rung.store import postgres

        self._conn = postgres.connect(url)
        if migrate:
            postgres.migrate(self._conn)

    def _begin(self) -> None:
        self._conn.execute("BEGIN")
        # One writer per prompt at a time, so that version and move numbers do not race.
        self._conn.execute("LOCK TABLE prompt_label_moves IN SHARE ROW EXCLUSIVE MODE")


def open_prompts(url: str) -> PromptStore:
    """The registry at a store URL: ``sqlite:///PATH`` or ``postgresql://...``."""
    from rung.store.base import is_postgres, require_psycopg, sqlite_path

    if is_postgres(url):
        require_psycopg()
        return PostgresPromptStore(url)
    if url.startswith("sqlite:///"):
        try:
            return PromptStore(sqlite_path(url))
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the store at {sqlite_path(url)}: {exc}") from exc
    raise ConfigError(f"unknown store URL {url!r}: expected sqlite:///PATH or postgresql://...")
