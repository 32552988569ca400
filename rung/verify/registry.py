"""Build a tier's verifiers from config; each module is imported only when used."""

from __future__ import annotations

from rung.config import (
    ArithmeticVerifierConfig,
    Config,
    ConsistencyVerifierConfig,
    ExamplesVerifierConfig,
    JsonVerifierConfig,
    JudgeVerifierConfig,
    LogprobVerifierConfig,
    RepetitionVerifierConfig,
    ToolCrossCheckVerifierConfig,
    ToolLogprobVerifierConfig,
    ToolRelevanceVerifierConfig,
    ToolSchemaVerifierConfig,
    VerifierConfig,
)
from rung.verify.base import Verifier


def build_verifier(cfg: VerifierConfig) -> Verifier:
    if isinstance(cfg, LogprobVerifierConfig):
        from rung.verify.confidence import LogprobVerifier

        return LogprobVerifier(statistic=cfg.statistic, min_logprob=cfg.min_logprob)
    if isinstance(cfg, ArithmeticVerifierConfig):
        from rung.verify.arithmetic import ArithmeticVerifier

        return ArithmeticVerifier()
    if isinstance(cfg, RepetitionVerifierConfig):
        from rung.verify.repetition import RepetitionVerifier

        return RepetitionVerifier(max_repeated=cfg.max_repeated)
    if isinstance(cfg, JsonVerifierConfig):
        from rung.verify.formats import JsonVerifier

        return JsonVerifier()
    if isinstance(cfg, ConsistencyVerifierConfig):
        from rung.verify.consistency import ConsistencyVerifier

        return ConsistencyVerifier(samples=cfg.samples, temperature=cfg.temperature,
                                   min_agreement=cfg.min_agreement, tier=cfg.tier)
    if isinstance(cfg, JudgeVerifierConfig):
        from rung.verify.judge import JudgeVerifier

        return JudgeVerifier(tier=cfg.tier, min_yes=cfg.min_yes)
    if isinstance(cfg, ToolSchemaVerifierConfig):
        from rung.verify.tools import ToolSchemaVerifier

        return ToolSchemaVerifier()
    if isinstance(cfg, ToolLogprobVerifierConfig):
        from rung.verify.tools import ToolLogprobVerifier

        return ToolLogprobVerifier(min_logprob=cfg.min_logprob)
    if isinstance(cfg, ToolRelevanceVerifierConfig):
        from rung.verify.relevance import ToolRelevanceVerifier

        return ToolRelevanceVerifier(min_score=cfg.min_score)
    if isinstance(cfg, ToolCrossCheckVerifierConfig):
        from rung.verify.tools import ToolCrossCheckVerifier

        return ToolCrossCheckVerifier(tier=cfg.tier, tools=cfg.tools)
    if isinstance(cfg, ExamplesVerifierConfig):
        from rung.verify.examples import ExamplesVerifier

        return ExamplesVerifier(timeout_s=cfg.timeout_s)
    from rung.verify.learned_check import LearnedVerifier

    return LearnedVerifier(path=cfg.path, max_score=cfg.max_score)


def tier_verifiers(config: Config) -> dict[str, list[Verifier]]:
    """Every tier's verifiers: its own, then, on each ladder tier below the confirming
    tier (every ladder tier, when it is off the ladder), a cross-check of high-stakes calls
    by that tier (``[tools] high_stakes``)."""
    out = {t.name: [build_verifier(v) for v in t.verifiers] for t in config.tiers}
    ladder = [t.name for t in config.ladder_tiers]
    confirm = config.tools.confirm_tier or ladder[-1]
    if config.tools.high_stakes:  # a confirming tier off the ladder checks every rung
        for name in ladder[: ladder.index(confirm)] if confirm in ladder else ladder:
            out[name].append(build_verifier(ToolCrossCheckVerifierConfig(
                type="tool_crosscheck", tier=confirm, tools=config.tools.high_stakes)))
    return out
