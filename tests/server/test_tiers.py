"""2- and 3-tier configs end to end: a real rung server, real upstream servers on
loopback, the embedded model, and the official openai SDK."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import openai
import pytest

from rung.devtools.upstream import UpstreamBehaviour
from tests.conftest import LiveServer, config_of, rung_server, upstream_server, upstream_tier

Q = [{"role": "user", "content": "What is 17+25?"}]
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@contextmanager
def ladder(replies: list[str | None], *, dead: tuple[int, ...] = (),
           verifiers: list[list[dict[str, object]]] | None = None,
           **routing: object) -> Iterator[tuple[LiveServer, list[UpstreamBehaviour]]]:
    """A rung server over one upstream per reply (tier i is called t{i})."""
    with ExitStack() as stack:
        behaviours = [UpstreamBehaviour(reply=r) for r in replies]
        ups = [stack.enter_context(upstream_server(b)) for b in behaviours]
        tiers = []
        for i, up in enumerate(ups):
            tier = upstream_tier(f"t{i}", _dead_url() if i in dead else up.url)
            tier["verifiers"] = (verifiers or [[]] * len(ups))[i]
            tier["cost"] = {"input_per_mtok": float(10 ** i), "output_per_mtok": float(10 ** i)}
            tiers.append(tier)
        server = stack.enter_context(rung_server(config_of(tiers=tiers, routing=routing)))
        yield server, behaviours


def _client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def _ask(server: LiveServer, **kw: object) -> tuple[str, dict[str, str], dict[str, object]]:
    raw = _client(server).chat.completions.with_raw_response.create(
        model="rung", messages=kw.pop("messages", Q), **kw)  # type: ignore[arg-type]
    body = json.loads(raw.http_response.text)
    return body["choices"][0]["message"]["content"], dict(raw.headers), body["rung"]


@pytest.mark.parametrize("n", [2, 3])
def test_routing_by_score(n: int) -> None:
    replies = [f"answer from t{i}" for i in range(n)]
    with ladder(replies, thresholds=[0.5] * (n - 1)) as (server, _):
        for th, tier in (([1.0] * (n - 1), "t0"), ([0.0] * (n - 1), f"t{n - 1}"),
                         ([0.0] + [1.0] * (n - 2), "t1")):
            text, headers, info = _ask(server, extra_body={"rung": {"thresholds": th}})
            assert text == f"answer from {tier}"
            assert headers["x-rung-tier"] == tier and info["tier"] == tier
            assert "score=" in headers["x-rung-route"] and info["score"] is not None


def test_escalation_on_json_schema_rejection_three_tiers() -> None:
    json_check = [{"type": "json"}]
    with ladder(["not json", '{"a": "x"}', '{"a": 1}'],
                verifiers=[json_check, json_check, []]) as (server, ups):
        text, headers, info = _ask(server, response_format={
            "type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}})
        assert json.loads(text) == {"a": 1}
        assert headers["x-rung-tier"] == "t2"
        assert [a["outcome"] for a in info["attempts"]] == ["rejected", "rejected", "answered"]
        assert "t0:rejected(json=1.00-)" in headers["x-rung-route"]
        assert info["escalations"] == 2 and info["cost"] > 0
        assert [u.calls for u in ups] == [1, 1, 1]
        # Without a JSON request the cheapest answer is accepted.
        text, headers, _ = _ask(server)
        assert text == "not json" and headers["x-rung-tier"] == "t0"


def test_escalation_when_the_code_fails_the_prompts_examples() -> None:
    prompt = ("Complete this function:\n```python\ndef double(x):\n    '''\n"
              "    >>> double(2)\n    4\n    double(5) == 10\n    '''\n```")
    wrong = "```python\ndef double(x):\n    return x + 2\n```"
    right = "```python\ndef double(x):\n    return 2 * x\n```"
    check = [{"type": "examples", "timeout_s": 5}]
    with ladder([wrong, right], verifiers=[check, []]) as (server, _):
        text, headers, info = _ask(server, messages=[{"role": "user", "content": prompt}])
        assert text == right and headers["x-rung-tier"] == "t1"
        assert "t0:rejected(examples=0.50-)" in headers["x-rung-route"]
        assert info["attempts"][0]["outcome"] == "rejected"
        # a prompt without examples gives the check no evidence: the cheap answer stands
        text, headers, _ = _ask(server)
        assert text == wrong and headers["x-rung-tier"] == "t0"


def test_streaming_sees_only_the_verified_answer() -> None:
    with ladder(["not json", '{"a": 1}'], verifiers=[[{"type": "json"}], []]) as (server, _):
        chunks = list(_client(server).chat.completions.create(
            model="rung", messages=Q, stream=True, response_format={"type": "json_object"}))  # type: ignore[arg-type]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == '{"a": 1}'


def test_fallback_past_a_dead_upstream_and_503_when_all_fail() -> None:
    with ladder(["unused", "from t1"], dead=(0,)) as (server, _):
        text, headers, info = _ask(server)
        assert text == "from t1" and headers["x-rung-tier"] == "t1"
        assert "t0:BackendUnavailable" in headers["x-rung-route"]
    with ladder(["a", "b"], dead=(0, 1)) as (server, _):
        with pytest.raises(openai.InternalServerError) as info:
            _ask(server)
        assert info.value.status_code == 503
        err = info.value.response.json()["error"]
        assert err["code"] == "no_tier_available" and err["type"] == "server_error"
        assert "BackendUnavailable" in info.value.response.headers["x-rung-route"]


def test_pin_a_tier_and_unknown_pin() -> None:
    with ladder(["a", "b"]) as (server, _):
        text, _headers, info = _ask(server, extra_body={"rung": {"tier": "t1"}})
        assert text == "b" and info["reason"] == "pinned"
        with pytest.raises(openai.NotFoundError):
            _ask(server, extra_body={"rung": {"tier": "t9"}})
        with pytest.raises(openai.BadRequestError):
            _ask(server, extra_body={"rung": {"thresholds": [0.1, 0.2]}})


@pytest.mark.slow
def test_real_model_logprob_verifier_gates_the_small_tier() -> None:
    with upstream_server(UpstreamBehaviour(reply="42")) as up:
        for min_lp, tier in ((-50.0, "small"), (-0.0001, "big")):
            cfg = config_of(tiers=[
                {"name": "small", "backend": {"type": "llama"},
                 "verifiers": [{"type": "logprob", "min_logprob": min_lp}]},
                upstream_tier("big", up.url)])
            with rung_server(cfg) as server:
                _text, headers, info = _ask(server, max_tokens=24, temperature=0)
                assert headers["x-rung-tier"] == tier
                verdict = info["attempts"][0]["verdicts"][0]
                assert verdict["name"] == "logprob" and "mean logprob" in verdict["detail"]
                assert 0.0 <= verdict["score"] <= 1.0
                # the local tier's compute is on its attempt and in the route's total,
                # also when the upstream answered after it
                small_compute = info["attempts"][0]["compute_s"]
                assert small_compute > 0 and info["compute_s"] == pytest.approx(
                    small_compute, abs=1e-5)


@pytest.mark.slow
def test_real_model_as_judge() -> None:
    with upstream_server(UpstreamBehaviour(reply="42")) as up:
        cfg = config_of(tiers=[
            upstream_tier("cheap", up.url) | {"verifiers": [{"type": "judge", "tier": "smol"}]},
            {"name": "smol", "backend": {"type": "llama"}}])
        with rung_server(cfg) as server:
            _, _, info = _ask(server)
            verdict = info["attempts"][0]["verdicts"][0]
            assert verdict["name"] == "judge"
            assert "P(yes)" in verdict["detail"] or "abstain" in verdict["detail"]


@pytest.mark.slow
def test_two_local_tiers_load_together_and_answer_concurrently() -> None:
    """Loading two models at once once ended the process silently; loads now take turns."""
    cfg = config_of(tiers=[{"name": "a", "backend": {"type": "llama"}},
                           {"name": "b", "backend": {"type": "llama", "n_threads": 1}}])
    with rung_server(cfg) as server:
        import asyncio

        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)

        async def both() -> list[str]:
            rs = await asyncio.gather(*(client.chat.completions.create(
                model=m, messages=Q, max_tokens=8, temperature=0) for m in ("a", "b", "a", "b")))  # type: ignore[arg-type]
            await client.close()
            return [r.choices[0].message.content or "" for r in rs]

        answers = asyncio.run(both())
        assert answers[0] == answers[2] and answers[1] == answers[3] and answers[0]


@pytest.mark.parametrize(("checker_reply", "tier"), [("So the answer is 42.", "t0"),
                                                       ("The answer is 41.", "t1")])
def test_cross_check_by_another_tier(checker_reply: str, tier: str) -> None:
    check = [{"type": "self_consistency", "samples": 1, "temperature": 0.0, "tier": "t2"}]
    with ladder(["17 + 25 = 42. The answer is 42.", "42", checker_reply],
                verifiers=[check, [], []]) as (server, ups):
        _text, headers, info = _ask(server)
        assert headers["x-rung-tier"] == tier
        assert ups[2].calls == 1  # t2 solved the question itself, once
        verdict = info["attempts"][0]["verdicts"][0]  # type: ignore[index]
        assert verdict["name"] == "cross_check" and "by t2" in verdict["detail"]
        assert ups[1].calls == (tier == "t1")


@pytest.mark.slow
def test_real_model_cross_checks_from_off_the_ladder() -> None:
    """The embedded model as a helper tier (ladder = false) solving the question itself to
    check a cheap upstream's answer; it never answers on the ladder."""
    cheap, big = UpstreamBehaviour(reply="17 + 25 = 42. The answer is 42."), \
        UpstreamBehaviour(reply="The answer is 42.")
    check = {"type": "self_consistency", "tier": "smol", "samples": 1, "temperature": 0.0}
    with upstream_server(cheap) as up0, upstream_server(big) as up1:
        cfg = config_of(tiers=[upstream_tier("cheap", up0.url) | {"verifiers": [check]},
                               upstream_tier("big", up1.url),
                               {"name": "smol", "backend": {"type": "llama"}, "ladder": False}])
        with rung_server(cfg) as server:
            _text, headers, info = _ask(server, max_tokens=48, temperature=0,
                                        extra_body={"rung": {"thresholds": [1.0]}})
            assert headers["x-rung-tier"] in ("cheap", "big")
            verdict = info["attempts"][0]["verdicts"][0]  # type: ignore[index]
            assert verdict["name"] == "cross_check" and "by smol" in verdict["detail"]
            assert info["compute_s"] > 0  # the check's local generation is on the route
            assert cheap.calls == 1 and big.calls == (headers["x-rung-tier"] == "big")
            with pytest.raises(openai.BadRequestError, match="needs 1 values"):
                _ask(server, extra_body={"rung": {"thresholds": [0.5, 0.9]}})
