"""What `rung serve` says on start: where the API and the dashboard are, the tiers and
whether each is loaded, the embedding models, the store, and whether API keys are
required."""

from __future__ import annotations

from rung import __version__
from rung.auth.access import auth_required
from rung.backends.embedding import local_missing
from rung.config import Config


def _model(config: Config, name: str) -> str:
    tier = config.tier(name)
    if tier is None:
        return "?"
    b = tier.backend
    return b.model if b.type == "llama" else f"{b.base_url} ({b.model})"


def banner(config: Config, loaded: dict[str, bool]) -> list[str]:
    """The lines printed once the socket is bound (``loaded``: tier -> model loaded)."""
    s = config.server
    base = f"http://{s.host}:{s.port}"
    ladder = " -> ".join(t.name for t in config.ladder_tiers)
    tiers = [f"    {t.name:<22} {'loaded' if loaded.get(t.name) else 'loading':<8} "
             f"{_model(config, t.name)}" for t in config.tiers]
    e = config.embeddings
    embed = [n for n in e.names if n != e.local_name or local_missing() is None]
    if auth_required(s.auth, s.host):
        keys = "required (create one: rung keys create --name NAME)"
    else:
        keys = f"not required (bound to {s.host}; server.auth = \"{s.auth}\")"
    return [
        f"rung {__version__}: serving on {base}",
        f"  API (OpenAI):  {base}/v1   model \"{config.alias}\" climbs {ladder}",
        f"  dashboard:     {base}/dashboard",
        f"  ready:         {base}/readyz (200 once every tier is loaded)",
        *([f"  embeddings:    {base}/v1/embeddings   model "
           + " or ".join(f'"{n}"' for n in embed)] if embed else []),
        "  tiers:",
        *tiers,
        f"  store:         {config.store.url}",
        f"  API keys:      {keys}",
    ]
