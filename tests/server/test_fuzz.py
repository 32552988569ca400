"""Fuzz: schemathesis generates requests from rung's own OpenAPI document (valid and
invalid ones); rung must never answer 5xx for them, and every 4xx must carry a
well-formed OpenAI-style error body. Bounded: a fixed number of examples per operation,
against an instant upstream tier on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from rung.server.openapi import openapi
from tests.conftest import LiveServer, config_of, rung_server, upstream_server, upstream_tier

schema = schemathesis.openapi.from_dict(openapi())


@pytest.fixture(scope="module")
def target() -> Iterator[LiveServer]:
    # The upstream's model name is the tier name, so generated requests can reach it.
    with upstream_server() as up, rung_server(config_of(
            alias="rung", tiers=[upstream_tier("up", up.url)])) as server:
        yield server


@schema.parametrize()
@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_clean_4xx(case: schemathesis.Case, target: LiveServer) -> None:
    response = case.call(base_url=target.url, timeout=30)
    assert response.status_code < 500, response.text[:300]
    if 400 <= response.status_code < 500:
        err = response.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert isinstance(err["message"], str) and err["message"]
        assert isinstance(err["type"], str)
