"""Every error rung raises, in one tree.

    RungError
    ├── ConfigError             the config file or a value in it is wrong
    ├── ModelSourceError        a GGUF could not be found, fetched or verified
    ├── RequestError            the client's request is wrong (HTTP 400)
    │   ├── ContextLengthExceeded   prompt + max_tokens exceed the context (400)
    │   ├── PayloadTooLarge         the body is over the size limit (413)
    │   └── UnknownModel            no tier or alias has that name (404)
    ├── AuthError               no key, a wrong key or a revoked key (401)
    │   └── Forbidden               a valid key without the right (403)
    ├── RateLimited             a key is over its rate limit or budget (429 + retry-after)
    ├── Overloaded              a bounded queue is full (503 + retry-after)
    │   └── StoreUnavailable        the shared key store did not answer in time (503)
    ├── BackendError            a backend failed to answer
    │   ├── BackendTimeout          it did not answer in time
    │   ├── BackendUnavailable      it cannot be reached (connect refused, DNS, closed)
    │   └── UpstreamError           it answered with an error status
    └── NoTierAvailable         every tier that could answer has failed (503)

Library exceptions are wrapped where they enter rung (``raise BackendTimeout(...) from
exc``). The server turns these into OpenAI-style error JSON in one place
(``rung.server.errors``); the CLI turns them into one line in one place.
"""

from __future__ import annotations

from rung.types import Outcome


class RungError(Exception):
    """Base of every error rung raises on purpose."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class ConfigError(RungError):
    code = "invalid_config"


class ModelSourceError(RungError):
    code = "model_source_error"


class RequestError(RungError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class ContextLengthExceeded(RequestError):
    code = "context_length_exceeded"


class PayloadTooLarge(RequestError):
    status = 413
    code = "request_too_large"


class NotFound(RequestError):
    status = 404
    code = "not_found"


class UnknownModel(RequestError):
    status = 404
    code = "model_not_found"


class AuthError(RungError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(AuthError):
    status = 403
    code = "forbidden"


class RateLimited(RungError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class Overloaded(RungError):
    status = 503
    type = "server_error"
    code = "overloaded"
    outcome = Outcome.OVERLOADED  # what a tier's attempt records (traces, metrics)

    def __init__(self, message: str, *, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreUnavailable(Overloaded):
    """Keys or limits kept in Postgres cannot be checked now: refused, never waited on."""

    code = "store_unavailable"


class BackendError(RungError):
    status = 502
    type = "upstream_error"
    code = "backend_error"
    outcome = Outcome.FAILED  # what a tier's attempt records (traces, metrics)


class BackendTimeout(BackendError):
    status = 504
    code = "backend_timeout"
    outcome = Outcome.TIMEOUT


class BackendUnavailable(BackendError):
    code = "backend_unavailable"
    outcome = Outcome.UNAVAILABLE


class UpstreamError(BackendError):
    code = "upstream_error"
    outcome = Outcome.UPSTREAM_ERROR

    def __init__(self, message: str, *, upstream_status: int, retryable: bool):
        super().__init__(message)
        self.upstream_status = upstream_status
        self.retryable = retryable


class NoTierAvailable(RungError):
    status = 503
    code = "no_tier_available"
