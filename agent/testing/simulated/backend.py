"""`SimulatedBackend`: compose renders plus the seeded failures of `failures`, decided per request and
answered partially by corrections (`feedback`), with masked edits that can fail or degrade the image, and
planned edits (compose's real `apply_edit`) that spill, drift or shift as real edit models do (`edits`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from agent.backends.base import Capabilities, GenerationRequest, GenerationResult
from agent.backends.compose import detect_face, edit_base, render
from agent.backends.sd import open_ref
from agent.models import ASPECT_RATIOS, LONG_SIDE, SIZE_TIERS, Box, Plan, TextElement
from agent.models.errors import BackendError
from agent.testing.simulated.edits import face_box, shift_image, spill_mask
from agent.testing.simulated.failures import (
    EDIT_ARTIFACT_BLUR,
    EDIT_ARTIFACT_NOISE,
    EXTRA_FACE_SCALE,
    EXTRA_TEXT_SIZES,
    GIBBERISH,
    add_noise,
    blur,
    box_edges,
    drift_identity,
    free_spot,
    jpeg,
    misspell,
    native_size,
    paste_extra_face,
    typo_candidates,
    wrong_size,
)
from agent.testing.simulated.feedback import (
    addressed_failures,
    attempt_number,
    failure_stream,
    feedback_text,
    stream,
)
from agent.testing.simulated.options import EDIT_STREAM, SimulatedOptions, parse_options


class _SwappedStore:
    """A view of the artifact store that opens substitute images for some references."""

    def __init__(self, store: Any, swaps: dict[str, Image.Image]) -> None:
        self._store, self._swaps = store, swaps

    def open(self, ref: Any) -> Image.Image:
        swap = self._swaps.get(ref.sha256)
        return swap.copy() if swap is not None else self._store.open(ref)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass
class _Outcome:
    """What happened to one request, for meta["simulated"]."""

    injected: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class SimulatedBackend:
    """Compose renders plus realistic, seeded failures and partial responses to feedback (a test double)."""

    name = "simulated"

    def __init__(self, options: SimulatedOptions | None = None) -> None:
        self.options = options or SimulatedOptions()
        self.rates = self.options.rates()
        native = self.options.native_long_side
        self.capabilities = Capabilities(
            edit=True, mask=True, max_references=8, aspect_ratios=list(ASPECT_RATIOS),
            sizes=[t for t in SIZE_TIERS if t == "1K" or LONG_SIDE[t] <= native],
            native_long_side=native, deterministic=True, cost_per_image=self.options.cost_per_image,
        )

    @classmethod
    def from_config(cls, config: Any) -> SimulatedBackend:
        """Build from a PixloopConfig; only its options are read (base_url and model mean nothing here)."""
        return cls(parse_options(dict(getattr(config, "options", None) or {})))

    # ------------------------------------------------------------------ decisions

    def _fires(self, kind: str, request: GenerationRequest, addressed: list[str], outcome: _Outcome,
               applicable: bool) -> tuple[bool, np.random.Generator]:
        """Whether a failure fires: its base draw, unless a correction that addresses it takes effect."""
        rng = failure_stream(request, kind)
        base, fix = rng.random(2)
        if not applicable or base >= self.rates[kind]:
            return False, rng
        if kind in addressed and fix < self.options.feedback_response:
            outcome.fixed.append(kind)
            return False, rng
        return True, rng

    # ------------------------------------------------------------------ generation

    def _generate(self, request: GenerationRequest, store: Any, background: Image.Image | None,
                  outcome: _Outcome) -> Image.Image:
        """Render the plan (on `background` for an unmasked edit) with this request's failures."""
        plan = request.plan
        addressed = addressed_failures(feedback_text(request))
        width, height = native_size(*(background.size if background is not None else (plan.width, plan.height)),
                                    self.options.native_long_side)

        text = list(plan.text)
        fires, rng = self._fires("drop_text", request, addressed, outcome, bool(text))
        if fires:
            i = int(rng.integers(len(text)))
            outcome.injected.append("drop_text")
            outcome.details["drop_text"] = {"element": text[i].id, "text": text[i].content}
            text.pop(i)

        typo_able = [k for k, e in enumerate(text) if typo_candidates(e.content)]
        fires, rng = self._fires("misspell", request, addressed, outcome, bool(typo_able))
        if fires:
            weights = np.array([max(len(w) for w in text[k].content.split()) for k in typo_able], float)
            k = int(rng.choice(typo_able, p=weights / weights.sum()))
            wrong = misspell(text[k].content, rng)
            outcome.injected.append("misspell")
            outcome.details["misspell"] = {"element": text[k].id, "text": text[k].content, "rendered": wrong}
            text[k] = text[k].model_copy(update={"content": wrong})

        fires, rng = self._fires("extra_text", request, addressed, outcome, True)
        if fires:
            forbidden = [box_edges(e.region, 0.03) for e in plan.text]
            avoid = [box_edges(s.region) for s in plan.subjects]
            words = GIBBERISH[int(rng.integers(len(GIBBERISH)))]
            for w, h in EXTRA_TEXT_SIZES:
                spot = free_spot(w, h, forbidden, avoid, rng, max_avoid_share=0.35)
                if spot is not None:
                    region = Box(x=spot[0], y=spot[1], w=w, h=h)
                    text.append(TextElement(id="simulated-extra", content=words, role="body", region=region))
                    outcome.injected.append("extra_text")
                    outcome.details["extra_text"] = {"text": words, "where": region.describe()}
                    break

        swaps: dict[str, Image.Image] = {}
        persons = [s for s in plan.subjects if s.kind == "person"] if background is None else []
        fires, rng = self._fires("identity_drift", request, addressed, outcome, bool(persons) and store is not None)
        if fires:
            subject = persons[int(rng.integers(len(persons)))]
            ref = store.open(subject.reference).convert("RGB")
            face = detect_face(ref)
            if face is not None:
                swaps[subject.reference.sha256] = drift_identity(ref, face, rng)
                outcome.injected.append("identity_drift")
                outcome.details["identity_drift"] = {"subject": subject.id}

        fires, rng = self._fires("wrong_size", request, addressed, outcome, background is None)
        if fires:
            (width, height), how = wrong_size(width, height, rng)
            outcome.injected.append("wrong_size")
            outcome.details["wrong_size"] = how

        sized = plan.model_copy(update={"text": text, "width": width, "height": height})
        image, meta = render(sized, request.seed, _SwappedStore(store, swaps) if swaps else store,
                             background=background)

        fires, rng = self._fires("extra_face", request, addressed, outcome, bool(persons))
        if fires:
            image = self._extra_face(image, sized, meta, rng, outcome)
        return self._degrade(image, request, addressed, outcome)

    def _extra_face(self, image: Image.Image, plan: Plan, meta: dict[str, Any], rng: np.random.Generator,
                    outcome: _Outcome) -> Image.Image:
        """Paste a copy of a placed person somewhere free (not over text)."""
        placed = [(s, meta.get("subjects", {}).get(s.id)) for s in plan.subjects if s.kind == "person"]
        placed = [(s, m) for s, m in placed if m]
        if not placed:
            return image
        subject, info = placed[int(rng.integers(len(placed)))]
        forbidden = [box_edges(e.region, 0.02) for e in plan.text]
        avoid = [box_edges(s.region) for s in plan.subjects]
        for scale in EXTRA_FACE_SCALE:
            w, h = subject.region.w * scale, subject.region.h * scale
            spot = free_spot(w, h, forbidden, avoid, rng, max_avoid_share=0.25)
            if spot is not None:
                outcome.injected.append("extra_face")
                outcome.details["extra_face"] = {"copy_of": subject.id,
                                                 "where": Box(x=spot[0], y=spot[1], w=w, h=h).describe()}
                return paste_extra_face(image, info["box"], spot, scale)
        return image

    def _degrade(self, image: Image.Image, request: GenerationRequest, addressed: list[str],
                 outcome: _Outcome) -> Image.Image:
        """Blur, noise and JPEG blocking, in the order a real pipeline would add them."""
        fires, _ = self._fires("blur", request, addressed, outcome, True)
        if fires:
            image = blur(image, self.options.blur_sigma)
            outcome.injected.append("blur")
        fires, rng = self._fires("noise", request, addressed, outcome, True)
        if fires:
            image = add_noise(image, self.options.noise_sigma, rng)
            outcome.injected.append("noise")
        fires, _ = self._fires("jpeg", request, addressed, outcome, True)
        if fires:
            image = jpeg(image, self.options.jpeg_quality)
            outcome.injected.append("jpeg")
        return image

    # ------------------------------------------------------------------ edits

    def _edit(self, request: GenerationRequest, store: Any, outcome: _Outcome) -> Image.Image:
        """A masked edit: regenerate the masked region from the plan (or fail to), keep the rest."""
        base = open_ref(store, request.base_image, "base image").convert("RGB")
        if request.mask is None:
            return self._generate(request, store, base, outcome)
        mask = open_ref(store, request.mask, "mask").convert("L")
        if mask.size != base.size:
            mask = mask.resize(base.size, Image.Resampling.BILINEAR)
        alpha = np.asarray(mask, np.float32) / 255.0
        plan = request.plan.model_copy(update={"width": base.width, "height": base.height})
        rng = stream(request, EDIT_STREAM)
        applied = bool(rng.random() < self.options.edit_response)
        edit: dict[str, Any] = {"applied": applied}
        text, swaps = list(plan.text), {}
        if not applied:
            inside = [k for k, e in enumerate(text) if _covered(alpha, e.region) and typo_candidates(e.content)]
            persons = [s for s in plan.subjects if s.kind == "person" and _covered(alpha, s.region, 0.3)]
            if inside:
                k = inside[int(rng.integers(len(inside)))]
                text[k] = text[k].model_copy(update={"content": misspell(text[k].content, rng)})
                edit["failure"] = {"misspell": text[k].id, "rendered": text[k].content}
            elif persons:
                ref = store.open(persons[0].reference).convert("RGB")
                face = detect_face(ref)
                if face is not None:
                    swaps[persons[0].reference.sha256] = drift_identity(ref, face, rng)
                    edit["failure"] = {"identity_drift": persons[0].id}
        if applied or "failure" in edit:
            target, _ = render(plan.model_copy(update={"text": text}), request.seed,
                               _SwappedStore(store, swaps) if swaps else store)
            a = alpha[..., None]
            out = np.asarray(base, np.float32) * (1 - a) + np.asarray(target, np.float32) * a
            image = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")
        else:
            image = base
        if rng.random() < self.options.edit_artifacts:
            image = add_noise(blur(image, EDIT_ARTIFACT_BLUR), EDIT_ARTIFACT_NOISE, rng)
            edit["artifacts"] = True
        outcome.details["edit"] = edit
        return image

    def _planned_edit(self, request: GenerationRequest, store: Any, outcome: _Outcome) -> Image.Image:
        """A planned edit (the plan has an EditSpec): compose's real edit of the source, then the failures real edit
        models show: a spill past the mask, a kept person's identity drift, a shift, zoom or rescale."""
        plan = request.plan
        assert plan.edit is not None and request.base_image is not None
        base = open_ref(store, request.base_image, "base image").convert("RGB")
        mask = open_ref(store, request.mask, "mask") if request.mask is not None else None
        critics = request.correction.addresses if request.correction is not None else []
        addressed = addressed_failures(feedback_text(request), critics)
        rng = stream(request, EDIT_STREAM)
        applied = bool(rng.random() < self.options.edit_response)
        edit: dict[str, Any] = {"applied": applied, "kind": plan.edit.kind}
        outcome.details["edit"] = edit
        if not applied:  # the model returned the image it was given
            image = base
        else:
            can_spill = (mask is not None or plan.mask is not None) and plan.edit.mask_share < 0.999
            fires, spill_rng = self._fires("edit_spill", request, addressed, outcome, can_spill)

            def spill(m: Image.Image | None) -> Image.Image | None:
                spilled, info = spill_mask(m, spill_rng)
                if info:
                    outcome.injected.append("edit_spill")
                    outcome.details["edit_spill"] = info
                return spilled

            image, meta = edit_base(plan, base, request.base_image.sha256, mask, request.seed, store,
                                    edit_mask=spill if fires else None)
            edit["compose"] = {k: v for k, v in meta.get("edit", {}).items() if k in ("kind", "changed_share", "look")}
        persons = [s for s in plan.subjects if s.kind == "person"]
        fires, drift_rng = self._fires("identity_drift", request, addressed, outcome, bool(persons))
        if fires:
            subject = persons[int(drift_rng.integers(len(persons)))]
            image = drift_identity(image, face_box(subject.region, image.size), drift_rng)
            outcome.injected.append("identity_drift")
            outcome.details["identity_drift"] = {"subject": subject.id}
        fires, shift_rng = self._fires("edit_shift", request, addressed, outcome, True)
        if fires:
            image, how = shift_image(image, shift_rng)
            outcome.injected.append("edit_shift")
            outcome.details["edit_shift"] = how
        if rng.random() < self.options.edit_artifacts:
            image = add_noise(blur(image, EDIT_ARTIFACT_BLUR), EDIT_ARTIFACT_NOISE, rng)
            edit["artifacts"] = True
        return image

    # ------------------------------------------------------------------ protocol

    def simulate(self, request: GenerationRequest, store: Any) -> tuple[Image.Image, dict[str, Any]]:
        """The image for a request and its meta (synchronous; `generate` runs it in a worker thread)."""
        outcome = _Outcome()
        if request.base_image is not None:
            if store is None:
                raise BackendError("base_image given but no artifact store to open it")
            if request.plan.edit is not None:
                image = self._planned_edit(request, store, outcome)
            else:
                image = self._edit(request, store, outcome)
        else:
            image = self._generate(request, store, None, outcome)
        critics = request.correction.addresses if request.correction is not None and request.plan.edit else []
        sim: dict[str, Any] = {"injected": outcome.injected, "fixed": outcome.fixed,
                               "addressed": addressed_failures(feedback_text(request), critics),
                               "attempt": attempt_number(request), "profile": self.options.profile,
                               "native_long_side": self.options.native_long_side,
                               "delivered": [image.width, image.height]}
        if outcome.details:
            sim["details"] = outcome.details
        return image, {"model": "simulated", "seed": request.seed, "simulated": sim}

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """Render and degrade off the event loop, taking at least `latency` seconds as a remote model would (the
        wait is asynchronous: other images render meanwhile); costs the configured estimate per image."""
        try:
            started = asyncio.get_running_loop().time()
            image, meta = await asyncio.to_thread(self.simulate, request, store)
            left = self.options.latency - (asyncio.get_running_loop().time() - started)
            if left > 0:
                await asyncio.sleep(left)
        except BackendError:
            raise
        except (OSError, ValueError) as e:
            raise BackendError(f"simulated backend failed: {type(e).__name__}: {e}") from e
        return GenerationResult(image=image, cost=self.options.cost_per_image, meta=meta)


def _covered(alpha: np.ndarray, region: Box, share: float = 0.5) -> bool:
    """Whether at least `share` of a relative region lies inside the mask."""
    h, w = alpha.shape
    x0, y0, x1, y1 = region.to_pixels(w, h)
    part = alpha[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)]
    return part.size > 0 and float(part.mean()) >= share
