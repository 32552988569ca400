"""The built-in config: what rung runs when no ``--config`` is given.

With the stronger small model installed (``python3 tasks.py serve`` installs it), it is
a two-tier ladder: the embedded SmolLM2-135M answers first, its answer is checked, and
Qwen2.5-Coder-0.5B answers what the check rejects. Without it (no network at set-up,
or ``--minimal``), the embedded model alone, as :class:`rung.config.Config` defaults to.

The checks on SmolLM2's answers are the ones measured best on GSM8K for this pair
(docs/default-ladder.md): its arithmetic must hold, and its mean token logprob must
reach a floor, set where the replay kept the 0.5B's accuracy at the least compute.
"""

from __future__ import annotations

from rung.catalog import BUILTIN, PartsPackages, parts_path
from rung.config import (
    EMBEDDED_MODEL,
    ArithmeticVerifierConfig,
    CatalogConfig,
    Config,
    CostConfig,
    LlamaBackendConfig,
    LogprobVerifierConfig,
    TierConfig,
)

STRONGER = "qwen2.5-coder-0.5b"
# The logprob floor on SmolLM2's answers (docs/default-ladder.md: chosen on GSM8K by
# cross-fitted replay with the arithmetic check).
SMALL_MIN_LOGPROB = -0.35


def installed(name: str, catalog: CatalogConfig) -> bool:
    """Whether a catalogue model that needs installing is on this machine."""
    entry = BUILTIN.get(name)
    return (entry is not None and isinstance(entry.source, PartsPackages)
            and parts_path(name, catalog=catalog).is_file())


def ladder() -> Config:
    """The embedded model, checked, then the stronger small model."""
    return Config(tiers=(
        TierConfig(
            name=EMBEDDED_MODEL,
            backend=LlamaBackendConfig(model=EMBEDDED_MODEL, parallel=4),
            cost=CostConfig(per_second=1.0), timeout_s=60,
            verifiers=(ArithmeticVerifierConfig(type="arithmetic"),
                       LogprobVerifierConfig(type="logprob", statistic="mean",
                                             min_logprob=SMALL_MIN_LOGPROB))),
        TierConfig(
            name=STRONGER,
            backend=LlamaBackendConfig(model=STRONGER, parallel=4),
            cost=CostConfig(per_second=1.0), timeout_s=120),
    ))


def builtin(*, minimal: bool = False) -> tuple[Config, str | None]:
    """The built-in config, and a one-line notice when the ladder cannot be served."""
    plain = Config()
    if minimal:
        return plain, None
    if not installed(STRONGER, plain.catalog):
        return plain, (f"rung: {STRONGER} is not installed (`rung models install {STRONGER}`):"
                       f" serving {EMBEDDED_MODEL} alone")
    return ladder(), None
