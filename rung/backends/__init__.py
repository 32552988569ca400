"""Backends: what turns a chat request into a stream of chunks (see ``base``)."""

from __future__ import annotations

from rung.backends.base import Backend
from rung.config import CatalogConfig, LlamaBackendConfig, TierConfig


def build_backend(tier: TierConfig, *, catalog: CatalogConfig) -> Backend:
    """The backend a tier's config asks for; heavy modules are imported only if used."""
    if isinstance(tier.backend, LlamaBackendConfig):
        from rung.backends.llama import LlamaBackend

        return LlamaBackend(tier.name, tier.backend, catalog=catalog)
    from rung.backends.openai_http import OpenAIBackend
    from rung.backends.resilience import CircuitBreaker, ResilientBackend

    b = tier.backend
    return ResilientBackend(
        OpenAIBackend(tier.name, b), retries=b.retries, backoff_s=b.backoff_s,
        breaker=CircuitBreaker(failures=b.breaker_failures, window_s=b.breaker_window_s,
                               cooldown_s=b.breaker_cooldown_s))
