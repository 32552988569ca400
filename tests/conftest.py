"""Shared fixtures: real servers on loopback, each in its own thread and event loop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from rung.config import Config, parse_config
from rung.devtools.upstream import BEHAVIOUR, UpstreamBehaviour, create_upstream_app
from rung.server.app import create_app

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


class LiveServer:
    def __init__(self, app: web.Application, port: int = 0) -> None:
        self.app = app
        self.port = port
        self.url = ""
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        fut.result(timeout=30)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def call(self, coro: object, timeout: float = 30) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self._runner is not None:
            self.call(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


@contextmanager
def live(app: web.Application, port: int = 0) -> Iterator[LiveServer]:
    server = LiveServer(app, port).start()
    try:
        yield server
    finally:
        server.stop()


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | dict[str, Any] | None = None,
         headers: dict[str, str] | None = None, timeout: float = 60) -> Reply:
    """A plain HTTP call with the standard library (no client library between us)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                         resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = http("GET", f"{url}/readyz")
        if r.status == 200:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready: {r.body!r}")


@contextmanager
def rung_server(config: Config, store: Path | None = None) -> Iterator[LiveServer]:
    """rung on loopback; its traces go to ``store`` (a fresh temporary file by default)."""
    from rung.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(config, store=SqliteStore(store or Path(tmp) / "traces.db"))
        with live(app) as server:
            wait_ready(server.url)
            yield server


@pytest.fixture(scope="session")
def smol() -> Iterator[LiveServer]:
    """rung on the embedded model, default config, shared by the whole session."""
    with rung_server(Config()) as server:
        yield server


@contextmanager
def upstream_server(behaviour: UpstreamBehaviour | None = None,
                    port: int = 0) -> Iterator[LiveServer]:
    with live(create_upstream_app(behaviour), port) as server:
        yield server


@pytest.fixture
def upstream() -> Iterator[LiveServer]:
    with upstream_server() as server:
        yield server


def behaviour(server: LiveServer) -> UpstreamBehaviour:
    return server.app[BEHAVIOUR]


def upstream_tier(name: str, url: str, **backend: object) -> dict[str, object]:
    return {"name": name, "backend": {"type": "openai", "base_url": f"{url}/v1",
                                      "model": "up", **backend}}


def config_of(**data: object) -> Config:
    return parse_config(dict(data))


class ServeProcess:
    """`rung serve` as a real process over one upstream tier, on a free port."""

    def __init__(self, tmp: Path, upstream_url: str, db: Path) -> None:
        import socket

        cfg = tmp / "serve.toml"
        cfg.write_text(f'[[tiers]]\nname = "up"\nbackend = {{ type = "openai", base_url = '
                       f'"{upstream_url}/v1", model = "m" }}\n')
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.cmd = [sys.executable, "-m", "rung.cli.main", "serve", "--config", str(cfg),
                    "--port", str(port), "--store", f"sqlite:///{db}"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServeProcess:
        self.proc = subprocess.Popen(self.cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=dict(os.environ))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if http("GET", f"{self.url}/readyz", timeout=1).status == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise TimeoutError("rung serve did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def body_with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with fields set, or removed where the value is None."""
    body = dict(base)
    for k, v in changes.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    return body
