"""`rung learn` end to end: traffic through a real server, feedback through
POST /v1/feedback, a router learned from it, promoted only when it beats the one in use
(SQLite and Postgres)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from rung.cli.main import main
from rung.config import load_config
from rung.routing.heads import load_router
from tests.conftest import http, upstream_server
from tests.store.conftest import rung_server_on
from tests.store.test_feedback import _open, store_url  # noqa: F401 - the fixture

# Same shape, same length, same numbers: the heuristic router cannot tell them apart.
BAD = "Tell me a short story about a zebra, number {i}."
GOOD = "Tell me a short story about an apple, number {i}."


def _config(tmp: Path, up_url: str, store: str) -> Path:
    cfg = tmp / "rung.toml"
    cfg.write_text(f'[store]\nurl = "{store}"\n'
                   '[[tiers]]\nname = "small"\n'
                   f'backend = {{ type = "openai", base_url = "{up_url}/v1", model = "s" }}\n'
                   '[[tiers]]\nname = "big"\n'
                   f'backend = {{ type = "openai", base_url = "{up_url}/v1", model = "b" }}\n')
    return cfg


def _traffic(cfg: Path, store: str, n: int, label: object) -> None:
    """``n`` requests through a real server, each rated by ``label(prompt)``."""
    rng = random.Random(0)
    prompts = [(BAD if i % 2 else GOOD).format(i=i) for i in range(n)]
    rng.shuffle(prompts)
    with rung_server_on(load_config(cfg), _open(store)) as server:
        for p in prompts:
            r = http("POST", f"{server.url}/v1/chat/completions", {
                "model": "rung", "messages": [{"role": "user", "content": p}]})
            assert r.status == 200 and r.headers["x-rung-tier"] == "small"
            fb = http("POST", f"{server.url}/v1/feedback",
                      {"id": r.json()["id"], "score": label(p)})  # type: ignore[operator]
            assert fb.status == 200, fb.body


def _learn(cfg: Path, store: str, out: Path, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    return main(["learn", "--config", str(cfg), "--store", store, "--out", str(out)])


def test_a_router_learned_from_feedback_is_promoted_when_it_wins(
        store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    with upstream_server() as up:
        cfg = _config(tmp_path, up.url, store_url)
        _traffic(cfg, store_url, 160, lambda p: 0.0 if "zebra" in p else 1.0)
    out = tmp_path / "learned"
    assert _learn(cfg, store_url, out, capsys) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["labelled"] == 160 and report["labelled_stronger"] == 0
    assert report["sources"] == {"feedback": 160, "shadow": 0, "verifier": 0}
    assert report["sources_stronger"] == {"feedback": 0, "shadow": 0}
    assert report["promoted"] is True
    assert report["router"]["apgr"] > report["current"]["apgr"] + 0.2
    assert report["difference"]["ci95"][0] > 0
    promoted = json.loads((out / "promoted.json").read_text())
    assert promoted["version"] == report["version"]
    assert (out / promoted["path"]).is_file() and promoted["history"] == []
    model = load_router(out / "router.npz")
    assert model.score(BAD.format(i=999)) > model.score(GOOD.format(i=999))
    # the promoted router is compared only on traffic it never saw: right after its
    # promotion there is none, so nothing is promoted until more labels come
    served = tmp_path / "served.toml"
    served.write_text(cfg.read_text().replace(
        "[[tiers]]", f'[routing]\nscorer = {{ type = "learned", path = "{out}" }}\n'
        "[[tiers]]", 1))
    assert _learn(served, store_url, out, capsys) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["promoted"] is False and "0 labels about small since" in again["reason"]
    assert json.loads((out / "promoted.json").read_text())["version"] == report["version"]


def test_a_router_that_does_not_win_is_not_promoted(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 'traces.db'}"
    coin = random.Random(1)
    with upstream_server() as up:
        cfg = _config(tmp_path, up.url, store)
        _traffic(cfg, store, 160, lambda p: float(coin.random() < 0.5))  # labels are noise
    out = tmp_path / "learned"
    assert _learn(cfg, store, out, capsys) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["labelled"] == 160 and report["promoted"] is False
    assert (out / "router.npz").is_file() and not (out / "promoted.json").exists()


def test_too_few_labels_say_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 'traces.db'}"
    with upstream_server() as up:
        cfg = _config(tmp_path, up.url, store)
        _traffic(cfg, store, 10, lambda p: 0.0 if "zebra" in p else 1.0)
    out = tmp_path / "learned"
    assert _learn(cfg, store, out, capsys) == 1
    assert "too few labels" in capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["labelled"] == 10 and report["promoted"] is False
    assert report["router"] == {"apgr": None}


def test_a_server_picks_up_a_promotion_and_a_rollback_without_a_restart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "learned"
    zebra = BAD.format(i=1000)
    with upstream_server() as up:
        plain = _config(tmp_path, up.url, f"sqlite:///{tmp_path / 'a.db'}")
        _traffic(plain, f"sqlite:///{tmp_path / 'a.db'}", 160,
                 lambda p: 0.0 if "zebra" in p else 1.0)
        assert _learn(plain, f"sqlite:///{tmp_path / 'a.db'}", out, capsys) == 0
        first = json.loads((out / "report.json").read_text())
        assert first["promoted"] is True
        # a server routing with the promoted router: zebras start at "big"
        served = tmp_path / "served.toml"
        served.write_text(plain.read_text().replace(
            "[[tiers]]", f'[routing]\nscorer = {{ type = "learned", path = "{out}" }}\n'
            "thresholds = [0.75]\n[[tiers]]", 1))
        served_db = f"sqlite:///{tmp_path / 'served.db'}"
        with rung_server_on(load_config(served), _open(served_db)) as server:
            def route_of(prompt: str) -> dict[str, object]:
                r = http("POST", f"{server.url}/v1/chat/completions", {
                    "model": "rung", "messages": [{"role": "user", "content": prompt}]})
                assert r.status == 200
                return dict(r.json()["rung"])

            got = route_of(zebra)
            assert got["router"] == f"learned:{first['version']}" and got["tier"] == "big"
            # the traffic changes its mind: now apples are bad, zebras fine
            _traffic(plain, f"sqlite:///{tmp_path / 'b.db'}", 160,
                     lambda p: 0.0 if "apple" in p else 1.0)
            assert _learn(served, f"sqlite:///{tmp_path / 'b.db'}", out, capsys) == 0
            second = json.loads((out / "report.json").read_text())
            assert second["promoted"] is True and second["current"]["scorer"] == "learned"

            def eventually(version: str, tier: str) -> None:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    got = route_of(zebra)
                    if got["router"] == f"learned:{version}":
                        assert got["tier"] == tier
                        return
                    time.sleep(0.2)
                raise AssertionError(f"router {version} never came into use")

            eventually(second["version"], "small")
            assert main(["learn", "--out", str(out), "--rollback"]) == 0
            eventually(first["version"], "big")
    store = _open(served_db)
    try:
        routers = {t.route.get("router") for t in store.query()}
    finally:
        store.close()
    assert routers == {f"learned:{first['version']}", f"learned:{second['version']}"}


def test_a_learn_folder_with_nothing_promoted_routes_with_the_heuristic(tmp_path: Path) -> None:
    out = tmp_path / "learned"
    out.mkdir()
    with upstream_server() as up:
        cfg = _config(tmp_path, up.url, f"sqlite:///{tmp_path / 't.db'}")
        served = tmp_path / "served.toml"
        served.write_text(cfg.read_text().replace(
            "[[tiers]]", f'[routing]\nscorer = {{ type = "learned", path = "{out}" }}\n'
            "[[tiers]]", 1))
        with rung_server_on(load_config(served), _open(f"sqlite:///{tmp_path / 't.db'}")) \
                as server:
            r = http("POST", f"{server.url}/v1/chat/completions", {
                "model": "rung", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status == 200 and r.json()["rung"]["router"] == "heuristic"
