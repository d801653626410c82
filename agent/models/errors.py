"""One exception tree for everything pixloop raises on purpose. Each class knows its CLI exit code.

    PixloopError                     exit 1  (an unexpected failure)
    ├── InputError (ValueError)      exit 2  bad input: the message names the field or file
    │   ├── BriefError                       the request (prompt, text, budget, references)
    │   ├── ImageInputError                  an image that cannot be used (missing, corrupt, too large)
    │   ├── RunFolderError                   a run folder another process writes, or that holds another run
    │   ├── ArtifactError                    a stored image or document that is missing, misplaced or tampered
    │   ├── ConfigError                      a backend option or configuration value
    │   └── UnknownNameError                 a name no registry holds
    │       ├── UnknownCriticError
    │       ├── UnknownBackendError
    │       │   └── BackendOptionError       (also a ConfigError) an unknown or invalid backend option
    │       └── UnknownPlannerError
    ├── PlanningError                exit 4  the brief could not be planned (stop reason planning_error)
    ├── ServiceError                 exit 4  a generator or model service failed
    │   ├── BackendError                     an image backend        (the loop's stop reason backend_error)
    │   ├── LLMError                         a chat model: planner, judge, prompt rewriter
    │   │   ├── LLMRefusal, LLMTruncated, LLMOutputError
    │   └── HttpFailure                      what went wrong over HTTP, for either service:
    │       ├── RateLimited, ServerError, QuotaExhausted, AuthError, BadRequest,
    │       ├── SafetyBlocked, NoImageReturned, MalformedResponse, ServiceTimeout
    └── CriticError                  exit 1  a critic's engine failed
        └── CriticUnavailable                its engine or endpoint is not available here

The HTTP kinds are shared by backends and chat models: `except RateLimited` catches a rate limit from
either, while a backend raises the *backend variant* of the kind (an instance of both `RateLimited`
and `BackendError`) and a chat client the *LLM variant* (`RateLimited` and `LLMError`), so
`except BackendError` still catches every image-backend failure and an LLM failure never counts as
one. `agent.backends.errors` and `agent.llm.errors` define the variants; the shared HTTP client raises
the variant of the family it serves (`as_service`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class PixloopError(Exception):
    """Root of every error pixloop raises on purpose; `exit_code` is what the CLI exits with."""

    exit_code: ClassVar[int] = 1


class InputError(PixloopError, ValueError):
    """The input is invalid; the message names the field, option or file and the problem."""

    exit_code = 2


class BriefError(InputError):
    """The request is invalid (prompt, required text, thresholds, budget, references)."""


class ImageInputError(InputError):
    """An input image cannot be used; the message names the file and the reason."""


class ArtifactError(InputError):
    """A stored artifact a run refers to is missing, outside the store's layout, or does not match its hash."""


class RunFolderError(InputError):
    """A run folder cannot be used as asked: another process is writing it, or it holds another run."""


class ConfigError(InputError):
    """A configuration value (a backend option, a workflow file, an engine setting) is invalid."""


class UnknownNameError(InputError):
    """A name that no registry holds; the message lists the names it knows."""


class UnknownCriticError(UnknownNameError):
    """A critic name that is not registered."""


class UnknownBackendError(UnknownNameError):
    """A backend name that is not registered, or a backend that cannot be set up here."""


class BackendOptionError(UnknownBackendError, ConfigError):
    """A backend option is unknown or invalid, so the backend cannot be set up; the message lists the options."""


class UnknownPlannerError(UnknownNameError):
    """A planner name that is not registered."""


class PlanningError(PixloopError):
    """The brief cannot be planned (e.g. the LLM planner failed); the message says why. A planner that names
    itself in the message sets `planner`, so the loop does not name it twice."""

    exit_code = 4

    def __init__(self, message: str, planner: str | None = None):
        super().__init__(message)
        self.planner = planner


class ServiceError(PixloopError):
    """A generator or model service failed to deliver; the message is safe to show."""

    exit_code = 4


class BackendError(ServiceError):
    """An image backend failed to deliver an image."""


class LLMError(ServiceError):
    """A chat model failed to give a usable answer; the message says how."""


class LLMRefusal(LLMError):
    """The model refused (OpenAI `message.refusal`); `refusal` holds its words."""

    def __init__(self, message: str, refusal: str = ""):
        super().__init__(message)
        self.refusal = refusal


class LLMTruncated(LLMError):
    """The answer hit the token limit (finish_reason 'length' / MAX_TOKENS); `text` is the partial answer."""

    def __init__(self, message: str, text: str = ""):
        super().__init__(message)
        self.text = text


class LLMOutputError(LLMError):
    """The reply is empty, not JSON, or does not validate (after the one repair retry)."""

    def __init__(self, message: str, errors: list[str] | None = None, text: str = ""):
        super().__init__(message)
        self.errors = errors or []
        self.text = text


class HttpFailure(ServiceError):
    """What went wrong talking to a service over HTTP (a kind; raised as a backend or LLM variant)."""


class RateLimited(HttpFailure):
    """429 that survived every retry."""


class ServerError(HttpFailure):
    """5xx that survived every retry."""


class QuotaExhausted(HttpFailure):
    """A quota that retrying cannot fix (insufficient_quota, a per-day limit)."""


class AuthError(HttpFailure):
    """The API key is missing, invalid or lacks access."""


class BadRequest(HttpFailure):
    """The server rejected the request (400/404/422); retrying the same request cannot help."""


class SafetyBlocked(HttpFailure):
    """The provider's safety system refused the prompt, the image or the answer."""

    def __init__(self, message: str, reason: str = "safety"):
        super().__init__(message)
        self.reason = reason


class NoImageReturned(HttpFailure):
    """A successful answer without an image (text-only reply, NO_IMAGE)."""

    def __init__(self, message: str, reason: str = "no_image"):
        super().__init__(message)
        self.reason = reason


class MalformedResponse(HttpFailure):
    """The server answered with something that is not the protocol (bad JSON, truncated image)."""


class ServiceTimeout(HttpFailure):
    """The server did not answer in time, on every attempt."""


class CriticError(PixloopError):
    """A critic's engine failed (a critic that raises becomes a failing verdict inside a run)."""


class CriticUnavailable(CriticError):
    """A critic's engine, model file or endpoint is not available here; the message says how to get it."""


HTTP_KINDS: tuple[type[HttpFailure], ...] = (RateLimited, ServerError, QuotaExhausted, AuthError, BadRequest,
                                             SafetyBlocked, NoImageReturned, MalformedResponse, ServiceTimeout)

ErrorFamily = Mapping[type[HttpFailure], type[HttpFailure]]
"""A service family's variants of the HTTP kinds (`agent.backends.errors.VARIANTS`, `agent.llm.errors.VARIANTS`)."""


def as_service(error: HttpFailure, family: ErrorFamily) -> HttpFailure:
    """The same failure as an instance of the family's variant of its kind (message and fields kept)."""
    kind = next((k for k in type(error).__mro__ if k in family), None)
    variant = family.get(kind) if kind is not None else None
    if variant is None or isinstance(error, variant):
        return error
    out = variant.__new__(variant)
    out.__dict__.update(error.__dict__)
    out.args = error.args
    return out


def exit_code_for(error: BaseException) -> int:
    """The CLI exit code for an exception: its class's code, 1 for anything unexpected."""
    return error.exit_code if isinstance(error, PixloopError) else 1


__all__ = [
    "ArtifactError", "AuthError", "BackendError", "BackendOptionError", "BadRequest", "BriefError", "ConfigError",
    "CriticError", "CriticUnavailable", "ErrorFamily", "HTTP_KINDS", "HttpFailure", "ImageInputError",
    "InputError", "LLMError", "LLMOutputError", "LLMRefusal", "LLMTruncated", "MalformedResponse",
    "NoImageReturned", "PixloopError", "PlanningError", "QuotaExhausted", "RateLimited", "RunFolderError",
    "SafetyBlocked", "ServerError", "ServiceError", "ServiceTimeout", "UnknownBackendError", "UnknownCriticError",
    "UnknownNameError", "UnknownPlannerError", "as_service", "exit_code_for",
]
