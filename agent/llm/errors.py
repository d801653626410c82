"""Chat-model errors: the LLM branch of the error tree and the HTTP failure kinds as LLM errors.

A chat model failing is never an image-backend failure: these are `LLMError`s (and their HTTP kind),
not `BackendError`s, so a failing planner or judge is reported as what it is.
"""

from __future__ import annotations

from agent.models import errors as kinds
from agent.models.errors import HttpFailure, LLMError, LLMOutputError, LLMRefusal, LLMTruncated


class RateLimited(kinds.RateLimited, LLMError):
    """429 that survived every retry."""


class ServerError(kinds.ServerError, LLMError):
    """5xx that survived every retry."""


class QuotaExhausted(kinds.QuotaExhausted, LLMError):
    """A quota that retrying cannot fix."""


class AuthError(kinds.AuthError, LLMError):
    """The API key is missing, invalid or lacks access."""


class BadRequest(kinds.BadRequest, LLMError):
    """The server rejected the request; retrying the same request cannot help."""


class LLMBlocked(kinds.SafetyBlocked, LLMError):
    """The provider's safety system blocked the prompt or the answer (content_filter, blockReason)."""


class NoAnswer(kinds.NoImageReturned, LLMError):
    """A successful answer with nothing usable in it."""


class MalformedResponse(kinds.MalformedResponse, LLMError):
    """The server answered with something that is not the protocol."""


class LLMTimeout(kinds.ServiceTimeout, LLMError):
    """The server did not answer in time, on every attempt."""


VARIANTS: dict[type[HttpFailure], type[HttpFailure]] = {
    kinds.RateLimited: RateLimited, kinds.ServerError: ServerError, kinds.QuotaExhausted: QuotaExhausted,
    kinds.AuthError: AuthError, kinds.BadRequest: BadRequest, kinds.SafetyBlocked: LLMBlocked,
    kinds.NoImageReturned: NoAnswer, kinds.MalformedResponse: MalformedResponse, kinds.ServiceTimeout: LLMTimeout,
}
"""Kind -> LLM variant, for `HttpClient(family=VARIANTS)`."""

__all__ = ["VARIANTS", "AuthError", "BadRequest", "LLMBlocked", "LLMError", "LLMOutputError", "LLMRefusal",
           "LLMTimeout", "LLMTruncated", "MalformedResponse", "NoAnswer", "QuotaExhausted", "RateLimited",
           "ServerError"]
