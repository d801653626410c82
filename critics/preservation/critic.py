"""``PreservationCritic``: the limits of each measure, their score mapping, and the mask and global
modes (see the package docstring)."""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np
from PIL import Image

from agent.models import ImageRef, Plan, Verdict
from agent.models.evidence import PreservationEvidence
from critics.base import CheckContext, CriticBase, CriticInfo
from critics.preservation.pixels import (
    SSIM_WINDOW,
    colour_diff,
    correlation,
    edge_map,
    resize,
    rgb_array,
    ssim_map,
    work_size,
)
from critics.preservation.preparation import MAX_SIDE, cached, prepare, prepare_mask, prepare_original
from critics.preservation.regions import describe_box, diff_heatmap, worst_region

INFO = CriticInfo(
    threshold=0.5,
    threshold_source=(
        "each measure maps its limit to exactly 0.5 (outside-mask SSIM 0.95, colour shift 12/255, changed "
        "share 1%, largest changed patch 0.2% of the image; layout SSIM 0.6, edge correlation 0.4), calibrated on skimage photos"
    ),
    description="an edit keeps what is outside its mask and changes what is inside",
    weight=2.0, measured=True, needs=("original",), on_by_default=True,
    strategies=("restore_source", "tighten_mask", "new_seed"), escalation=("tighten_mask", "new_seed"),
    evidence=PreservationEvidence,
)
"""What the loop knows about this critic (see `critics.base.CriticInfo`)."""

SSIM_OUTSIDE_LIMIT = 0.95
"""Mean SSIM outside the (dilated) mask must reach this. Measured on skimage photos at 1024 px:
JPEG q50 / WebP q80 re-encoding, a 2x bicubic resample and a 1 px blur all stay >= 0.969 (q90: >= 0.993).
Not yet measured on real inpainting outputs (a VAE round trip); calibrate with bench data."""
COLOUR_OUTSIDE_LIMIT = 12 / 255
"""Mean (blurred) absolute RGB difference outside the mask above this (a visible colour grade:
brightness x1.25 on astronaut gives 0.095) fails; re-encoding stays <= 2/255."""
CHANGED_INSIDE_LIMIT = 4 / 255
"""Mean (blurred) absolute RGB difference inside the mask below this means the edit did not happen
(re-encoding alone stays <= 2/255)..."""
CHANGED_PIXEL = 16 / 255
"""...unless at least CHANGED_FRACTION_LIMIT of the masked pixels changed by more than this."""
CHANGED_FRACTION_LIMIT = 0.02
"""A new object covering 2 % of a generous mask counts as a change; re-encoding noise changes 0 %."""
CHANGED_OUTSIDE_FRACTION_LIMIT = 0.01
"""At most this share of the outside may change visibly (> CHANGED_PIXEL): a mean SSIM over a big
outside dilutes a local change (a black 180x180 square on 1024x1024 still averages SSIM 0.96);
re-encoding noise changes 0 %, a 2 px shift of the whole image 2-13 %."""
SPILL_LIMIT = 0.002
"""The largest connected patch of visibly changed pixels outside the mask (after an opening that removes the
thin edge lines a resample leaves) may cover at most this share of the image: an edit that bleeds 40 px past
its mask changes ~1 % of a 1024 px portrait in one patch, fewer than CHANGED_OUTSIDE_FRACTION_LIMIT counts."""
SPILL_OPENING = 5
SEAM_FRACTION = 0.01
"""The mask is grown by this share of the long side (min 3 px) before judging the outside."""
GLOBAL_SIDE = 64
"""Without a mask, layout SSIM is computed at this long side after a Gaussian blur of LAYOUT_BLUR px,
so texture, noise, colour grading and a shift of ~3 % (common in whole-image regenerations) do not
count, while moved or replaced masses do."""
LAYOUT_BLUR = 2.0
LAYOUT_SSIM_LIMIT = 0.6
"""Layout SSIM below this: the layout changed. Calibrated on skimage astronaut/coffee/chelsea:
retouches (brightness, contrast, JPEG q50, blur, noise, a local patch) >= 0.93, a 1.5 % shift
>= 0.89, a 3 % shift >= 0.69, a 6 % shift 0.33-0.58, unrelated photos <= 0.20, a flat grey <= 0.45."""
EDGE_SIDE = 128
EDGE_CORR_LIMIT = 0.4
"""Pearson correlation of blurred Sobel edge maps at EDGE_SIDE below this: the structure changed.
Same calibration: retouches >= 0.96, a 3 % shift >= 0.53, unrelated photos <= 0.18, flat grey ~0."""


# --------------------------------------------------------------------------- scoring


def largest_patch(changed: np.ndarray) -> float:
    """Share of the image covered by the largest connected patch of `changed`, after an opening of SPILL_OPENING
    px (thin edge lines from resampling are not patches)."""
    if not changed.any():
        return 0.0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (SPILL_OPENING, SPILL_OPENING))
    opened = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    n, _, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if n <= 1:
        return 0.0
    return float(stats[1:, cv2.CC_STAT_AREA].max()) / changed.size


def score_at_least(value: float, limit: float, best: float = 1.0, worst: float = 0.0) -> float:
    """Map a higher-is-better measure to [0,1]: 0.5 at ``limit``, 1 at ``best``, 0 at ``worst``."""
    if value >= limit:
        return float(min(1.0, 0.5 + 0.5 * (value - limit) / max(1e-9, best - limit)))
    return float(max(0.0, 0.5 * (value - worst) / max(1e-9, limit - worst)))


def score_at_most(value: float, limit: float) -> float:
    """Map a lower-is-better measure >= 0 to [0,1]: 1 at 0, 0.5 at ``limit``, -> 0 as it grows."""
    if value <= limit:
        return float(1.0 - 0.5 * value / max(1e-9, limit))
    return float(0.5 * limit / value)


def _threshold(plan: Plan) -> float:
    spec = plan.checks.get("preservation")
    return float(spec.threshold) if spec is not None else INFO.threshold


def _empty_evidence(mode: str) -> dict[str, Any]:
    return {"mode": mode, "ssim_outside": None, "changed_inside": None, "ssim_global": None,
            "resized": False, "diff_map": None, "worst_region": None}


class PreservationCritic(CriticBase):
    """For edits: outside the mask unchanged and inside changed (mask), or the layout kept (no mask)."""

    name = "preservation"
    info = INFO

    def check(self, image: Image.Image, plan: Plan, context: CheckContext) -> Verdict:
        t0 = time.perf_counter()
        threshold = _threshold(plan)
        mask_ref: ImageRef | None = context.mask or plan.mask
        mode = "mask" if mask_ref is not None else "global"
        try:
            score, evidence, feedback, error = self._evaluate(image, plan, context, mask_ref)
        except Exception as e:  # noqa: BLE001 - a critic never crashes the loop
            error = f"{type(e).__name__}: {e}"
            score, evidence = 0.0, _empty_evidence(mode)
            feedback = f"the preservation check failed ({error[:200]}); the edit could not be judged"
        return Verdict(critic=self.name, candidate_id=context.candidate_id, score=score,
                       passed=error is None and score >= threshold, threshold=threshold, evidence=evidence,
                       feedback=feedback, seconds=round(time.perf_counter() - t0, 3), error=error)

    # ------------------------------------------------------------------ internals

    def _evaluate(self, image: Image.Image, plan: Plan, context: CheckContext,
                  mask_ref: ImageRef | None) -> tuple[float, dict[str, Any], str, str | None]:
        mode = "mask" if mask_ref is not None else "global"
        evidence = _empty_evidence(mode)
        original_ref = context.original or plan.source
        store = context.store
        if original_ref is None:
            return 0.0, evidence, "no original image to compare the edit with", "no original image (plan.source)"
        if store is None:
            return (0.0, evidence, "the original image could not be opened: no artifact store in the context",
                    "no artifact store to open the original")
        # the original is decoded and prepared once per process (every candidate compares with it)
        (ow, oh), ob, go = cached(store, original_ref, "original", None, prepare_original)
        cw, ch = image.size
        evidence.update(original_size=[ow, oh], candidate_size=[cw, ch])
        if cw == 0 or ch == 0:
            return 0.0, evidence, f"the edited image is empty ({cw}x{ch}): regenerate the edit", \
                f"candidate is {cw}x{ch}"
        size = work_size(ow, oh, MAX_SIDE)

        edit_full: np.ndarray | None = None
        if mask_ref is not None:
            (mw, mh), edit_full, convention = cached(store, mask_ref, "mask", None, prepare_mask)
            if (mw, mh) != (ow, oh):
                msg = f"mask is {mw}x{mh} but the original is {ow}x{oh}"
                return 0.0, evidence, f"{msg}: provide a mask of {ow}x{oh} (white = may change)", msg
            evidence["mask_convention"] = convention
            if not edit_full.any():
                msg = "mask has no edit area (no white pixels, or no transparent pixels for an alpha mask)"
                return 0.0, evidence, f"{msg}: mark the region that may change in white", msg

        evidence["work_size"] = list(size)
        evidence["resized"] = (cw, ch) != (ow, oh)
        if evidence["resized"]:
            evidence["aspect_changed"] = abs((cw / ch) / (ow / oh) - 1) > 0.02
        cb, gc = prepare(resize(rgb_array(image), size))
        # colour difference of lightly blurred copies: re-encoding noise averages out, real changes stay
        diff = colour_diff(ob, cb)
        sx, sy = ow / size[0], oh / size[1]

        if mode == "mask":
            assert edit_full is not None
            score, feedback, box, edit = self._masked(edit_full, size, diff, go, gc, evidence)
        else:
            (score, feedback, box), edit = self._global(diff, go, gc, evidence, plan, context), None

        if box is not None:
            evidence["worst_region"] = [round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)]
        try:
            evidence["diff_map"] = store.put_image(diff_heatmap(diff, edit, box)).path
        except Exception as e:  # noqa: BLE001 - the map is evidence, not the verdict
            evidence["diff_map"] = None
            evidence["diff_map_error"] = f"{type(e).__name__}: {e}"[:200]
        return float(max(0.0, min(1.0, score))), evidence, feedback, None

    def _masked(self, edit_full: np.ndarray, size: tuple[int, int], diff: np.ndarray, go: np.ndarray,
                gc: np.ndarray, evidence: dict[str, Any]
                ) -> tuple[float, str, tuple[int, int, int, int] | None, np.ndarray]:
        w, h = size
        if edit_full.shape[::-1] != size:
            edit = cv2.resize(edit_full.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
            if not edit.any():  # a sliver that vanished when downscaling: keep its nearest pixels
                edit = cv2.resize(edit_full.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        else:
            edit = edit_full
        grow = max(3, round(SEAM_FRACTION * max(w, h))) + SSIM_WINDOW // 2
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        outside = cv2.dilate(edit.astype(np.uint8), kernel) == 0
        evidence["mask_fraction"] = round(float(edit.mean()), 4)
        evidence["seam_px"] = grow

        # inside: did it change?
        d_in = diff[edit]
        changed = float(d_in.mean())
        frac = float((d_in > CHANGED_PIXEL).mean())
        evidence["changed_inside"] = round(changed, 4)
        evidence["changed_fraction"] = round(frac, 4)
        ratio = max(changed / CHANGED_INSIDE_LIMIT, frac / CHANGED_FRACTION_LIMIT)
        in_score = score_at_least(ratio, 1.0, best=4.0)

        # outside: was it kept? (mean SSIM, mean colour shift, share of visibly changed pixels)
        box = None
        s_out = mad_out = frac_out = None
        part = {"ssim": 1.0, "colour": 1.0, "local": 1.0}
        if outside.any():
            smap = ssim_map(go, gc)
            s_out = float(smap[outside].mean())
            d_out = diff[outside]
            mad_out = float(d_out.mean())
            frac_out = float((d_out > CHANGED_PIXEL).mean())
            evidence["ssim_outside"] = round(s_out, 4)
            evidence["mad_outside"] = round(mad_out, 4)
            evidence["changed_fraction_outside"] = round(frac_out, 4)
            spill = largest_patch(outside & (diff > CHANGED_PIXEL))
            evidence["spill_share"] = round(spill, 4)
            part = {"ssim": score_at_least(s_out, SSIM_OUTSIDE_LIMIT),
                    "colour": score_at_most(mad_out, COLOUR_OUTSIDE_LIMIT),
                    "local": score_at_most(frac_out, CHANGED_OUTSIDE_FRACTION_LIMIT),
                    "spill": score_at_most(spill, SPILL_LIMIT)}
            found = worst_region(np.clip((1 - smap) / 2, 0, 1) + diff, outside)
            box = found[0] if found else None
        else:
            evidence["notes"] = ["the mask covers the whole image: nothing outside it to preserve"]
        out_score = min(part.values())
        evidence["scores"] = {"outside": round(out_score, 4), "inside": round(in_score, 4),
                              **{f"outside_{k}": round(v, 4) for k, v in part.items()}}

        where = describe_box(box, w, h) if box is not None else "outside the mask"
        if out_score <= in_score and out_score < 0.5:
            # every part is 1.0 unless the outside was measured, so s_out, mad_out and frac_out are set
            assert s_out is not None and mad_out is not None and frac_out is not None
            if frac_out > 0.2 and s_out >= 0.9:  # spread change with the structure kept: a colour grade
                fb = (f"the edit shifted the colours outside the mask (mean difference {mad_out:.1%}, limit "
                      f"{COLOUR_OUTSIDE_LIMIT:.1%}; {frac_out:.0%} of it visibly changed): keep everything outside "
                      "the mask unchanged")
            else:
                fb = (f"the edit changed the area outside the mask at {where} (SSIM {s_out:.3f}"
                      f"{' < ' if s_out < SSIM_OUTSIDE_LIMIT else ' >= '}{SSIM_OUTSIDE_LIMIT:.2f}, "
                      f"{frac_out:.1%} of it visibly changed, the largest patch {evidence.get('spill_share', 0):.1%} "
                      "of the image): keep everything outside the mask unchanged")
            if in_score < 0.5:
                fb += "; the masked region was not changed either"
        elif in_score < 0.5:
            fb = (f"the masked region was not changed (mean difference {changed:.1%} < {CHANGED_INSIDE_LIMIT:.1%}, "
                  f"{frac:.0%} of its pixels changed): apply the requested edit inside the mask")
        else:
            kept = f"SSIM {s_out:.3f}" if s_out is not None else "no outside area"
            fb = (f"the edit kept the area outside the mask ({kept}) and changed the masked region "
                  f"(mean difference {changed:.1%})")
        return min(out_score, in_score), fb, box, edit

    def _global(self, diff: np.ndarray, go: np.ndarray, gc: np.ndarray, evidence: dict[str, Any], plan: Plan,
                context: CheckContext) -> tuple[float, str, tuple[int, int, int, int] | None]:
        h, w = go.shape
        small = work_size(w, h, GLOBAL_SIDE)
        so = cv2.GaussianBlur(resize(go, small), (0, 0), LAYOUT_BLUR)
        sc = cv2.GaussianBlur(resize(gc, small), (0, 0), LAYOUT_BLUR)
        s_global = float(ssim_map(so, sc).mean())
        edge_size = work_size(w, h, EDGE_SIDE)
        e_corr = correlation(edge_map(resize(go, edge_size)), edge_map(resize(gc, edge_size)))
        evidence["ssim_global"] = round(s_global, 4)
        evidence["edge_correlation"] = round(e_corr, 4)
        evidence["changed_mean"] = round(float(diff.mean()), 4)
        people = any(s.kind == "person" for s in plan.subjects) or bool(context.references)
        evidence["identity"] = ("not checked here: the face critic checks identity" if people
                                else "no people in the plan")
        s_score = score_at_least(s_global, LAYOUT_SSIM_LIMIT)
        e_score = score_at_least(e_corr, EDGE_CORR_LIMIT)
        evidence["scores"] = {"layout_ssim": round(s_score, 4), "edges": round(e_score, 4)}
        smap = ssim_map(go, gc)
        found = worst_region(np.clip((1 - smap) / 2, 0, 1) + diff, np.ones_like(go, dtype=bool))
        box = found[0] if found else None
        score = min(s_score, e_score)
        if score < 0.5:
            where = f", most at {describe_box(box, w, h)}" if box is not None else ""
            fb = (f"the edit changed the layout of the original (SSIM {s_global:.2f} vs limit {LAYOUT_SSIM_LIMIT:.2f}, "
                  f"edge correlation {e_corr:.2f} vs {EDGE_CORR_LIMIT:.2f}{where}): keep the composition of the "
                  "original and change only what was asked")
        else:
            fb = (f"the edit kept the layout of the original (SSIM {s_global:.2f}, edge correlation {e_corr:.2f})")
        return score, fb, box
