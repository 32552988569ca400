"""The registry's records and its storage, on SQLite and on Postgres."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from rung.errors import ConfigError, NotFound, RequestError
from rung.prompts.apply import defaults_of
from rung.prompts.model import PromptRef, PromptVersion, Target, new_version, render
from rung.store.prompts import PostgresPromptStore, PromptStore
from tests.store.conftest import pg_admin_url, pg_url  # noqa: F401

V1 = {"messages": [{"role": "system", "content": "Answer in {{style}}."},
                   {"role": "user", "content": "{{ question }}"}],
      "variables": {"style": "one line"}}


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PromptStore]:
    if request.param == "sqlite":
        s: PromptStore = PromptStore(tmp_path / "traces.db")
    else:
        s = PostgresPromptStore(request.getfixturevalue("pg_url"))
    try:
        yield s
    finally:
        s.close()


@pytest.mark.parametrize(("text", "ref"), [
    ("gsm", PromptRef("gsm", "production", None)),
    ("gsm@staging", PromptRef("gsm", "staging", None)),
    ("gsm@3", PromptRef("gsm", None, 3)),
    ("gsm@latest", PromptRef("gsm", "latest", None)),
])
def test_a_reference_names_a_label_or_a_version(text: str, ref: PromptRef) -> None:
    assert PromptRef.parse(text) == ref


@pytest.mark.parametrize("text", ["", "gsm@", "@3", "a b", "x/y"])
def test_a_bad_reference_is_a_400(text: str) -> None:
    with pytest.raises(RequestError) as info:
        PromptRef.parse(text)
    assert info.value.param == "rung.prompt"


def test_render_fills_placeholders_from_variables_then_defaults() -> None:
    v = new_version("gsm", V1)
    assert v.uses == ["style", "question"]
    assert render(v, {"question": "2+2?"}) == [
        {"role": "system", "content": "Answer in one line."},
        {"role": "user", "content": "2+2?"}]
    assert render(v, {"question": 7, "style": "French"})[0]["content"] == "Answer in French."


@pytest.mark.parametrize(("given", "param", "code"), [
    ({}, "rung.variables.question", "missing_variable"),
    ({"question": "q", "tone": "x"}, "rung.variables.tone", "unknown_variable"),
    ({"question": ["q"]}, "rung.variables.question", "invalid_value"),
])
def test_a_missing_or_unknown_variable_is_a_400_naming_it(given: dict[str, object],
                                                          param: str, code: str) -> None:
    with pytest.raises(RequestError) as info:
        render(new_version("gsm", V1), given)
    assert (info.value.status, info.value.param, info.value.code) == (400, param, code)


@pytest.mark.parametrize(("data", "says"), [
    ({}, "needs `messages`"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0]"),
    ({**V1, "variables": {"nope": "x"}}, "no message uses: nope"),
    ({**V1, "config": {"temprature": 0}}, "unknown keys in [config]: temprature"),
    ({**V1, "extra": 1}, "unknown keys in the prompt"),
])
def test_a_bad_prompt_file_says_what_is_wrong(data: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        new_version("gsm", data)
    assert says in info.value.message


def test_config_is_checked_as_a_request_is() -> None:
    d = defaults_of({"temperature": 0, "max_tokens": 64, "tier": "big",
                     "response_format": {"type": "json_object"}})
    assert (d.request.temperature, d.request.max_tokens, d.tier) == (0.0, 64, "big")
    assert d.request.response_format.type == "json_object"
    with pytest.raises(ConfigError, match="max_tokens"):
        defaults_of({"max_tokens": 0})


def test_a_split_is_sticky_per_caller_and_follows_its_weights() -> None:
    t = Target.parse("1=9,2=1")
    assert t.split == ((1, 0.9), (2, 0.1))
    assert all(t.pick("user-7", salt="p@prod") == t.pick("user-7", salt="p@prod")
               for _ in range(5))
    picks = Counter(t.pick(f"user-{i}", salt="p@prod") for i in range(4000))
    assert 0.87 < picks[1] / 4000 < 0.93
    assert t.pick(None, salt="s", draw=0.95) == 2 and t.pick(None, salt="s", draw=0.5) == 1
    assert str(Target.parse("3")) == "3"
    with pytest.raises(ConfigError):
        Target.parse("3=0,4=0")


def test_versions_are_immutable_and_numbered_labels_move_and_roll_back(
        store: PromptStore) -> None:
    v = new_version("gsm", V1, message="first", author="ann")
    assert store.push(v, label="production").version == 1
    two = store.push(new_version("gsm", {**V1, "variables": {"style": "two lines"}}))
    assert two.version == 2 and store.latest("gsm") == 2
    assert store.version("gsm", 1).message == "first"
    assert store.version("gsm", 1).author == "ann"
    assert store.target("gsm", "production") == Target.single(1)
    assert store.target("gsm", "latest") == Target.single(2)
    store.set_label("gsm", "production", Target.single(2))
    store.set_label("gsm", "production", Target.parse("1=1,2=1"))
    assert store.target("gsm", "production").versions == (1, 2)
    assert store.rollback("gsm", "production") == Target.single(2)
    assert store.rollback("gsm", "production") == Target.single(1)
    with pytest.raises(ConfigError, match="no earlier version"):
        store.rollback("gsm", "production")
    assert store.labels("gsm") == {"production": Target.single(1)}
    assert [(n, latest) for n, latest, _ in store.names()] == [("gsm", 2)]


def test_unknown_prompts_versions_and_labels_are_not_found(store: PromptStore) -> None:
    store.push(new_version("gsm", V1))
    for call, code in ((lambda: store.target("nope", "production"), "prompt_not_found"),
                       (lambda: store.target("gsm", "production"), "prompt_label_not_found"),
                       (lambda: store.version("gsm", 9), "prompt_not_found")):
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.status == 404 and info.value.code == code
    with pytest.raises(NotFound):
        store.set_label("gsm", "production", Target.single(4))
    with pytest.raises(ConfigError, match="automatic"):
        store.set_label("gsm", "latest", Target.single(1))


def test_pushes_from_many_threads_get_distinct_versions(store: PromptStore,
                                                        tmp_path: Path) -> None:
    import concurrent.futures

    opener = (lambda: PromptStore(tmp_path / "traces.db")) \
        if type(store) is PromptStore else None
    if opener is None:
        url = store._conn.info.dsn  # the same database, new connections

        def opener() -> PromptStore:
            return PostgresPromptStore(url, migrate=False)

    def push(_: int) -> int:
        s = opener()
        try:
            return s.push(new_version("gsm", V1)).version
        finally:
            s.close()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        versions = sorted(pool.map(push, range(16)))
    assert versions == list(range(1, 17))


def test_a_version_reads_back_as_pushed(store: PromptStore) -> None:
    v = new_version("gsm", {**V1, "config": {"temperature": 0.2, "tools": [
        {"type": "function", "function": {"name": "calc", "parameters": {
            "type": "object", "properties": {"x": {"type": "string"}}}}}]}})
    store.push(v)
    back = store.version("gsm", 1)
    assert isinstance(back, PromptVersion)
    assert (back.messages, back.variables, back.config) == (v.messages, v.variables, v.config)
