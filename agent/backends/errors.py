"""The HTTP failure kinds as image-backend errors: each is both its kind and a `BackendError`.

Backends raise these; `except RateLimited` (the kind, from `agent.models.errors`) and `except BackendError`
both catch them. The shared HTTP client raises them for backends through `VARIANTS`.
"""

from __future__ import annotations

from agent.models import errors as kinds
from agent.models.errors import BackendError, HttpFailure


class RateLimited(kinds.RateLimited, BackendError):
    """429 that survived every retry."""


class ServerError(kinds.ServerError, BackendError):
    """5xx that survived every retry."""


class QuotaExhausted(kinds.QuotaExhausted, BackendError):
    """A quota that retrying cannot fix."""


class AuthError(kinds.AuthError, BackendError):
    """The API key is missing, invalid or lacks access."""


class BadRequest(kinds.BadRequest, BackendError):
    """The server rejected the request; retrying the same request cannot help."""


class SafetyBlocked(kinds.SafetyBlocked, BackendError):
    """The provider's safety system refused the prompt or the image."""


class NoImageReturned(kinds.NoImageReturned, BackendError):
    """A successful answer without an image (text-only reply, NO_IMAGE)."""


class MalformedResponse(kinds.MalformedResponse, BackendError):
    """The server answered with something that is not the protocol (bad JSON, truncated image)."""


class BackendTimeout(kinds.ServiceTimeout, BackendError):
    """The server did not answer in time, on every attempt."""


VARIANTS: dict[type[HttpFailure], type[HttpFailure]] = {
    kinds.RateLimited: RateLimited, kinds.ServerError: ServerError, kinds.QuotaExhausted: QuotaExhausted,
    kinds.AuthError: AuthError, kinds.BadRequest: BadRequest, kinds.SafetyBlocked: SafetyBlocked,
    kinds.NoImageReturned: NoImageReturned, kinds.MalformedResponse: MalformedResponse,
    kinds.ServiceTimeout: BackendTimeout,
}
"""Kind -> backend variant, for `HttpClient(family=VARIANTS)`."""

__all__ = ["VARIANTS", "AuthError", "BackendError", "BackendTimeout", "BadRequest", "MalformedResponse",
           "NoImageReturned", "QuotaExhausted", "RateLimited", "SafetyBlocked", "ServerError"]
