"""How one iteration's images are made from the corrector's action.

Most actions call the backend with a corrected prompt (and a new seed); the others work on an
existing candidate: a targeted edit sends it back with a mask (one or more boxes), `typeset_text`
clears the faulty text boxes and sets the exact text on it with the compose renderer, `upscale`
resamples it to the requested size, and `best_of_n` draws several drafts at once.

A single bad answer (malformed, truncated, or without an image) is asked for again up to `answer_retries`
times, while the run's time budget (the `deadline` the generate node sets) allows; the candidate's meta
records the retries. Refusals, auth errors and rejected requests are never retried.

Once the plan says the backend delivers fewer pixels than planned (`Plan.deliver_at_planned_size`,
set by an upscale), every later image is delivered at the planned size the same way, so a
regeneration or an edit does not lose the size the loop already repaired.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from agent.backends.base import Correction, GenerationRequest
from agent.backends.compose import contrasting_colour, hex_rgb, render
from agent.backends.errors import VARIANTS as BACKEND_ERRORS
from agent.backends.errors import NoImageReturned
from agent.loop.edit_repair import restore_outside, tightened_mask
from agent.loop.planning.design import contrasting_text
from agent.models import Action, Candidate, ImageRef, PixelBox, Plan
from agent.models.errors import HttpFailure, ImageInputError, MalformedResponse, as_service
from agent.models.errors import NoImageReturned as NoImageKind
from agent.runtime.http import current_deadline
from agent.runtime.secrets import redact
from agent.runtime.store import ArtifactStore

EDIT_STRATEGIES = ("edit_region", "reanchor_identity", "restart_from_best")
BAD_ANSWERS: tuple[type[Exception], ...] = (MalformedResponse, NoImageKind, ImageInputError)
"""A successful call whose answer is unusable: worth asking again (`answer_retries`)."""


@dataclass
class Produced:
    """One new image and how it was made."""

    image: Image.Image
    backend: str
    seed: int
    cost: float = 0.0
    seconds: float = 0.0
    parent_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    original: bytes | None = None
    """The provider's file byte for byte when it carries C2PA Content Credentials (stored as it came, so they
    stay valid; see `agent.loop.delivery`)."""


def region_mask(size: tuple[int, int], regions: list[PixelBox], feather: int = 0) -> Image.Image:
    """A mask the size of the image: white inside the boxes (may change), black elsewhere."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for b in regions:
        draw.rectangle((b.x0, b.y0, max(b.x0, b.x1 - 1), max(b.y0, b.y1 - 1)), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(feather)) if feather else mask


def needs_upscale(image: Image.Image, plan: Plan) -> bool:
    return max(image.size) < 0.98 * max(plan.width, plan.height)


def upscale_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """High-quality resampling (Lanczos) to the requested long side, then a light unsharp mask.

    No super-resolution model ships offline with a wheel we can depend on, so this is the
    documented fallback; the spec critic verifies the delivered size afterwards.
    """
    scale = max(width, height) / max(image.width, image.height)
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    out = image.resize(target, Image.Resampling.LANCZOS)
    return out.filter(ImageFilter.UnsharpMask(radius=max(1.0, scale * 0.8), percent=60, threshold=2))


def typeset(base: Image.Image, plan: Plan, element_ids: list[str], seed: int,
            clear: list[PixelBox] | None = None) -> tuple[Image.Image, dict[str, Any]]:
    """Clear the text boxes (each element's region and whatever OCR saw of it, `clear`) with an opaque
    plate, then set the listed elements' exact text on it in real fonts."""
    elements = [e for e in plan.text if e.id in element_ids] or list(plan.text)
    text_color = contrasting_text(plan.style.palette)
    style = plan.style.model_copy(update={
        "text_plate": True, "text_outline": False, "text_color": text_color,
        "font": plan.style.font if plan.style.font in ("lato-bold", "lato-black", "serif-bold") else "lato-black",
        "text_scale": max(plan.style.text_scale, 0.8)})
    canvas = base.convert("RGB")
    boxes = [e.region.to_pixels(canvas.width, canvas.height) for e in elements] + [b.as_tuple() for b in clear or []]
    if boxes:
        canvas = canvas.copy()
        plate = contrasting_colour(hex_rgb(text_color), plan.style.palette)
        draw = ImageDraw.Draw(canvas)
        for x0, y0, x1, y1 in boxes:
            x0, y0 = max(0, x0), max(0, y0)
            x1, y1 = min(canvas.width, x1), min(canvas.height, y1)
            if x1 > x0 and y1 > y0:
                draw.rounded_rectangle((x0, y0, x1 - 1, y1 - 1), radius=min(x1 - x0, y1 - y0) // 6, fill=plate)
    sub = plan.model_copy(update={"text": elements, "subjects": [], "style": style,
                                  "width": canvas.width, "height": canvas.height})
    image, meta = render(sub, seed, None, background=canvas)
    return image, {"typeset": [e.content for e in elements], "cleared": [list(b) for b in boxes],
                   "text_boxes": meta.get("text_boxes", {})}


def from_draft(store: ArtifactStore, draft: ImageRef, backend: str, seed: int) -> Produced:
    """The first candidate when the brief came with an image already made (a model's interleaved stream made
    it and was paid for it there): it is checked like any other, at no cost."""
    return Produced(image=store.open(draft), backend=backend, seed=seed, meta={"draft": draft.sha256})


async def produce(action: Action | None, *, backend: Any, store: ArtifactStore, plan: Plan, seed: int, prompt: str,
                  references: list[ImageRef], candidates: dict[str, Candidate], answer_retries: int = 1) -> list[Produced]:
    """The images for this iteration (delivered at the planned size when the plan says to upscale);
    raises BackendError when the backend fails (after `answer_retries` retries of a bad answer)."""
    made = await _produce(action, backend=backend, store=store, plan=plan, seed=seed, prompt=prompt,
                          references=references, candidates=candidates, answer_retries=answer_retries)
    if not plan.deliver_at_planned_size:
        return made
    return [await asyncio.to_thread(_deliver_upscaled, p, plan) if needs_upscale(p.image, plan) else p for p in made]


def _deliver_upscaled(p: Produced, plan: Plan) -> Produced:
    t0 = time.perf_counter()
    size = [p.image.width, p.image.height]
    image = upscale_image(p.image, plan.width, plan.height)
    meta = {**p.meta, "upscaled_from": size, "method": "lanczos+unsharp"}
    return Produced(image, p.backend, p.seed, p.cost, p.seconds + time.perf_counter() - t0, p.parent_id, meta)


async def _produce(action: Action | None, *, backend: Any, store: ArtifactStore, plan: Plan, seed: int, prompt: str,
                   references: list[ImageRef], candidates: dict[str, Candidate],
                   answer_retries: int) -> list[Produced]:
    base = candidates.get(action.base_candidate_id or "") if action else None
    strategy = action.strategy if action else None

    if action is not None and strategy == "typeset_text" and base is not None:
        t0 = time.perf_counter()
        image, meta = await asyncio.to_thread(typeset, store.open(base.image), plan, action.elements, seed,
                                              action.regions)
        return [Produced(image, "compose-typeset", seed, 0.0, time.perf_counter() - t0, base.id, meta)]

    if strategy == "upscale" and base is not None:
        t0 = time.perf_counter()
        image = await asyncio.to_thread(upscale_image, store.open(base.image), plan.width, plan.height)
        meta = {"upscaled_from": [base.image.width, base.image.height], "method": "lanczos+unsharp"}
        return [Produced(image, "upscale", base.seed, 0.0, time.perf_counter() - t0, base.id, meta)]

    if strategy == "restore_source" and base is not None and plan.source is not None and plan.mask is not None:
        t0 = time.perf_counter()
        image, meta = await asyncio.to_thread(restore_outside, store.open(base.image), store.open(plan.source),
                                              store.open(plan.mask))
        return [Produced(image, "restore-source", base.seed, 0.0, time.perf_counter() - t0, base.id, meta)]

    correction = _correction(action)
    if strategy == "tighten_mask" and plan.source is not None and plan.mask is not None:
        kept = [s.region.pixel_box(plan.width, plan.height) for s in plan.subjects if s.kind == "person"]
        tight = await asyncio.to_thread(tightened_mask, store.open(plan.mask), kept)
        tight_ref = await asyncio.to_thread(store.put_image, tight)
        request = GenerationRequest(plan=plan, seed=seed, prompt=prompt, references=references,
                                    base_image=plan.source, mask=tight_ref,
                                    instruction=f"{plan.prompt} {action.prompt_addendum if action else ''}".strip(),
                                    correction=correction)
        produced = await _call(backend, request, store, answer_retries)
        produced.meta["tightened_mask"] = tight_ref.path
        return [produced]

    if (action is not None and strategy in EDIT_STRATEGIES and base is not None and action.regions
            and backend.capabilities.edit):
        mask_ref = None
        if backend.capabilities.mask:
            size = (base.image.width, base.image.height)
            mask_ref = await asyncio.to_thread(store.put_image, region_mask(size, action.regions))
        request = GenerationRequest(plan=plan, seed=seed, prompt=prompt, references=references,
                                    base_image=base.image, mask=mask_ref, instruction=action.prompt_addendum or prompt,
                                    correction=correction)
        return [await _call(backend, request, store, answer_retries, parent=base.id)]

    if plan.source is not None:
        request = GenerationRequest(plan=plan, seed=seed, prompt=prompt, references=references,
                                    base_image=plan.source, mask=plan.mask, instruction=plan.prompt,
                                    correction=correction)
        return [await _call(backend, request, store, answer_retries)]

    drafts = action.drafts if action else 1
    requests = [GenerationRequest(plan=plan, seed=seed + k, prompt=prompt, references=references, correction=correction)
                for k in range(drafts)]
    results = await asyncio.gather(*(_call(backend, r, store, answer_retries) for r in requests),
                                   return_exceptions=True)
    good = [r for r in results if isinstance(r, Produced)]
    if not good:
        error = next(r for r in results if isinstance(r, BaseException))
        raise error
    return good


def _correction(action: Action | None) -> Correction | None:
    """The action as data for the backend (what the prompt's correction section says in words)."""
    if action is None:
        return None
    return Correction(attempt=action.iteration, strategy=action.strategy, addresses=action.addresses,
                      feedback=action.feedback)


async def _call(backend: Any, request: GenerationRequest, store: ArtifactStore, answer_retries: int,
                parent: str | None = None) -> Produced:
    """One image from the backend; a bad answer is asked for again up to `answer_retries` times while the
    deadline (if any) has time left. Raises the last failure as a backend error."""
    t0 = time.perf_counter()
    retried: list[str] = []
    while True:
        try:
            result = await backend.generate(request, store)
            if result.image is None:
                raise NoImageReturned(f"{backend.name} returned no image")
            break
        except (HttpFailure, ImageInputError) as e:
            # a kind raised outside the backend's client is still its failure
            error = as_service(e, BACKEND_ERRORS) if isinstance(e, HttpFailure) else e
            scope = current_deadline()
            if not isinstance(error, BAD_ANSWERS) or len(retried) >= answer_retries or \
                    (scope is not None and scope.expired):
                if retried:
                    error.args = (f"{error.args[0] if error.args else error} (after {len(retried)} answer "
                                  f"retr{'y' if len(retried) == 1 else 'ies'})",)
                raise error from None
            retried.append(redact(f"{type(error).__name__}: {error}")[:300])
            await asyncio.to_thread(store.log_event, "answer_retry", backend=backend.name, seed=request.seed,
                                    attempt=len(retried), error=retried[-1])
    meta = dict(result.meta)
    if retried:
        meta["answer_retries"] = len(retried)
        meta["answer_errors"] = retried
    original = result.original if meta.get("c2pa_manifest") else None
    return Produced(result.image, backend.name, request.seed, result.cost, time.perf_counter() - t0, parent, meta,
                    original)
