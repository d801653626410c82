"""The Critic Protocol: check(image, plan, context) -> Verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from agent.state import ImageRef, Plan, Verdict


@dataclass
class CheckContext:
    """What a critic may need beyond the image: the store (to open references) and the candidate id."""

    candidate_id: str = "image"
    store: Any = None
    references: list[ImageRef] = field(default_factory=list)
    original: ImageRef | None = None
    mask: ImageRef | None = None
    expected_mode: str | None = None
    expected_format: str | None = None


@runtime_checkable
class Critic(Protocol):
    name: str

    def applies(self, plan: Plan) -> bool:
        """Whether this critic has anything to check for the plan (OCR needs required text)."""
        ...

    def check(self, image: Image.Image, plan: Plan, context: CheckContext) -> Verdict:
        """Score the image in [0,1] against the plan's threshold, with evidence and one line of feedback."""
        ...


class UnknownCriticError(ValueError):
    """A critic name that is not registered."""
