"""LLMPlanner: a chat model designs the layout; the brief and the measured checks stay in charge.

The model (prompts/planner_system.txt + planner_user.txt, reference images attached) answers with
a compact JSON design (`PlanDesign`: canvas, text elements with roles and normalised boxes,
subjects, style, negatives), asked for as strict structured output and validated with pydantic
(one repair retry). The design becomes a Plan, and then the brief is enforced over it:

- every required string (brief.required_text + quoted strings in the prompt) is a text element
  verbatim: an altered one is corrected, a dropped one added in a free band, unrequested text
  dropped, each change noted in plan.notes;
- the brief's aspect ratio and size override the model's;
- subjects come from the brief's references (the model only places them); checks come from
  critics.checks_for with the brief's thresholds.

Any model failure (network, refusal, truncation, invalid JSON after the repair) raises
PlanningError; `fallback="rule"` (or config.options["llm_fallback"] = "rule") instead plans with
RulePlanner and says so in plan.notes.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz

from agent.backends.compose.fonts import FONTS
from agent.llm import ChatClient, ChatMessage, ImageInput, client_from_config, downscale, run_sync
from agent.llm.json_output import complete_json
from agent.loop.planning.design import layout_regions
from agent.loop.planning.people import looks_like_person
from agent.loop.planning.reading import extract_quoted
from agent.loop.planning.rules import RulePlanner, reference_names
from agent.models import (
    ASPECT_RATIOS,
    SIZE_TIERS,
    AspectRatio,
    Box,
    Brief,
    ImageRef,
    PixloopConfig,
    Plan,
    SizeTier,
    Style,
    Subject,
    TextElement,
    canvas_size,
)
from agent.models.errors import InputError, LLMError, PlanningError, ServiceError
from critics import checks_for
from prompts import render

SCHEMA_NAME = "pixloop_plan"
"""Structured-output schema name; the chat fake recognises planner requests by it."""
MATCH_MIN = 60.0
"""An LLM text element whose fuzz.ratio to a required string is at least this is that string, altered."""
REFERENCE_MAX_SIDE = 768
DEFAULT_NEGATIVE = ["misspelled text", "extra text", "watermark"]
Hex = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", description="colour as #rrggbb")]
FontKey = Literal[tuple(FONTS)]  # type: ignore[valid-type]
_ROLES = ("headline", "subheading", "body", "cta")


class _Design(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DesignBox(_Design):
    """Canvas-relative box: x, y top-left, w, h size, all in 0..1."""

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    w: float = Field(gt=0, le=1)
    h: float = Field(gt=0, le=1)


class DesignText(_Design):
    content: str = Field(min_length=1, description="the text exactly as the brief gives it")
    role: Literal["headline", "subheading", "body", "cta"]
    region: DesignBox


class DesignSubject(_Design):
    reference: int = Field(ge=1, description="1-based number of the attached reference image")
    kind: Literal["person", "product"]
    region: DesignBox


class DesignStyle(_Design):
    background: Literal["solid", "gradient", "texture"]
    palette: list[Hex] = Field(min_length=2, max_length=5)
    font: FontKey  # type: ignore[valid-type]
    text_color: Hex
    text_scale: float = Field(ge=0.2, le=1.0)


class PlanDesign(_Design):
    """The compact design the model returns; every field required (strict structured output)."""

    aspect_ratio: AspectRatio
    size: SizeTier
    text: list[DesignText]
    subjects: list[DesignSubject]
    style: DesignStyle
    negative: list[str]
    rationale: str


def required_text(brief: Brief) -> list[str]:
    """brief.required_text then the prompt's quoted strings, in order, without duplicates."""
    out: list[str] = []
    for t in [*brief.required_text, *extract_quoted(brief.prompt)]:
        if t and t not in out:
            out.append(t)
    return out


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _box(b: DesignBox) -> Box:
    """A valid Box from a model's box: clamped into the canvas, at least 2% on each side."""
    x, y = min(max(b.x, 0.0), 0.98), min(max(b.y, 0.0), 0.98)
    return Box(x=x, y=y, w=max(0.02, min(b.w, 1.0 - x)), h=max(0.02, min(b.h, 1.0 - y)))


def _overlap(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    return ix * iy


def free_band(taken: list[Box], height: float = 0.12) -> Box:
    """The full-width band of the given height that overlaps the taken boxes least (bottom first on ties)."""
    best: tuple[float, float] | None = None
    steps = 40
    for i in range(steps + 1):
        y = 0.04 + (0.92 - height) * (steps - i) / steps
        band = Box(x=0.06, y=y, w=0.88, h=height)
        cost = sum(_overlap(band, t) for t in taken)
        if best is None or cost < best[0] - 1e-9:
            best = (cost, y)
    return Box(x=0.06, y=best[1] if best else 0.8, w=0.88, h=height)


def enforce_text(design_text: list[DesignText], required: list[str], notes: list[str],
                 avoid: list[Box] | None = None) -> list[tuple[str, str, Box]]:
    """(content, role, box) per required string: exact matches kept, altered ones fixed, dropped ones added.

    Added strings go into the free band that overlaps the kept text and the `avoid` boxes (subjects) least.
    """
    unused = list(range(len(design_text)))
    chosen: list[int | None] = []
    for req in required:  # exact matches first, so a near miss never takes another string's element
        idx = next((i for i in unused if design_text[i].content == req), None)
        if idx is not None:
            unused.remove(idx)
        chosen.append(idx)
    for k, req in enumerate(required):
        if chosen[k] is not None:
            continue
        scored = [(fuzz.ratio(_norm(req), _norm(design_text[i].content)), i) for i in unused]
        score, idx = max(scored, default=(0.0, None))
        if idx is not None and score >= MATCH_MIN:
            notes.append(f"text fixed to the brief: {design_text[idx].content!r} -> {req!r}")
            unused.remove(idx)
            chosen[k] = idx
    placed: list[tuple[str, str, Box] | None] = [
        None if idx is None else (req, design_text[idx].role, _box(design_text[idx].region))
        for req, idx in zip(required, chosen)]
    for i in unused:
        notes.append(f"unrequested text dropped: {design_text[i].content!r}")
    taken = [p[2] for p in placed if p] + list(avoid or [])
    out: list[tuple[str, str, Box]] = []
    for req, p in zip(required, placed):
        if p is None:
            box = free_band(taken, 0.16 if not out else 0.1)
            taken.append(box)
            role = "headline" if not out and not any(q and q[1] == "headline" for q in placed) else "body"
            notes.append(f"required text the model left out added: {req!r} at {box.describe()}")
            p = (req, role, box)
        out.append(p)
    return out


def _ids(roles: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for r in roles:
        seen[r] = seen.get(r, 0) + 1
        ids.append(r if seen[r] == 1 else f"{r}{seen[r]}")
    return ids


def design_to_plan(design: PlanDesign, brief: Brief, references: list[ImageRef], store: Any,
                   model: str = "llm") -> Plan:
    """A Plan from a validated design, with the brief enforced over it (see the module docstring)."""
    notes: list[str] = [f"planned by llm {model}"]
    aspect = brief.aspect_ratio or design.aspect_ratio
    size = brief.size or design.size
    if brief.aspect_ratio and brief.aspect_ratio != design.aspect_ratio:
        notes.append(f"brief aspect ratio {brief.aspect_ratio} overrides the model's {design.aspect_ratio}")
    if brief.size and brief.size != design.size:
        notes.append(f"brief size {brief.size} overrides the model's {design.size}")
    width, height = canvas_size(aspect, size)
    placed_subjects = [_box(s.region) for s in design.subjects if s.reference <= len(references)]
    texts = enforce_text(design.text, required_text(brief), notes, avoid=placed_subjects)
    elements = [TextElement(id=i, content=c, role=r, region=b)
                for i, (c, r, b) in zip(_ids([r for _, r, _ in texts]), texts)]
    _, fallback_boxes = layout_regions(len(texts), len(references), width / height >= 1.7)
    by_ref = {s.reference: s for s in design.subjects}
    subjects = []
    names = reference_names(brief.references)
    for i, ref in enumerate(references):
        s = by_ref.get(i + 1)
        # one detector decides, whatever the model says: a reference without a face is never an identity check
        kind = "person" if looks_like_person(store, ref) else "product"
        region = _box(s.region) if s else fallback_boxes[i]
        if s is None:
            notes.append(f"reference {i + 1} placed by the default layout (the model did not place it)")
        subjects.append(Subject(id=f"{kind}{i + 1}", kind=kind, reference=ref, region=region,
                                name=names[i] if i < len(names) else None))
    palette = list(design.style.palette)
    while len(palette) < 3:
        palette.append(palette[-1])
    style = Style(background=design.style.background, palette=palette, font=design.style.font,
                  text_color=design.style.text_color, text_scale=min(0.9, max(0.3, design.style.text_scale)))
    negative = list(dict.fromkeys([*(n.strip() for n in design.negative if n.strip()), *DEFAULT_NEGATIVE]))
    notes.insert(1, f"canvas {aspect} {size} ({width}x{height})")
    if design.rationale.strip():
        notes.append("model rationale: " + design.rationale.strip()[:300])
    if elements:
        notes.append("required text: " + "; ".join(repr(e.content) for e in elements))
    plan = Plan(prompt=brief.styled_prompt, width=width, height=height, aspect_ratio=aspect, size=size, text=elements,
                subjects=subjects, style=style, negative=negative, notes=notes)
    plan.checks = checks_for(plan, brief.thresholds, brief.critics)
    return plan


def planner_messages(brief: Brief, references: list[ImageRef], store: Any) -> list[ChatMessage]:
    """System and user turns for a brief, the reference images attached (downscaled) to the user turn."""
    system = render("planner_system", ratios=", ".join(ASPECT_RATIOS), sizes=", ".join(SIZE_TIERS),
                    fonts=", ".join(FONTS), backgrounds="solid, gradient, texture")
    req = required_text(brief)
    canvas = []
    if brief.aspect_ratio:
        canvas.append(f"aspect ratio must be {brief.aspect_ratio}")
    if brief.size:
        canvas.append(f"size must be {brief.size}")
    user = render("planner_user", prompt=brief.styled_prompt,
                  required_text="\n".join(f'"{t}"' for t in req) or "(none: the image has no text)",
                  canvas="; ".join(canvas) or "your choice, from the brief",
                  references=str(len(references)) if references else "none")
    images: list[ImageInput] = [downscale(store.open(r).convert("RGB"), REFERENCE_MAX_SIDE) for r in references]
    return [ChatMessage("system", system), ChatMessage("user", user, images)]


def _runtime_config() -> PixloopConfig | None:
    """The running pixloop graph's PixloopConfig, when called inside a graph node."""
    try:
        from langgraph.runtime import get_runtime

        ctx = get_runtime().context
    except Exception:  # noqa: BLE001 - not inside a graph run
        return None
    if isinstance(ctx, PixloopConfig):
        return ctx
    if isinstance(ctx, dict):
        return PixloopConfig.model_validate(ctx)
    return None


class LLMPlanner:
    """Planner 'llm': a chat model (llm_base_url / llm_model) designs the plan; the brief is enforced on it."""

    name = "llm"

    def __init__(self, config: PixloopConfig | None = None, *, client: ChatClient | None = None,
                 fallback: Literal["rule"] | None = None, temperature: float | None = 0.2, max_tokens: int = 2048):
        self.config = config
        self.client = client
        options = (config.options if config else {}) or {}
        self.fallback = fallback or options.get("llm_fallback")
        if self.fallback not in (None, "rule"):
            raise PlanningError(f"llm planner: fallback must be 'rule' or unset, not {self.fallback!r}")
        self.temperature = temperature
        self.max_tokens = int(options.get("llm_max_tokens", max_tokens))

    @classmethod
    def from_config(cls, config: PixloopConfig) -> LLMPlanner:
        return cls(config)

    def _client(self) -> ChatClient:
        if self.client is not None:
            return self.client
        config = self.config or _runtime_config() or PixloopConfig()
        if self.config is None and (config.options or {}).get("llm_fallback") == "rule":
            self.fallback = "rule"
        try:
            return client_from_config(config)
        except (LLMError, InputError) as e:
            raise PlanningError(f"llm planner: {e}") from None

    def design(self, brief: Brief, references: list[ImageRef], store: Any) -> tuple[PlanDesign, str]:
        """Ask the model for a validated PlanDesign; returns it with the model id that answered."""
        client = self._client()
        messages = planner_messages(brief, references, store)

        async def ask() -> tuple[PlanDesign, str]:
            try:
                design, result = await complete_json(client, messages, PlanDesign, schema_name=SCHEMA_NAME,
                                                     temperature=self.temperature, max_tokens=self.max_tokens)
                return design, result.raw_model or client.model
            finally:
                await client.aclose()

        return run_sync(ask)

    def plan(self, brief: Brief, references: list[ImageRef], store: object) -> Plan:
        try:
            design, model = self.design(brief, references, store)
        except (ServiceError, PlanningError) as e:
            message = str(e).removeprefix("llm planner: ")
            if self.fallback == "rule":
                plan = RulePlanner().plan(brief, references, store)
                plan.notes.insert(0, f"llm planner failed ({type(e).__name__}: {message}); planned by rules instead")
                return plan
            raise PlanningError(f"llm planner failed: {type(e).__name__}: {message}", planner="llm") from e
        return design_to_plan(design, brief, references, store, model)


__all__ = [
    "DesignBox", "DesignStyle", "DesignSubject", "DesignText", "LLMPlanner", "PlanDesign", "SCHEMA_NAME",
    "design_to_plan", "enforce_text", "free_band", "planner_messages", "required_text",
]
