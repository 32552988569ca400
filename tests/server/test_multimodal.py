"""Image, audio and file parts: passed through to upstream tiers that take them, a clear
400 from tiers that cannot, and routing that skips tiers without them. Real servers on
loopback, the official SDK, upstream tiers that record what they were sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from rung.devtools.upstream import UpstreamBehaviour
from rung.errors import ConfigError
from rung.store.sqlite import SqliteStore
from tests.conftest import LiveServer, config_of, rung_server, upstream_server, upstream_tier

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
ASK_IMAGE: list[Any] = [{"role": "user", "content": [
    {"type": "text", "text": "What is in this picture?"},
    {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}}]}]
ASK_AUDIO: list[Any] = [{"role": "user", "content": [
    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    {"type": "text", "text": "Transcribe."}]}]


@pytest.fixture
def two_tiers(tmp_path: Path) -> Iterator[tuple[LiveServer, UpstreamBehaviour,
                                                UpstreamBehaviour, Path]]:
    """A ladder of a text-only upstream "small" and an upstream "vision" that takes
    everything (the default for an openai tier)."""
    small = UpstreamBehaviour(reply="small here", bodies=[])
    vision = UpstreamBehaviour(reply="a red pixel", bodies=[])
    db = tmp_path / "traces.db"
    with upstream_server(small) as s_up, upstream_server(vision) as v_up:
        cfg = config_of(tiers=[{**upstream_tier("small", s_up.url), "input": ["text"]},
                               upstream_tier("vision", v_up.url)],
                        routing={"thresholds": [0.99]})
        with rung_server(cfg, store=db) as server:
            yield server, small, vision, db


def _client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0,
                         timeout=20)


def test_images_pass_through_and_routing_skips_tiers_without_them(
        two_tiers: tuple[LiveServer, UpstreamBehaviour, UpstreamBehaviour, Path]) -> None:
    server, small, vision, db = two_tiers
    client = _client(server)
    r = client.chat.completions.create(model="rung", messages=ASK_IMAGE)
    assert r.choices[0].message.content == "a red pixel"
    rung = r.model_extra["rung"]  # type: ignore[index]
    assert rung["tier"] == "vision" and "skipped small (no image input)" in rung["reason"]
    assert small.bodies == []
    (sent,) = vision.bodies or []
    assert sent["messages"] == ASK_IMAGE  # every part, in order, as the client sent it
    text = client.chat.completions.create(
        model="rung", messages=[{"role": "user", "content": "Hello there"}])
    assert text.choices[0].message.content == "small here"  # text still starts small
    store = SqliteStore(db)
    try:
        trace = store.get(r.id)
    finally:
        store.close()
    assert trace is not None and trace.messages == [
        {"role": "user", "content": "What is in this picture?", "media": ["image"]}]


def test_audio_and_files_pass_through_too(
        two_tiers: tuple[LiveServer, UpstreamBehaviour, UpstreamBehaviour, Path]) -> None:
    server, _, vision, _ = two_tiers
    client = _client(server)
    client.chat.completions.create(model="vision", messages=ASK_AUDIO)
    filed: list[Any] = [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERg==",
                                  "filename": "a.pdf"}},
        {"type": "text", "text": "Summarize."}]}]
    client.chat.completions.create(model="rung", messages=filed)
    assert [b["messages"] for b in vision.bodies or []] == [ASK_AUDIO, filed]


def test_a_tier_that_cannot_take_images_is_a_clear_400(
        two_tiers: tuple[LiveServer, UpstreamBehaviour, UpstreamBehaviour, Path]) -> None:
    server, small, _, _ = two_tiers
    with pytest.raises(openai.BadRequestError) as err:
        _client(server).chat.completions.create(model="small", messages=ASK_IMAGE)
    assert err.value.body["code"] == "unsupported_content"  # type: ignore[index]
    assert "'small' does not take image input" in err.value.body["message"]  # type: ignore[index]
    assert small.bodies == []


def test_a_gateway_where_no_tier_takes_audio_says_so() -> None:
    with upstream_server() as up:
        cfg = config_of(tiers=[{**upstream_tier("only", up.url), "input": ["text", "image"]}])
        with rung_server(cfg) as server, pytest.raises(openai.BadRequestError) as err:
            _client(server).chat.completions.create(model="rung", messages=ASK_AUDIO)
    assert "No tier on this gateway takes audio input" in err.value.body["message"]  # type: ignore[index]


@pytest.mark.parametrize(("part", "param"), [
    ({"type": "image_url", "image_url": {}}, "messages[0].content[0].image_url.url"),
    ({"type": "image_url", "image_url": {"url": "x", "detail": "max"}},
     "messages[0].content[0].image_url.detail"),
    ({"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}},
     "messages[0].content[0].input_audio.format"),
    ({"type": "video", "video": {}}, "messages[0].content[0]"),
])
def test_bad_parts_name_their_parameter(part: dict[str, Any], param: str) -> None:
    from rung.errors import RequestError
    from rung.server.wire import parse_chat_request

    with pytest.raises(RequestError) as err:
        parse_chat_request(f'{{"model": "m", "messages": [{{"role": "user", "content": '
                           f'[{_json(part)}]}}]}}'.encode(), max_messages=8)
    assert err.value.param == param


def _json(obj: object) -> str:
    import json

    return json.dumps(obj)


def test_the_responses_api_passes_images_through(
        two_tiers: tuple[LiveServer, UpstreamBehaviour, UpstreamBehaviour, Path]) -> None:
    server, _, vision, _ = two_tiers
    r = _client(server).responses.create(model="rung", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": PNG, "detail": "high"}]}])
    assert r.output_text == "a red pixel"
    assert (vision.bodies or [])[-1]["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}}]}]


def test_a_llama_tier_cannot_be_configured_to_take_images() -> None:
    with pytest.raises((ConfigError, ValueError)) as err:
        config_of(tiers=[{"name": "local", "input": ["text", "image"]}])
    assert "takes text only" in str(err.value)


@pytest.mark.slow
def test_the_embedded_model_refuses_an_image_clearly(smol: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        _client(smol).chat.completions.create(model="rung", messages=ASK_IMAGE)
    assert err.value.body["code"] == "unsupported_content"  # type: ignore[index]
