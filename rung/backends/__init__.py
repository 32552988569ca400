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

    return OpenAIBackend(tier.name, tier.backend)
