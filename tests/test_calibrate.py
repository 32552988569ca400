from pathlib import Path

import pytest

from rung.config import load_config
from rung.errors import ConfigError
from rung.routing.calibrate import share_for_recovery, thresholds_for_shares, write_thresholds

SCORES = [i / 100 for i in range(100)]


@pytest.mark.parametrize(("shares", "expected_up"), [
    ([0.3], [30]), ([0.5], [50]), ([0.0], [0]), ([1.0], [100]), ([0.6, 0.2], [60, 20]),
])
def test_share_targets_hold_on_the_calibration_set(shares: list[float],
                                                    expected_up: list[int]) -> None:
    th = thresholds_for_shares(SCORES, shares)
    assert th == sorted(th)
    ups = sorted((sum(1 for s in SCORES if s >= t) for t in th), reverse=True)
    assert ups == expected_up


def test_ties_never_exceed_the_share() -> None:
    scores = [0.5] * 50 + [0.9] * 50
    (t,) = thresholds_for_shares(scores, [0.3])
    assert sum(1 for s in scores if s >= t) <= 30


def test_bad_shares() -> None:
    with pytest.raises(ConfigError):
        thresholds_for_shares(SCORES, [0.2, 0.5])
    with pytest.raises(ConfigError):
        thresholds_for_shares([], [0.2])


def test_recovery_target() -> None:
    # 4 items; only item 0 needs the strong model; a router that ranks it first.
    scores, weak, strong = [0.9, 0.1, 0.2, 0.3], [False, True, True, True], [True] * 4
    assert share_for_recovery(scores, weak, strong, 0.9) == 0.25


@pytest.mark.parametrize("before", [
    "[[tiers]]\nname = \"a\"\n[[tiers]]\nname = \"b\"\n",
    "# c\n[routing]\n# keep me\n[[tiers]]\nname = \"a\"\n[[tiers]]\nname = \"b\"\n",
    ("[routing]\nthresholds = [0.9]\nstream_unverified = false\n[[tiers]]\nname = \"a\"\n"
    "[[tiers]]\nname = \"b\"\n"),
])
def test_write_thresholds(tmp_path: Path, before: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(before)
    write_thresholds(f, [0.4242])
    cfg = load_config(f)
    assert cfg.routing.thresholds == (0.4242,)
    assert "# keep me" in f.read_text() or "# keep me" not in before


def test_calibrate_cli_shares_and_recovery(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from rung.cli.main import main
    from tests.conftest import SHARED_DATA

    cfg = tmp_path / "c.toml"
    cfg.write_text('# my ladder\n[[tiers]]\nname = "a"\n[[tiers]]\nname = "b"\n')
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": "word " * i}) + "\n" for i in range(100)))
    assert main(["router", "calibrate", "--config", str(cfg), "--prompts", str(prompts),
                 "--top-share", "0.3", "--write"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["calibration_shares"][0] <= 0.3 and out["calibration_shares"][0] >= 0.25
    text = cfg.read_text()
    assert "# my ladder" in text and "thresholds = [" in text
    data = SHARED_DATA / "routellm"
    assert main(["router", "calibrate", "--config", str(cfg), "--data", str(data),
                 "--benchmark", "gsm8k", "--recover", "0.8"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["calibration_shares"][0] < 1
    assert main(["router", "calibrate", "--config", str(cfg), "--prompts", str(prompts),
                 "--shares", "0.5,0.2"]) == 1  # 2 tiers take one share
