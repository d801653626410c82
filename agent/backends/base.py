"""The image backend Protocol: every generator (compose, HTTP APIs, diffusers) sits behind it.

A backend is created from the run configuration (`from_config`), declares its options as one pydantic
model (a `BackendOptions`, or an `HttpOptions` when it talks HTTP, parsed by `parse_options`, so
`--backend-option KEY=VALUE` strings, unknown keys and bad values are handled and reported the same way
everywhere) and what it can do (`Capabilities`), and turns a `GenerationRequest` into a `GenerationResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

from agent.models import ImageRef, Plan, Strategy
from agent.models.config import SECRET_OPTION
from agent.models.errors import BackendError, BackendOptionError, UnknownBackendError
from agent.runtime.http import HttpSettings


class Capabilities(BaseModel):
    """What a backend can do; the corrector picks strategies from this."""

    edit: bool = False
    mask: bool = False
    max_references: int = 0
    aspect_ratios: list[str] = Field(default_factory=list)
    sizes: list[str] = Field(default_factory=list)
    native_long_side: int = 1024
    deterministic: bool = False
    cost_per_image: float = 1.0


class Correction(BaseModel):
    """What a correction asks of the backend, as data: which attempt, which strategy, which critics' failures
    it addresses and the feedback lines. The prompt carries the same in words for models that read it;
    simulated and fake backends read this instead, so rewording a prompt template cannot change them."""

    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=2, description="the iteration this correction produces")
    strategy: Strategy
    addresses: list[str] = Field(default_factory=list, description="critics whose failures it addresses")
    feedback: list[str] = Field(default_factory=list)


class GenerationRequest(BaseModel):
    """Everything a backend needs for one image: the plan, a seed and optional edit inputs."""

    plan: Plan
    seed: int
    prompt: str
    references: list[ImageRef] = Field(default_factory=list)
    base_image: ImageRef | None = None
    mask: ImageRef | None = None
    instruction: str | None = None
    correction: Correction | None = Field(None, description="set when this request carries out a correction")
    history: list[dict[str, Any]] = Field(
        default_factory=list,
        description="earlier turns of a multi-turn edit: each an earlier candidate's meta[<backend>_turn] "
                    "plus its 'image' ImageRef")


@dataclass
class GenerationResult:
    """A decoded image plus what it cost; the graph stores the image, never the state."""

    image: Image.Image
    cost: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    original: bytes | None = None
    """The encoded bytes exactly as the backend delivered them (HTTP backends), or None. Kept so that a
    provider's C2PA Content Credentials survive: re-encoding `image` would drop its manifest."""


class BackendOptions(BaseModel):
    """Base of a backend's options model: one field per `--backend-option KEY=VALUE` it understands.

    Values from the command line arrive as strings; pydantic's lax mode turns "3" into 3 and "true" into
    True. An empty value means the field's default. Unknown keys are an error that lists the known ones."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None and v != ""}
        return data


class HttpOptions(BackendOptions, HttpSettings):
    """Options of a backend that talks HTTP: its own fields plus the shared client's `HttpSettings` fields
    (connect_timeout, read_timeout, max_attempts, backoff_initial, backoff_max, max_retry_after,
    total_timeout, max_concurrency). A backend redeclares a field to change its default."""

    def http_settings(self) -> HttpSettings:
        """The HttpSettings part, for `HttpClient(settings=...)`."""
        return HttpSettings(**{name: getattr(self, name) for name in HttpSettings.model_fields})


OptionsT = TypeVar("OptionsT", bound=BaseModel)

LLM_PREFIX = "llm_"
"""Options with this prefix configure the LLM planner/judge client (`agent.llm`), not the image backend."""

_NOT_A: dict[str, str] = {
    "int_parsing": "int", "int_type": "int", "int_from_float": "int", "float_parsing": "float",
    "float_type": "float", "bool_parsing": "bool", "bool_type": "bool", "string_type": "str",
    "list_type": "list",
}
_BOUNDS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def _is_secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_OPTION)


def _bounds(field: FieldInfo | None) -> str | None:
    """'in (0, 1]', 'at least 1', ... from a field's Gt/Ge/Lt/Le constraints."""
    lo = hi = None
    for m in field.metadata if field is not None else ():
        for attr, side, bracket in (("gt", "lo", "("), ("ge", "lo", "["), ("lt", "hi", ")"), ("le", "hi", "]")):
            if getattr(m, attr, None) is not None:
                if side == "lo":
                    lo = (bracket, getattr(m, attr))
                else:
                    hi = (bracket, getattr(m, attr))
    if lo and hi:
        return f"in {lo[0]}{lo[1]}, {hi[1]}{hi[0]}"
    if lo:
        return f"at least {lo[1]}" if lo[0] == "[" else f"greater than {lo[1]}"
    if hi:
        return f"at most {hi[1]}" if hi[0] == "]" else f"less than {hi[1]}"
    return None


def _problem(model: type[BaseModel], err: Any) -> str:
    """One validation error as a sentence naming the option and the value it was given."""
    key = str(err["loc"][0]) if err["loc"] else ""
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if not key:
        return msg
    value = "***" if _is_secret(key) else err.get("input")
    kind = err["type"]
    if kind in _NOT_A:
        return f"backend option {key}={value!r} is not a valid {_NOT_A[kind]}"
    if kind == "literal_error":
        return f"backend option {key}={value!r}: use {str(err['ctx']['expected']).replace(chr(39), '')}"
    if kind in _BOUNDS and (bounds := _bounds(model.model_fields.get(key))):
        return f"backend option {key} must be {bounds}, got {value}"
    return f"backend option {msg}" if msg.startswith(key) else f"backend option {key}: {msg}"


def options_error_message(model: type[BaseModel], error: ValidationError, backend: str) -> str:
    """'<backend> backend: <problems>; unknown option(s) x, y; known options: a, b, c'."""
    problems: dict[str, str] = {}
    unknown: list[str] = []
    for err in error.errors():
        if err["type"] == "extra_forbidden":
            unknown.append(str(err["loc"][0]))
        else:
            key = str(err["loc"][0]) if err["loc"] else ""
            problems.setdefault(key or f"#{len(problems)}", _problem(model, err))
    parts = list(problems.values())
    if unknown:
        parts.append(f"unknown option(s) {', '.join(sorted(unknown))}")
    known = ", ".join(sorted(model.model_fields)) or "none (this backend takes no options)"
    return f"{backend} backend: {'; '.join(parts)}; known options: {known}"


def parse_options(model: type[OptionsT], options: Mapping[str, Any] | None, backend: str, *,
                  error: Callable[[str], Exception] = BackendOptionError) -> OptionsT:
    """Validate a backend's options (`llm_` keys belong to the LLM client and are skipped); an unknown key or
    bad value raises `error` (a BackendOptionError unless the backend has its own) naming the known options."""
    values = {k: v for k, v in (options or {}).items() if not str(k).startswith(LLM_PREFIX)}
    try:
        return model.model_validate(values)
    except ValidationError as e:
        raise error(options_error_message(model, e, backend)) from None


@runtime_checkable
class ImageBackend(Protocol):
    """An image generator. `from_config` builds it from a `PixloopConfig` (backend options, base_url, model)."""

    name: str
    capabilities: Capabilities

    @classmethod
    def from_config(cls, config: Any) -> ImageBackend:
        """The backend for a run configuration; raises UnknownBackendError/BackendOptionError for bad settings."""
        ...

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """Produce one image for the request. `store` opens ImageRefs (references, base image)."""
        ...


__all__ = ["LLM_PREFIX", "BackendError", "BackendOptionError", "BackendOptions", "Capabilities", "Correction",
           "GenerationRequest", "GenerationResult", "HttpOptions", "ImageBackend", "UnknownBackendError",
           "options_error_message", "parse_options"]
