"""Domain models and the graph state.

A Brief (what the user asked) becomes a Plan, the Plan becomes Candidates, critics
give each Candidate Verdicts and the corrector turns failing Verdicts into an Action.
Images never live in these models: an ImageRef points into the run's artifact store.
"""

from __future__ import annotations

import operator
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

from langgraph.channels import DeltaChannel

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import NotRequired, TypedDict

AspectRatio = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
SizeTier = Literal["1K", "2K", "4K"]
ASPECT_RATIOS: tuple[str, ...] = AspectRatio.__args__  # type: ignore[attr-defined]
SIZE_TIERS: tuple[str, ...] = SizeTier.__args__  # type: ignore[attr-defined]
LONG_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}

Status = Literal["running", "passed", "below_threshold", "failed"]
StopReason = Literal[
    "passed", "max_iterations", "max_seconds", "max_cost", "no_improvement", "backend_error"
]
Strategy = Literal[
    "restyle_text", "reprompt", "new_seed", "best_of_n", "typeset_text", "reanchor_identity",
    "edit_region", "restart_from_best", "upscale",
]
STRATEGIES: tuple[str, ...] = Strategy.__args__  # type: ignore[attr-defined]


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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Box(_Model):
    """A rectangle in canvas-relative coordinates (0..1), so a plan is size independent."""

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    w: float = Field(gt=0, le=1)
    h: float = Field(gt=0, le=1)

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        return (round(self.x * width), round(self.y * height),
                round((self.x + self.w) * width), round((self.y + self.h) * height))

    def describe(self) -> str:
        """Human words for where the box is: 'top centre', 'bottom left'."""
        cx, cy = self.x + self.w / 2, self.y + self.h / 2
        v = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
        h = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
        return "centre" if (v, h) == ("middle", "centre") else f"{v} {h}"


class Budget(_Model):
    """Limits that stop the loop; the best candidate is returned whichever is hit first."""

    max_iterations: int = Field(4, ge=1, le=100, description="most candidates to generate")
    max_seconds: float = Field(600.0, gt=0, description="most active seconds for the whole run")
    max_cost: float = Field(100.0, ge=0, description="most cost units (backend-declared) to spend")
    patience: int = Field(2, ge=1, description="stop after this many rounds without improvement")


class Brief(_Model):
    """What the user asked for. Validation errors name the field."""

    prompt: str = Field(description="what to make; quoted strings become required text")
    references: list[Path] = Field(default_factory=list, description="reference images (people, products)")
    required_text: list[str] = Field(default_factory=list, description="text that must appear verbatim")
    aspect_ratio: AspectRatio | None = Field(None, description="overrides ratio words in the prompt")
    size: SizeTier | None = Field(None, description="long side: 1K=1024, 2K=2048, 4K=4096 px")
    thresholds: dict[str, float] = Field(default_factory=dict, description="per-critic pass thresholds in [0,1]")
    budget: Budget = Field(default_factory=Budget)
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @field_validator("prompt")
    @classmethod
    def _prompt_not_empty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("prompt is empty: describe the image you want")
        return v.strip()

    @field_validator("required_text")
    @classmethod
    def _text_not_empty(cls, v: list[str]) -> list[str]:
        for i, t in enumerate(v):
            if not t.strip():
                raise ValueError(f"required_text[{i}] is empty")
        return [t.strip() for t in v]

    @field_validator("thresholds")
    @classmethod
    def _thresholds_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        for name, t in v.items():
            if not 0.0 <= float(t) <= 1.0:
                raise ValueError(f"threshold for {name!r} is {t}; thresholds are scores in [0, 1]")
        return v

    @field_validator("references")
    @classmethod
    def _references_readable(cls, v: list[Path]) -> list[Path]:
        from agent.images import validate_image_file

        for i, p in enumerate(v):
            try:
                validate_image_file(p)
            except ValueError as e:
                raise ValueError(f"references[{i}]: {e}") from None
        return [Path(p) for p in v]


class ImageRef(_Model):
    """A content-addressed image in the run's artifact store; path is relative to the store root."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    path: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    mime: str = "image/png"
    bytes: int = Field(0, ge=0)


class TextElement(_Model):
    """One piece of required text, where it goes, and how strictly it must match."""

    id: str
    content: str = Field(min_length=1)
    role: Literal["headline", "subheading", "body", "cta"] = "headline"
    region: Box
    case_sensitive: bool = False
    exact: bool = False


class Subject(_Model):
    """A reference image (person or product) the layout must place."""

    id: str
    kind: Literal["person", "product"] = "product"
    reference: ImageRef
    region: Box


class Style(_Model):
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


class CheckSpec(_Model):
    """One critic the plan enables, with the threshold it must reach."""

    threshold: float = Field(ge=0, le=1)
    enabled: bool = True
    source: str = "default"


class Plan(_Model):
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
    notes: list[str] = Field(default_factory=list)


class Candidate(_Model):
    """One generated image and how it was made."""

    id: str
    iteration: int = Field(ge=1)
    image: ImageRef
    backend: str
    seed: int
    plan_revision: int
    strategy: str | None = None
    parent_id: str | None = Field(None, description="the candidate an edit, typeset or upscale started from")
    plan_ref: str | None = Field(None, description="the plan revision it was made from (artifact path)")
    seconds: float = 0.0
    cost: float = 0.0
    meta: dict[str, Any] = Field(default_factory=dict)


class Verdict(_Model):
    """A critic's judgement of one candidate: a score in [0,1] against a threshold, with evidence."""

    critic: str
    candidate_id: str
    score: float = Field(ge=0, le=1)
    passed: bool
    threshold: float = Field(ge=0, le=1)
    evidence: dict[str, Any] = Field(default_factory=dict)
    feedback: str = ""
    seconds: float = 0.0
    error: str | None = None

    @model_validator(mode="after")
    def _pass_matches_score(self) -> "Verdict":
        if self.error is not None and self.passed:
            raise ValueError("a verdict with an error cannot pass")
        return self


class Action(_Model):
    """What the corrector decided to do next, and why."""

    iteration: int = Field(ge=1, description="the iteration this action produces")
    strategy: Strategy
    reason: str
    feedback: list[str] = Field(default_factory=list)
    style: dict[str, Any] = Field(default_factory=dict, description="style fields to change")
    prompt_addendum: str = ""
    seed: int | None = None
    base_candidate_id: str | None = Field(None, description="edit/typeset/upscale this candidate instead of generating")
    region: list[int] | None = Field(None, description="pixel boxes a targeted edit may change: [x0, y0, x1, y1] * k")
    elements: list[str] = Field(default_factory=list, description="text element ids to typeset")
    drafts: int = Field(1, ge=1, le=8, description="candidates to draw this iteration (best-of-N)")
    scores_before: dict[str, float] = Field(default_factory=dict, description="critic scores that triggered it")


def _append(current: list, batches: "Sequence[list]") -> list:
    """Append-only reducer for delta channels: checkpoints store each new item once, not the whole list."""
    out = list(current or [])
    for batch in batches:
        out.extend(batch if isinstance(batch, list) else [batch])
    return out


def _merge_timings(a: dict[str, float] | None, b: dict[str, float] | None) -> dict[str, float]:
    out = dict(a or {})
    for k, v in (b or {}).items():
        out[k] = out.get(k, 0.0) + v
    return out


class InputState(TypedDict):
    """What a run starts from (LangGraph Studio shows this as the input form)."""

    brief: Brief
    run_dir: NotRequired[str]


class OutputState(TypedDict, total=False):
    status: Status
    stop_reason: StopReason | None
    final: Candidate | None
    candidates: list[Candidate]
    verdicts: list[Verdict]
    actions: list[Action]
    run_dir: str
    error: str | None


class LoopState(TypedDict, total=False):
    """The graph state. Lists grow by appending; images appear only as ImageRefs."""

    brief: Brief
    run_dir: str
    plan: Plan
    plan_ref: str
    references: list[ImageRef]
    iteration: int
    candidates: Annotated[list[Candidate], DeltaChannel(_append)]
    verdicts: Annotated[list[Verdict], DeltaChannel(_append)]
    actions: Annotated[list[Action], DeltaChannel(_append)]
    best_id: str | None
    current_id: str | None
    stale_rounds: int
    elapsed_s: Annotated[float, operator.add]
    cost_used: Annotated[float, operator.add]
    timings: Annotated[dict[str, float], _merge_timings]
    status: Status
    stop_reason: StopReason | None
    final: Candidate | None
    error: str | None


class CriticTask(TypedDict):
    """Payload of one parallel critic branch (sent with Send); the plan travels by reference to stay small."""

    critic: str
    candidate_id: str
    image: ImageRef
    plan_ref: str
    run_dir: str


MSGPACK_ALLOWLIST = [
    ("agent.state", name)
    for name in ("Box", "Budget", "Brief", "ImageRef", "TextElement", "Subject", "Style",
                 "CheckSpec", "Plan", "Candidate", "Verdict", "Action")
] + [("pathlib", "PosixPath"), ("pathlib", "Path"), ("pathlib", "WindowsPath")]
