"""The image backend Protocol: every generator (compose, HTTP APIs, diffusers) sits behind it.

A backend is created from the run configuration (`from_config`), declares its options as one pydantic
model (`BackendOptions`, parsed by `parse_options`, so `--backend-option KEY=VALUE` strings, unknown keys
and bad values are handled the same way everywhere) and what it can do (`Capabilities`), and turns a
`GenerationRequest` into a `GenerationResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.models import ImageRef, Plan, Strategy
from agent.models.errors import BackendError, BackendOptionError, UnknownBackendError


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


class BackendOptions(BaseModel):
    """Base of a backend's options model: one field per `--backend-option KEY=VALUE` it understands.

    Values from the command line arrive as strings; pydantic's lax mode turns "3" into 3 and "true" into
    True. Unknown keys are an error that lists the known ones."""

    model_config = ConfigDict(extra="forbid")


O = TypeVar("O", bound=BaseModel)


def parse_options(model: type[O], options: Mapping[str, Any] | None, backend: str) -> O:
    """Validate a backend's options; an unknown key or bad value is a BackendOptionError naming the known options."""
    try:
        return model.model_validate(dict(options or {}))
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'options'}: "
            + ("unknown option" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, "))
            for err in e.errors())
        known = ", ".join(sorted(model.model_fields))
        raise BackendOptionError(f"{backend} backend options: {problems} (known options: {known})") from None


@runtime_checkable
class ImageBackend(Protocol):
    """An image generator. `from_config` builds it from a `PixloopConfig` (backend options, base_url, model)."""

    name: str
    capabilities: Capabilities

    @classmethod
    def from_config(cls, config: Any) -> "ImageBackend":
        """The backend for a run configuration; raises UnknownBackendError/BackendOptionError for bad settings."""
        ...

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """Produce one image for the request. `store` opens ImageRefs (references, base image)."""
        ...


__all__ = ["BackendError", "BackendOptionError", "BackendOptions", "Capabilities", "Correction", "GenerationRequest",
           "GenerationResult", "ImageBackend", "UnknownBackendError", "parse_options"]
