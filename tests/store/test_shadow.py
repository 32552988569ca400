"""Shadow comparisons through a real server: a share of the answers below the top tier is
answered again by the top tier in the background; agreement on the letter chosen or the
final number is stored
as a label (feedback with source "shadow"); bounded, and never in the client's way.
Downward (``down``): answers of a tier above the first, answered again by the first tier
(source "shadow_first")."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rung.config import Config
from rung.devtools.upstream import UpstreamBehaviour
from rung.errors import ConfigError
from rung.learning import labels
from rung.store.sqlite import SqliteStore
from tests.conftest import config_of, http, upstream_server, upstream_tier
from tests.store.conftest import rung_server_on


def small_says(message: str) -> str:
    if "letter" in message:
        return "B. the electric field"
    if "sum" in message:
        return "Adding them up, the answer is 41."
    return "The answer is 7." if "seven" in message else "Hi there!"


def big_says(message: str) -> str:
    if "letter" in message:  # it chose another letter; "42" in it is no number to compare
        return "Of the 42 options, the answer is (C)."
    if "sum" in message:
        return "The answer is 42."
    return "Seven: the answer is 7." if "seven" in message else "Hello."


def _config(small: str, big: str, routing: dict[str, object] | None = None,
            small_cost: float = 0.0, **shadow: object) -> Config:
    return config_of(routing={"shadow": {"share": 1.0, **shadow}, **(routing or {})},
                     tiers=[upstream_tier("small", small)
                            | {"cost": {"per_second": small_cost}},
                            upstream_tier("big", big) | {"cost": {"per_second": 1.0}}])


def _ask(url: str, text: str, tier: str = "small") -> str:
    r = http("POST", f"{url}/v1/chat/completions", {
        "model": "rung", "messages": [{"role": "user", "content": text}]})
    assert r.status == 200 and r.headers["x-rung-tier"] == tier
    return str(r.json()["id"])


def _metric(url: str, line: str) -> float:
    for row in http("GET", f"{url}/metrics").body.decode().splitlines():
        if row.startswith(line + " "):
            return float(row.split()[-1])
    return 0.0


def _eventually(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("not reached in time")


def test_shadow_answers_become_labels(tmp_path: Path) -> None:
    small_up = UpstreamBehaviour(reply=None, reply_fn=small_says)
    big_up = UpstreamBehaviour(reply=None, reply_fn=big_says)
    store = SqliteStore(tmp_path / "t.db")
    with upstream_server(small_up) as small, upstream_server(big_up) as big, \
            rung_server_on(_config(small.url, big.url, max_in_flight=8), store) as server:
        ids = {text: _ask(server.url, text) for text in
               ("the sum of 20 and 22", "seven please", "hello", "a letter, A to D")}
        _eventually(lambda: _metric(server.url, 'rung_shadows_total{outcome="not_comparable"}')
                    == 1 and len(store.feedback()) == 3)
        assert _metric(server.url, 'rung_shadows_total{outcome="agree"}') == 1
        assert _metric(server.url, 'rung_shadows_total{outcome="disagree"}') == 2
        assert _metric(server.url, "rung_shadow_cost_total") > 0
        by_id = {f.trace_id: f for f in store.feedback()}
        summed = by_id[ids["the sum of 20 and 22"]]
        assert (summed.score, summed.source) == (0.0, "shadow")
        assert summed.comment == "big ended on 42, the answer on 41"
        assert by_id[ids["seven please"]].score == 1.0
        assert by_id[ids["a letter, A to D"]].comment == "big ended on C, the answer on B"
        assert ids["hello"] not in by_id
        assert big_up.calls == 4  # every answer below the top was shadowed once
        # the client's trace is the small tier's: the shadow's cost is not in it
        trace = store.get(ids["the sum of 20 and 22"])
        assert trace is not None and trace.tier == "small" and trace.cost == 0.0


def test_shadows_are_bounded_and_never_delay_the_answer(tmp_path: Path) -> None:
    big_up = UpstreamBehaviour(reply=None, reply_fn=big_says, delay_s=1.0)
    store = SqliteStore(tmp_path / "t.db")
    with upstream_server(UpstreamBehaviour(reply=None, reply_fn=small_says)) as small, \
            upstream_server(big_up) as big, \
            rung_server_on(_config(small.url, big.url, max_in_flight=1), store) as server:
        first = _ask(server.url, "the sum of 20 and 22")
        _ask(server.url, "the sum of 1 and 2")
        _ask(server.url, "the sum of 3 and 4")
        assert store.feedback() == []  # answered while the first shadow still runs
        assert _metric(server.url, 'rung_shadows_total{outcome="skipped"}') == 2
        _eventually(lambda: len(store.feedback()) == 1)
        assert store.feedback()[0].trace_id == first


def test_downward_shadows_label_the_first_tier_where_it_was_skipped(tmp_path: Path) -> None:
    small_up = UpstreamBehaviour(reply=None, reply_fn=small_says)
    big_up = UpstreamBehaviour(reply=None, reply_fn=big_says)
    store = SqliteStore(tmp_path / "t.db")
    # every request starts at the big tier: the up-shadow never applies, the down one always
    with upstream_server(small_up) as small, upstream_server(big_up) as big, \
            rung_server_on(_config(small.url, big.url, {"thresholds": [0.0]}, 0.5,
                                   share=0.0, down=1.0, max_in_flight=8), store) as server:
        ids = {text: _ask(server.url, text, "big") for text in
               ("the sum of 20 and 22", "seven please", "hello")}
        _eventually(lambda: _metric(server.url, 'rung_shadows_total{outcome="not_comparable"}')
                    == 1 and len(store.feedback()) == 2)
        by_id = {f.trace_id: f for f in store.feedback()}
        summed = by_id[ids["the sum of 20 and 22"]]
        assert (summed.score, summed.source) == (0.0, "shadow_first")
        assert summed.comment == "small ended on 41, the answer on 42"
        assert (by_id[ids["seven please"]].score, by_id[ids["seven please"]].source) == \
            (1.0, "shadow_first")
        assert small_up.calls == 3 and big_up.calls == 3
        assert _metric(server.url, "rung_shadow_cost_total") > 0
        trace = store.get(ids["seven please"])
        assert trace is not None and trace.tier == "big"
        # rung learn reads them as labels about the first tier, on prompts it never answered
        got = {lb.trace_id: (lb.ok, lb.side) for lb in
               labels(store.query(), store.feedback(), "small")}
        assert got == {ids["the sum of 20 and 22"]: (False, "first"),
                       ids["seven please"]: (True, "first")}


def test_a_shadow_needs_a_share_one_way_or_the_other() -> None:
    with pytest.raises(ConfigError, match="routing.shadow: .*set share"):
        _config("http://127.0.0.1:9", "http://127.0.0.1:9", share=0.0)
