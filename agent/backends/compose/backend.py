"""The compose entry points: `render` (a plan to pixels plus render meta) and `ComposeBackend`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image
from pydantic import Field

from agent.backends.base import BackendOptions, Capabilities, GenerationRequest, GenerationResult, parse_options
from agent.backends.compose.background import render_background
from agent.backends.compose.canvas import cover_fit
from agent.backends.compose.edit import apply_edit, blend_inside
from agent.backends.compose.fonts import missing_glyphs
from agent.backends.compose.panels import draw_panels
from agent.backends.compose.subjects import place_subjects
from agent.backends.compose.text import draw_text
from agent.backends.sd import open_ref
from agent.models import ASPECT_RATIOS, Plan
from agent.models.errors import BackendError


def render(plan: Plan, seed: int, store: Any | None = None, *,
           background: Image.Image | None = None) -> tuple[Image.Image, dict[str, Any]]:
    """Render a plan to an RGB image of exactly plan.width x plan.height, plus render meta.

    `background` replaces the styled background and skips subjects (they are already in
    it): this re-sets text on an existing candidate.
    """
    width, height = plan.width, plan.height
    meta: dict[str, Any] = {"backend": "compose", "seed": seed, "font": plan.style.font}
    try:
        if background is not None:
            canvas = cover_fit(background.convert("RGB"), width, height)
            meta["background"] = {"kind": "base_image"}
        else:
            canvas, meta["background"] = render_background(plan, seed, store)
            if plan.panels:
                meta["panels"] = draw_panels(canvas, plan)
            if plan.subjects:
                meta["subjects"] = place_subjects(canvas, plan.subjects, store)
        text_boxes: dict[str, list[int]] = {}
        font_px: dict[str, int] = {}
        lines: dict[str, list[str]] = {}
        missing: dict[str, list[str]] = {}
        plates: dict[str, list[int]] = {}
        overflow: list[str] = []
        for element in plan.text:
            info = draw_text(canvas, element, plan.style)
            text_boxes[element.id] = info["box"]
            font_px[element.id] = info["size"]
            lines[element.id] = info["lines"]
            if "plate" in info:
                plates[element.id] = info["plate"]
            if not info["fits"]:
                overflow.append(element.id)
            gaps = missing_glyphs(plan.style.font, element.content)
            if gaps:
                missing[element.id] = gaps
    except ValueError as e:
        raise BackendError(f"compose could not render the plan: {e}") from e
    meta.update(text_boxes=text_boxes, font_px=font_px, lines=lines)
    if plates:
        meta["plates"] = plates
    if missing:
        meta["missing_glyphs"] = missing
    if overflow:
        meta["text_overflow"] = overflow
    if canvas.size != (width, height) or canvas.mode != "RGB":
        raise BackendError(f"compose produced {canvas.mode} {canvas.size}, expected RGB {(width, height)}")
    return canvas, meta


MaskFn = Callable[[Image.Image | None], Image.Image | None]


def edit_base(plan: Plan, base: Image.Image, base_sha: str | None, mask: Image.Image | None, seed: int, store: Any,
              *, edit_mask: MaskFn | None = None, subject_match: float = 0.0) -> tuple[Image.Image, dict[str, Any]]:
    """A masked or planned edit of `base` (a request's base image), plus render meta.

    With ``plan.edit``: when `base` is the plan's source (or the plan names none), `apply_edit` edits it inside
    `mask`; when `base` is an earlier candidate (a masked correction of an edit), the source is edited again with
    the plan's mask and pasted into the candidate inside `mask` (everywhere without one). Without ``plan.edit``
    (a masked correction of a generated image): the plan is rendered again at `base`'s size and pasted inside
    `mask`. `edit_mask` (for test doubles) replaces the mask `apply_edit` is given; `subject_match` is its option
    of grading a kept subject toward a new background."""
    if plan.edit is None:
        if mask is None:
            return render(plan, seed, store, background=base)
        content, meta = render(plan.model_copy(update={"width": base.width, "height": base.height}), seed, store)
        meta["masked"] = True
        return blend_inside(base, content, mask), meta
    source, source_mask = base, mask
    from_candidate = plan.source is not None and base_sha is not None and base_sha != plan.source.sha256
    if from_candidate:
        assert plan.source is not None
        source = open_ref(store, plan.source, "the plan's source")
        source_mask = open_ref(store, plan.mask, "the plan's mask") if plan.mask is not None else None
    if edit_mask is not None:
        source_mask = edit_mask(source_mask)
    image, meta = apply_edit(source, source_mask, plan, seed, store, subject_match=subject_match)
    if from_candidate:
        meta["edit"]["re_edited_source"] = True
        if mask is not None:
            image = blend_inside(base, image, mask)
    return image, meta


class ComposeOptions(BackendOptions):
    """The compose backend's `--backend-option`s; everything it renders comes from the plan."""

    subject_match: float = Field(0.0, ge=0, le=1, description=(
        "a background edit grades the kept subject toward the new background's colour and light (at most 5 % "
        "per channel); 0 keeps the subject's pixels byte-identical"))


class ComposeBackend:
    """The default backend: renders plans locally with Pillow/OpenCV; no network, no model, deterministic.

    A request with a base image is an edit: with ``plan.edit`` the source is edited for real (`apply_edit`:
    background, clothing, region, insert, restyle), with a mask the plan is re-rendered inside it, and with
    neither the plan's text is set on the base image."""

    name = "compose"
    capabilities = Capabilities(
        edit=True, mask=True, max_references=8, aspect_ratios=list(ASPECT_RATIOS),
        sizes=["1K", "2K", "4K"], native_long_side=4096, deterministic=True, cost_per_image=1.0,
    )

    def __init__(self, options: ComposeOptions | Mapping[str, Any] | None = None):
        self.options = options if isinstance(options, ComposeOptions) else parse_options(
            ComposeOptions, options, self.name)

    @classmethod
    def from_config(cls, config: Any) -> ComposeBackend:
        """Build from a PixloopConfig (its options; an unknown one is an error); base_url and model are unused."""
        return cls(getattr(config, "options", None))

    def _generate_sync(self, request: GenerationRequest, store: Any) -> tuple[Image.Image, dict[str, Any]]:
        """Open the base image and mask if any, and render or edit (runs in a worker thread)."""
        if request.base_image is None:
            return render(request.plan, request.seed, store)
        base = open_ref(store, request.base_image, "base image")
        mask = open_ref(store, request.mask, "mask") if request.mask is not None else None
        image, meta = edit_base(request.plan, base, request.base_image.sha256, mask, request.seed, store,
                                subject_match=self.options.subject_match)
        meta["base_image"] = request.base_image.sha256
        return image, meta

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """Render the request's plan off the event loop; each image costs 1.0 unit."""
        try:
            image, meta = await asyncio.to_thread(self._generate_sync, request, store)
        except BackendError:
            raise
        except OSError as e:
            raise BackendError(f"compose failed: {e}") from e
        return GenerationResult(image=image, cost=self.capabilities.cost_per_image, meta=meta)


__all__ = ["ComposeBackend", "ComposeOptions", "edit_base", "render"]
