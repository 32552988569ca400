"""The server's gate: who is calling (401/403), and may they now (429)."""

from __future__ import annotations

import time
from pathlib import Path

from rung.auth.keys import ApiKey, KeyStore
from rung.auth.limits import Limiter
from rung.errors import AuthError, Forbidden

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def auth_required(mode: str, host: str) -> bool:
    """``auto``: keys are required unless the server binds only to loopback."""
    return mode == "required" or (mode == "auto" and host not in LOOPBACK)


class Access:
    def __init__(self, path: Path) -> None:
        self.keys = KeyStore(path)
        self.limiter = Limiter(self.keys.spent_since)

    def authenticate(self, authorization: str | None, *, admin: bool = False) -> ApiKey:
        if not authorization:
            raise AuthError("You didn't provide an API key. Send 'Authorization: Bearer "
                            "<key>' (create one with `rung keys create`).")
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise AuthError("Malformed Authorization header: expected 'Bearer <key>'.")
        key = self.keys.lookup(secret.strip())
        if key is None:
            raise AuthError("Incorrect API key provided.")
        if key.revoked is not None:
            raise AuthError("This API key has been revoked.", code="revoked_api_key")
        if admin and not key.admin:
            raise Forbidden("This endpoint needs an admin key.")
        return key

    def admit(self, key: ApiKey) -> None:
        self.limiter.admit(key, time.time())

    def record(self, key: ApiKey, *, tokens: int, cost: float) -> None:
        self.limiter.record(key.id, tokens=tokens, cost=cost, now=time.time())

    def close(self) -> None:
        self.keys.close()
