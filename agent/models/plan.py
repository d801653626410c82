"""A designer's plan of one image: canvas, text, subjects, style, the checks to run, and the boxes it uses."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agent.models.base import ImageRef, Model
from agent.models.brief import AspectRatio, SizeTier
from agent.models.edit import EditSpec
from agent.models.requirements import Requirement


class Box(Model):
    """A rectangle in canvas-relative coordinates (0..1), so a plan is size independent."""

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    w: float = Field(gt=0, le=1)
    h: float = Field(gt=0, le=1)

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        return (round(self.x * width), round(self.y * height),
                round((self.x + self.w) * width), round((self.y + self.h) * height))

    def pixel_box(self, width: int, height: int) -> PixelBox:
        return PixelBox.of(self.to_pixels(width, height))

    def describe(self) -> str:
        """Human words for where the box is: 'top centre', 'bottom left'."""
        cx, cy = self.x + self.w / 2, self.y + self.h / 2
        v = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
        h = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
        return "centre" if (v, h) == ("middle", "centre") else f"{v} {h}"


class PixelBox(Model):
    """A rectangle in pixels of one image: left, top (inclusive) to right, bottom (exclusive).

    Accepts `[x0, y0, x1, y1]` too, the form critics' evidence and the JSON reports use."""

    x0: int
    y0: int
    x1: int
    y1: int

    @model_validator(mode="before")
    @classmethod
    def _from_sequence(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 4:
            x0, y0, x1, y1 = (int(v) for v in value)
            return {"x0": x0, "y0": y0, "x1": x1, "y1": y1}
        return value

    @classmethod
    def of(cls, xyxy: Sequence[float]) -> PixelBox:
        x0, y0, x1, y1 = (int(v) for v in xyxy)
        return cls(x0=x0, y0=y0, x1=x1, y1=y1)

    @classmethod
    def union(cls, boxes: Iterable[PixelBox]) -> PixelBox:
        items = list(boxes)
        return cls(x0=min(b.x0 for b in items), y0=min(b.y0 for b in items),
                   x1=max(b.x1 for b in items), y1=max(b.y1 for b in items))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)

    def clip(self, width: int, height: int) -> PixelBox:
        return PixelBox(x0=max(0, self.x0), y0=max(0, self.y0), x1=min(width, self.x1), y1=min(height, self.y1))

    def pad(self, share: float, width: int, height: int) -> PixelBox:
        """Grown on every side by `share` of its longer side, within the image."""
        p = int(share * max(self.x1 - self.x0, self.y1 - self.y0))
        return PixelBox(x0=self.x0 - p, y0=self.y0 - p, x1=self.x1 + p, y1=self.y1 + p).clip(width, height)


class TextElement(Model):
    """One piece of required text, where it goes, and how strictly it must match."""

    id: str
    content: str = Field(min_length=1)
    role: Literal["headline", "subheading", "body", "cta"] = "headline"
    region: Box
    case_sensitive: bool = False
    exact: bool = False


class Subject(Model):
    """A reference image (person or product) the layout must place."""

    id: str
    kind: Literal["person", "product"] = "product"
    reference: ImageRef
    region: Box
    name: str | None = Field(None, description="how reports name the reference: its file name, or "
                                                 "'person 1 of the source' for an edit's own people")


class Style(Model):
    """Look of the composition; the corrector changes these to fix legibility."""

    background: Literal["solid", "gradient", "texture", "image"] = "gradient"
    palette: list[str] = Field(default_factory=lambda: ["#1d2b4f", "#3f6fb5", "#f2c14e"])
    font: str = "lato-bold"
    text_color: str = "#ffffff"
    text_scale: float = Field(0.7, gt=0, le=1.0, description="share of the region height the text may fill")
    text_plate: bool = False
    text_outline: bool = False
    texture_strength: float = Field(0.5, ge=0, le=1)
    background_image: ImageRef | None = None

    @field_validator("palette")
    @classmethod
    def _hex_colours(cls, v: list[str]) -> list[str]:
        for c in v:
            if not re.fullmatch(r"#[0-9a-fA-F]{6}", c):
                raise ValueError(f"palette colour {c!r} is not #rrggbb")
        return v


class CheckSpec(Model):
    """One critic the plan enables, with the threshold it must reach."""

    threshold: float = Field(ge=0, le=1)
    enabled: bool = True
    source: str = "default"


class Plan(Model):
    """A designer's plan of the image: canvas, text, subjects, style and the checks to run."""

    revision: int = 0
    prompt: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    aspect_ratio: AspectRatio
    size: SizeTier
    text: list[TextElement] = Field(default_factory=list)
    subjects: list[Subject] = Field(default_factory=list)
    style: Style = Field(default_factory=Style)
    negative: list[str] = Field(default_factory=list)
    checks: dict[str, CheckSpec] = Field(default_factory=dict)
    source: ImageRef | None = Field(None, description="image being edited (edit mode)")
    mask: ImageRef | None = Field(None, description="edit mask: white = may change")
    edit: EditSpec | None = Field(None, description="edit mode: what the instruction changes and what it keeps")
    sketch: ImageRef | None = Field(None, description="the sketch whose layout the image follows")
    panels: list[Box] = Field(default_factory=list,
                              description="the sketch's boxes without text: image or colour blocks of the mockup")
    requirements: list[Requirement] = Field(default_factory=list,
                                            description="what the brief asks for and which critic verifies each")
    deliver_at_planned_size: bool = Field(
        False, description="the backend delivers fewer pixels than planned: every later image is resampled to "
                           "the planned size (set once an upscale was needed)")
    notes: list[str] = Field(default_factory=list)
