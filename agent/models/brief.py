"""What the user asks for: the Brief, its budget, and the canvas vocabulary (aspect ratios, size tiers)."""

from __future__ import annotations

import math
import os
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from agent.models.base import Model
from agent.models.edit import EditKeep

AspectRatio = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
SizeTier = Literal["1K", "2K", "4K"]
ASPECT_RATIOS: tuple[str, ...] = AspectRatio.__args__  # type: ignore[attr-defined]
SIZE_TIERS: tuple[str, ...] = SizeTier.__args__  # type: ignore[attr-defined]
LONG_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}


def canvas_size(aspect_ratio: str, size: str) -> tuple[int, int]:
    """Pixel size for an aspect ratio and size tier: the tier is the long side, the short side a multiple of 8."""
    if aspect_ratio not in ASPECT_RATIOS:
        raise ValueError(f"unknown aspect ratio {aspect_ratio!r}; choose one of {', '.join(ASPECT_RATIOS)}")
    if size not in LONG_SIDE:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZE_TIERS)}")
    a, b = (int(v) for v in aspect_ratio.split(":"))
    long_side = LONG_SIDE[size]
    short = max(8, int(round(long_side * min(a, b) / max(a, b) / 8)) * 8)
    return (long_side, short) if a >= b else (short, long_side)


def nearest_aspect_ratio(width: float, height: float) -> str:
    """The named aspect ratio closest to width/height (log distance): how an image of any size is described."""
    r = math.log(width / height)
    return min(ASPECT_RATIOS, key=lambda a: abs(math.log(int(a.split(":")[0]) / int(a.split(":")[1])) - r))


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


ReferenceSource = Annotated[str, BeforeValidator(_fspath)]
"""A reference image: a file path (a `Path` is accepted), or the image itself as a
`data:image/png;base64,...` URL, which is how a remote client (LangGraph server) sends one."""

DATA_URL_PREFIX = "data:"


def is_data_url(source: str) -> bool:
    return source.startswith(DATA_URL_PREFIX)


def _valid_unicode(text: str, field: str) -> None:
    """Text pixloop will render and log must be valid Unicode: a lone surrogate (what invalid UTF-8 bytes on a
    command line turn into) is refused, naming where it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{field} has a character that is not valid Unicode at position {e.start} "
                         f"({text[e.start]!r}; invalid UTF-8 input?)") from None


class Budget(Model):
    """Limits that stop the loop; the best candidate is returned whichever is hit first.

    Time and cost may be unlimited: `None`, which is also what an infinite number (`inf`, as `--max-cost inf`
    gives) becomes, so every JSON a run writes stays strict (no `Infinity`). NaN is refused."""

    max_iterations: int = Field(4, ge=1, le=100, description="most candidates to generate")
    max_seconds: float | None = Field(600.0, gt=0, description="most active seconds for the whole run (None: no limit)")
    max_cost: float | None = Field(100.0, ge=0, description="most cost units (backend-declared) to spend (None: no limit)")
    patience: int = Field(2, ge=1, description="stop after this many rounds without improvement")

    @field_validator("max_seconds", "max_cost", mode="before")
    @classmethod
    def _infinite_is_unlimited(cls, v: Any, info: ValidationInfo) -> Any:
        try:
            number = float(v) if v is not None and not isinstance(v, bool) else None
        except (TypeError, ValueError):
            return v  # pydantic names the type error
        if number is not None and math.isnan(number):
            raise ValueError(f"{info.field_name} is NaN; give a number, or inf for no limit")
        return None if number is not None and math.isinf(number) and number > 0 else v


class Brief(Model):
    """What the user asked for. Validation errors name the field.

    Reference files are checked (exist, decode) when a run starts (`agent.runtime.images.check_references`),
    not here: a model does no file I/O."""

    prompt: str = Field(description="what to make; quoted strings become required text")
    references: list[ReferenceSource] = Field(default_factory=list,
                                              description="reference images (people, products): file paths, or the "
                                                          "images themselves as data:image/...;base64, URLs")
    required_text: list[str] = Field(default_factory=list, description="text that must appear verbatim")
    aspect_ratio: AspectRatio | None = Field(None, description="overrides ratio words in the prompt")
    size: SizeTier | None = Field(None, description="long side: 1K=1024, 2K=2048, 4K=4096 px")
    thresholds: dict[str, float] = Field(default_factory=dict, description="per-critic pass thresholds in [0,1]")
    critics: list[str] = Field(default_factory=list,
                               description="extra critics to run besides those the plan enables (e.g. plugins)")
    budget: Budget = Field(default_factory=Budget)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    source: ReferenceSource | None = Field(None, description="edit mode: the image to edit (a path or data URL); "
                                                             "the prompt is the instruction")
    mask: ReferenceSource | None = Field(None, description="edit mask, the source's size: white = may change")
    region: tuple[int, int, int, int] | None = Field(None, description="edit only this box of the source: x, y, "
                                                                        "width, height in pixels")
    keep: EditKeep | None = Field(None, description="edit everything but this (subject, person, product, text)")
    sketch: ReferenceSource | None = Field(None, description="a sketch or wireframe whose layout the image follows "
                                                             "(a path or data URL)")
    style: str = Field("", description="style words the whole image follows (a document's shared palette and look); "
                                        "they take precedence over style words in the prompt")
    draft: ReferenceSource | None = Field(None, description="an image already made for this brief (e.g. streamed by "
                                                            "a model's interleaved answer): checked as the first "
                                                            "candidate instead of generating one; corrections "
                                                            "generate as usual")

    @model_validator(mode="after")
    def _edit_inputs_agree(self) -> Brief:
        given = [n for n in ("mask", "region", "keep") if getattr(self, n) is not None]
        if given and self.source is None:
            verb = "applies" if len(given) == 1 else "apply"
            raise ValueError(f"{' and '.join(given)} {verb} only to an edit: give the source image to edit")
        if len(given) > 1:
            raise ValueError(f"give at most one of mask, region and keep (got {', '.join(given)}): each says where "
                             "the edit may change the image")
        if self.region is not None:
            x, y, w, h = self.region
            if x < 0 or y < 0 or w <= 0 or h <= 0:
                raise ValueError(f"region {x},{y},{w},{h}: x and y must be >= 0, width and height > 0")
        return self

    @property
    def styled_prompt(self) -> str:
        """The prompt with the style words, as a model backend and a planner read it."""
        return f"{self.prompt}. Style: {self.style}" if self.style.strip() else self.prompt

    @property
    def is_edit(self) -> bool:
        return self.source is not None

    @field_validator("prompt")
    @classmethod
    def _prompt_not_empty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("prompt is empty: describe the image you want")
        _valid_unicode(v, "prompt")
        return v.strip()

    @field_validator("required_text")
    @classmethod
    def _text_not_empty(cls, v: list[str]) -> list[str]:
        for i, t in enumerate(v):
            if not t.strip():
                raise ValueError(f"required_text[{i}] is empty")
            _valid_unicode(t, f"required_text[{i}]")
        return [t.strip() for t in v]

    @field_validator("thresholds")
    @classmethod
    def _thresholds_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        for name, t in v.items():
            if not 0.0 <= float(t) <= 1.0:
                raise ValueError(f"threshold for {name!r} is {t}; thresholds are scores in [0, 1]")
        return v
