"""A fresh Postgres database per test, on the server named by ``RUNG_TEST_POSTGRES_URL``.

That variable is the one place the tests read the environment; ``.ci/postgres.sh`` starts
a throwaway server and sets it. Without it the Postgres tests skip, saying so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

from rung.config import Config
from rung.server.app import create_app
from rung.store.base import TraceStore
from tests.conftest import LiveServer, live, wait_ready

ENV = "RUNG_TEST_POSTGRES_URL"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def pg_admin_url() -> str:
    url = os.environ.get(ENV)
    if not url:
        pytest.skip(f"{ENV} is not set (start a throwaway server: source .ci/postgres.sh)")
    return url


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """The URL of an empty database of this test's own, dropped afterwards."""
    import psycopg

    name = f"rung_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(pg_admin_url, name)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def rung_server_on(config: Config, store: TraceStore) -> Iterator[LiveServer]:
    """rung on loopback writing its traces to ``store`` (which it closes on shutdown)."""
    with live(create_app(config, store=store)) as server:
        wait_ready(server.url)
        yield server
