"""The compose entry points: `render` (a plan to pixels plus render meta) and `ComposeBackend`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from PIL import Image

from agent.backends.base import BackendOptions, Capabilities, GenerationRequest, GenerationResult, parse_options
from agent.backends.compose.background import render_background
from agent.backends.compose.canvas import cover_fit
from agent.backends.compose.fonts import missing_glyphs
from agent.backends.compose.subjects import place_subjects
from agent.backends.compose.text import draw_text
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


class ComposeOptions(BackendOptions):
    """The compose backend takes no `--backend-option`s: everything it renders comes from the plan."""


class ComposeBackend:
    """The default backend: renders plans locally with Pillow/OpenCV; no network, no model, deterministic."""

    name = "compose"
    capabilities = Capabilities(
        edit=True, mask=False, max_references=8, aspect_ratios=list(ASPECT_RATIOS),
        sizes=["1K", "2K", "4K"], native_long_side=4096, deterministic=True, cost_per_image=1.0,
    )

    def __init__(self, options: ComposeOptions | Mapping[str, Any] | None = None):
        self.options = options if isinstance(options, ComposeOptions) else parse_options(
            ComposeOptions, options, self.name)

    @classmethod
    def from_config(cls, config: Any) -> ComposeBackend:
        """Build from a PixloopConfig; compose has no options (any given is an error), base_url and model are unused."""
        return cls(getattr(config, "options", None))

    def _generate_sync(self, request: GenerationRequest, store: Any) -> tuple[Image.Image, dict[str, Any]]:
        """Open the base image if any and render (runs in a worker thread)."""
        background = None
        if request.base_image is not None:
            if store is None:
                raise BackendError("base_image given but no artifact store to open it")
            try:
                background = store.open(request.base_image)
            except (OSError, ValueError) as e:
                raise BackendError(f"cannot open base image {request.base_image.path}: {e}") from e
        image, meta = render(request.plan, request.seed, store, background=background)
        if request.base_image is not None:
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


__all__ = ["ComposeBackend", "ComposeOptions", "render"]
