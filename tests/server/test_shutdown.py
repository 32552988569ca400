"""A real `rung serve` process: SIGTERM lets an in-flight request finish and keeps its
trace; the process exits by itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from rung.devtools.upstream import UpstreamBehaviour
from rung.store.sqlite import SqliteStore
from tests.conftest import REPO, http, upstream_server


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    with upstream_server(UpstreamBehaviour(delay_s=1.0)) as up:
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[[tiers]]\nname = "up"\nbackend = {{ type = "openai", base_url = '
                       f'"{up.url}/v1", model = "m" }}\n')
        port, db = _port(), tmp_path / "t.db"
        proc = subprocess.Popen(
            [sys.executable, "-m", "rung.cli.main", "serve", "--config", str(cfg), "--port",
             str(port), "--store", f"sqlite:///{db}"], cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if http("GET", f"{url}/readyz", timeout=1).status == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            statuses: list[int] = []
            t = threading.Thread(target=lambda: statuses.append(http(
                "POST", f"{url}/v1/chat/completions",
                {"model": "up", "messages": [{"role": "user", "content": "x"}]}).status))
            t.start()
            time.sleep(0.3)  # the request is now waiting on the slow upstream
            proc.send_signal(signal.SIGTERM)
            t.join(timeout=20)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert statuses == [200]
    store = SqliteStore(db)
    assert [tr.status for tr in store.query()] == ["ok"]
    store.close()
