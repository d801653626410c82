"""What the fake servers do with the images they receive, as one model would (no web-server dependency).

Every fake renders with the compose backend; this module decides *what* to render from a request's prompt
and images, so the fakes stay honest about their inputs:

- `render_image`: a generation. Quoted strings become text, style words pick the look, and each reference
  image is placed in the canvas (a face photo as a framed head-and-shoulders portrait, anything else as a
  cut-out object), so identity and fusion can be checked over HTTP.
- `masked_edit`: an edit with a mask. Only the pixels the mask marks as editable change (re-rendered from
  the prompt, references placed there); every other pixel is returned exactly as received, so a client
  that converts a mask the wrong way sees its changes in the wrong place.
- `restyle`: an edit without a mask that keeps the picture (Gemini-style): the received image is the
  background, the prompt's text is set on it and references are placed.
- `img2img`: Stable Diffusion's unmasked image-to-image: the render mixed into the received image by the
  denoise strength.

Each fake converts its own API's mask convention into an "L" mask (255 = may change) before calling these.
"""

from __future__ import annotations

import hashlib
from typing import Any

from PIL import Image

from prompts import parse as parse_prompt

MAX_PLACED = 6
"""References placed in one render at most (the canvas gets crowded beyond that)."""
MIN_RENDER_SIDE = 64
"""Regions smaller than this are rendered at this size and scaled down (text needs room to fit)."""


class MemoryStore:
    """The little of an ArtifactStore that compose and the face detector need: images by ImageRef, in memory."""

    def __init__(self) -> None:
        self.images: dict[str, Image.Image] = {}

    def put(self, img: Image.Image) -> Any:
        from agent.models import ImageRef

        rgb = img.convert("RGB")
        digest = hashlib.sha256(f"{rgb.width}x{rgb.height}".encode() + rgb.tobytes()).hexdigest()
        self.images[digest] = rgb
        return ImageRef(sha256=digest, path=f"images/{digest[:2]}/{digest}.png", width=rgb.width, height=rgb.height)

    def open(self, ref: Any) -> Image.Image:
        return self.images[ref.sha256].copy()


def follow_feedback(style: Any, correction: str) -> Any:
    """Apply the legibility feedback of a correction prompt, as a cooperative model would."""
    from agent.loop.planning import contrasting_text

    text = correction.lower()
    update: dict[str, Any] = {}
    if "bold" in text or "heavier" in text or "font" in text:
        update["font"] = "lato-black"
    if "contrast" in text:
        update["text_color"] = contrasting_text(style.palette)
    if "large" in text or "enlarge" in text:
        update["text_scale"] = 0.9
    if "plate" in text:
        update["text_plate"] = True
    if "outline" in text:
        update["text_outline"] = True
    return style.model_copy(update=update)


def prompt_plan(prompt: str, width: int, height: int, seed: int = 0,
                references: list[Image.Image] | None = None) -> tuple[Any, MemoryStore]:
    """The compose Plan a model would make of a prompt (read through the template that wrote it) and its
    reference images, and the in-memory store holding those images."""
    from agent.loop.planning import extract_quoted, layout_regions, looks_like_person, style_for_prompt
    from agent.models import ASPECT_RATIOS, Box, Plan, Subject, TextElement

    asked = parse_prompt("correction", prompt)
    base, correction = (asked["prompt"], asked["feedback"]) if asked else (prompt, "")
    texts = extract_quoted(base)[:4]
    style, _ = style_for_prompt(base, seed)
    if correction:
        style = follow_feedback(style, correction)
    refs = list(references or [])[:MAX_PLACED]
    text_boxes, subject_boxes = layout_regions(len(texts), len(refs), width / max(1, height) >= 1.7)
    if refs and not texts:  # nothing to set: the references get the whole canvas
        each = 0.9 / len(refs)
        subject_boxes = [Box(x=0.05 + i * each + each * 0.03, y=0.05, w=each * 0.94, h=0.9) for i in range(len(refs))]
    roles = ["headline", "subheading", "body", "cta"]
    elements = [TextElement(id=f"t{i}", content=t, role=roles[min(i, 3)], region=text_boxes[i])
                for i, t in enumerate(texts)]
    store = MemoryStore()
    subjects = []
    for i, (img, box) in enumerate(zip(refs, subject_boxes)):
        ref = store.put(img)
        kind = "person" if looks_like_person(store, ref) else "product"
        subjects.append(Subject(id=f"reference{i + 1}", kind=kind, reference=ref, region=box))
    ratio = min(ASPECT_RATIOS, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - width / height))
    plan = Plan(prompt=prompt, width=width, height=height, aspect_ratio=ratio, size="1K", text=elements,
                subjects=subjects, style=style)
    return plan, store


def _at_least(width: int, height: int) -> tuple[int, int]:
    s = max(1.0, MIN_RENDER_SIDE / max(1, min(width, height)))
    return max(1, round(width * s)), max(1, round(height * s))


def render_image(prompt: str, width: int, height: int, seed: int = 0,
                 references: list[Image.Image] | None = None) -> Image.Image:
    """A generation: the prompt's text and style, with each reference image placed in the canvas."""
    from agent.backends.compose import render

    w, h = _at_least(width, height)
    plan, store = prompt_plan(prompt, w, h, seed, references)
    img, _ = render(plan, seed, store)
    return img if (w, h) == (width, height) else img.resize((width, height), Image.Resampling.LANCZOS)


def masked_edit(base: Image.Image, editable: Image.Image, prompt: str, seed: int = 0,
                references: list[Image.Image] | None = None, *, fit: str = "region") -> Image.Image:
    """An inpainting edit of `base`: where `editable` (an "L" mask of base's size, 255 = may change) is 0 the
    pixels are returned exactly as received; inside, the prompt is rendered (with the references placed) and
    blended by the mask's value. fit="region" renders at the masked area's bounding box (as a model that
    regenerates the region does, or A1111's inpaint_full_res); fit="full" renders the whole canvas and
    shows it through the mask (a latent noise mask)."""
    base = base.convert("RGB")
    editable = editable.convert("L")
    if editable.size != base.size:
        raise ValueError(f"mask {editable.size} and image {base.size} differ")
    box = editable.point(lambda v: 255 if v else 0).getbbox()
    if box is None:
        return base.copy()
    if fit == "region":
        x0, y0, x1, y1 = box
        layer = base.copy()
        layer.paste(render_image(prompt, x1 - x0, y1 - y0, seed, references), (x0, y0))
    else:
        layer = render_image(prompt, base.width, base.height, seed, references)
    return Image.composite(layer, base, editable)


def restyle(base: Image.Image, prompt: str, seed: int = 0,
            references: list[Image.Image] | None = None) -> Image.Image:
    """An unmasked edit that keeps the picture: `base` is the background, the prompt's text is set on it and
    the references are placed (a prompt without quoted text or references returns the picture as it was)."""
    from agent.backends.compose import render
    from agent.backends.compose.subjects import place_subjects

    plan, store = prompt_plan(prompt, base.width, base.height, seed, references)
    img, _ = render(plan.model_copy(update={"subjects": []}), seed, None, background=base.convert("RGB"))
    if plan.subjects:
        place_subjects(img, plan.subjects, store)
    return img


def img2img(base: Image.Image, prompt: str, seed: int, denoise: float,
            references: list[Image.Image] | None = None) -> Image.Image:
    """Stable Diffusion's image-to-image without a mask: the render mixed into `base` by the denoise strength
    (0 returns base, 1 a fresh render)."""
    base = base.convert("RGB")
    fresh = render_image(prompt, base.width, base.height, seed, references)
    return Image.blend(base, fresh, max(0.0, min(1.0, float(denoise))))


__all__ = ["MAX_PLACED", "MemoryStore", "follow_feedback", "img2img", "masked_edit", "prompt_plan", "render_image",
           "restyle"]
