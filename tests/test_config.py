from pathlib import Path

import pytest
from pydantic import ValidationError

from rung.config import Config, OpenAIBackendConfig, load_config, parse_config
from rung.config_docs import BEGIN, END, render
from rung.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_default_is_embedded_model() -> None:
    cfg = load_config(None)
    assert [t.name for t in cfg.tiers] == ["smollm2-135m"]
    assert cfg.tiers[0].backend.type == "llama"
    assert cfg.tiers[0].backend.n_threads == 2
    assert cfg.server.max_body_bytes == 8 * 1024 * 1024


def test_toml_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "rung.toml"
    f.write_text("""
alias = "auto"
[server]
port = 9001
[[tiers]]
name = "small"
backend = { type = "llama", model = "smollm2-135m", n_threads = 1 }
cost = { per_second = 0.0001 }
[[tiers]]
name = "big"
backend = { type = "openai", base_url = "http://127.0.0.1:9/v1", model = "m", api_key_env = "K" }
cost = { input_per_mtok = 1.0, output_per_mtok = 2.0 }
""")
    cfg = load_config(f, environ={"K": "secret"})
    assert cfg.alias == "auto" and cfg.server.port == 9001
    big = cfg.tier("big")
    assert big is not None and isinstance(big.backend, OpenAIBackendConfig)
    assert big.backend.api_key == "secret"
    assert "secret" not in repr(cfg)
    with pytest.raises(ValidationError):
        cfg.server.port = 1  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"server": {"port": 70000}}, "server.port"),
        ({"tiers": []}, "tiers"),
        ({"tiers": [{"name": "a"}, {"name": "a"}]}, "unique"),
        ({"alias": "a", "tiers": [{"name": "a"}]}, "alias"),
        ({"tiers": [{"name": "x", "backend": {"type": "nope"}}]}, "tiers.0.backend"),
        ({"bogus": 1}, "bogus"),
        ({"tools": {"confirm_tier": "nope"}}, "tools.confirm_tier 'nope' does not exist"),
        ({"tiers": [{"name": "x", "verifiers": [{"type": "tool_crosscheck", "tier": "y"}]}]},
         "tool_crosscheck tier 'y' does not exist"),
        ({"tiers": [{"name": "x", "backend": {"type": "openai", "base_url": "u", "model": "m",
                                              "api_key_env": "MISSING"}}]}, "MISSING"),
    ],
)
def test_bad_config_names_the_key(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config(data, environ={})


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_readme_config_reference_is_current() -> None:
    """The README's reference is generated from the code (`rung config docs`)."""
    readme = (REPO / "README.md").read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    assert readme[start:end] == render(), "run: rung config docs, and paste into README.md"


def test_every_key_is_documented() -> None:
    text = render()
    for name in Config.model_fields:
        assert f"`{name}`" in text or f"[{name}]" in text or f"[[{name}]]" in text


def test_readme_command_reference_is_current() -> None:
    """The README's command table is generated from the parsers (`rung config docs --cli`)."""
    from rung.cli_docs import BEGIN as CLI_BEGIN
    from rung.cli_docs import END as CLI_END
    from rung.cli_docs import render as render_cli

    readme = (REPO / "README.md").read_text()
    start, end = readme.index(CLI_BEGIN), readme.index(CLI_END) + len(CLI_END)
    assert readme[start:end] == render_cli(), "run: rung config docs --cli --update README.md"
