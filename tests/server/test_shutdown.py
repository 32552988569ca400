"""A real `rung serve` process: SIGTERM lets an in-flight request finish and keeps its
trace; the process exits by itself."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from rung.devtools.upstream import UpstreamBehaviour
from rung.store.sqlite import SqliteStore
from tests.conftest import ServeProcess, http, upstream_server


def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with upstream_server(UpstreamBehaviour(delay_s=1.0)) as up:
        server = ServeProcess(tmp_path, up.url, db).start()
        assert server.proc is not None
        try:
            statuses: list[int] = []
            t = threading.Thread(target=lambda: statuses.append(http(
                "POST", f"{server.url}/v1/chat/completions",
                {"model": "up", "messages": [{"role": "user", "content": "x"}]}).status))
            t.start()
            time.sleep(0.3)  # the request is now waiting on the slow upstream
            server.proc.send_signal(signal.SIGTERM)
            t.join(timeout=20)
            assert server.proc.wait(timeout=20) == 0
        finally:
            server.stop()
    assert statuses == [200]
    store = SqliteStore(db)
    assert [tr.status for tr in store.query()] == ["ok"]
    store.close()
