"""The image backend Protocol: every generator (compose, HTTP APIs, diffusers) sits behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image
from pydantic import BaseModel, Field

from agent.state import ImageRef, Plan


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


class GenerationRequest(BaseModel):
    """Everything a backend needs for one image: the plan, a seed and optional edit inputs."""

    plan: Plan
    seed: int
    prompt: str
    references: list[ImageRef] = Field(default_factory=list)
    base_image: ImageRef | None = None
    mask: ImageRef | None = None
    instruction: str | None = None
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


class BackendError(RuntimeError):
    """A backend failed to deliver an image (exit code 4); the message is safe to show."""


class UnknownBackendError(ValueError):
    """The configuration names a backend that is not registered."""


@runtime_checkable
class ImageBackend(Protocol):
    name: str
    capabilities: Capabilities

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """Produce one image for the request. `store` opens ImageRefs (references, base image)."""
        ...
