"""Edit-preservation critic: did an edit keep what it should and change what it should?

Applies when the plan edits an image (``plan.source``). The original is ``context.original`` or
``plan.source``, the mask ``context.mask`` or ``plan.mask``, both opened with ``context.store``.

Mask convention: **white (>= 128) = may change**. Accepted as L, 1, RGB or RGBA. An RGBA mask whose
alpha holds both 0 and 255 follows OpenAI's images/edits convention instead: **alpha 0 = edit area**
(the colour channels are then ignored); ``evidence["mask_convention"]`` says which was used.

With a mask (``mode="mask"``), on greyscale copies at a long side <= ``MAX_SIDE``:
- outside: the mask is dilated by ``SEAM_FRACTION`` of the long side (the blend seam of
  mask_blur / grow_mask_by) plus the SSIM window radius; over the rest the mean SSIM must be
  >= ``SSIM_OUTSIDE_LIMIT``, the mean absolute RGB difference <= ``COLOUR_OUTSIDE_LIMIT`` (SSIM
  ignores an overall colour shift) and at most ``CHANGED_OUTSIDE_FRACTION_LIMIT`` of the pixels
  may change visibly (a mean over a big outside dilutes a local change);
- inside: the mean absolute RGB difference must reach ``CHANGED_INSIDE_LIMIT`` or the share of
  visibly changed pixels ``CHANGED_FRACTION_LIMIT`` (a small object edited inside a big mask).
  Colour differences are measured between slightly blurred copies (``DIFF_BLUR``) so re-encoding
  noise is not mistaken for an edit.

Without a mask (``mode="global"``): the edit may change things but must keep the layout: SSIM at a
long side of ``GLOBAL_SIDE`` >= ``LAYOUT_SSIM_LIMIT`` and the correlation of the two edge maps
>= ``EDGE_CORR_LIMIT``. Identity of people is not judged here (the face critic does it).

Score: each measure is mapped piecewise-linearly so that **exactly 0.5 is at its limit**, 1.0 is
a perfect result and 0.0 the worst; the verdict's score is the lowest. The default threshold 0.5
therefore means "every measure within its limit"; a stricter threshold asks for a margin.

The original and the mask are decoded and prepared once per process (a 4-entry LRU keyed by file
path, hash, mtime and size): every candidate of a run compares with the same original.

A candidate of another size than the original is resized to it (noted: ``resized``); a mask of
another size than the original is bad input: a failing verdict with ``error``, never a crash.
Evidence includes a colour heat map of the difference (``diff_map``, stored with
``context.store.put_image``) and the most-changed region outside the mask (``worst_region``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import cv2
import numpy as np
from PIL import Image

from agent.runtime.images import flatten_rgb
from agent.models import Box, ImageRef, Plan, Verdict
from critics.base import CheckContext, CriticBase, CriticInfo

INFO = CriticInfo(
    threshold=0.5,
    threshold_source=(
        "each measure maps its limit to exactly 0.5 (outside-mask SSIM 0.95, colour shift 12/255, changed "
        "share 1%; layout SSIM 0.6, edge correlation 0.4), calibrated on skimage photos"
    ),
    description="an edit keeps what is outside its mask and changes what is inside",
    weight=2.0, measured=True, needs=("original",), on_by_default=True,
    strategies=("reprompt", "new_seed"),
)
"""What the loop knows about this critic (see `critics.base.CriticInfo`)."""

MAX_SIDE = 1024
"""Comparisons run on copies whose long side is at most this (cost: ~0.1 s per 1024x1024 pair)."""
SSIM_OUTSIDE_LIMIT = 0.95
"""Mean SSIM outside the (dilated) mask must reach this. Measured on skimage photos at 1024 px:
JPEG q50 / WebP q80 re-encoding, a 2x bicubic resample and a 1 px blur all stay >= 0.969 (q90: >= 0.993).
Not yet measured on real inpainting outputs (a VAE round trip); calibrate with bench data."""
COLOUR_OUTSIDE_LIMIT = 12 / 255
"""Mean (blurred) absolute RGB difference outside the mask above this (a visible colour grade:
brightness x1.25 on astronaut gives 0.095) fails; re-encoding stays <= 2/255."""
DIFF_BLUR = 2.0
"""Colour differences are taken between copies blurred with this sigma (work pixels): JPEG q30-q50 and
noise of sigma 12 then differ by <= 0.008 on average and by > 16/255 nowhere (skimage photos), while
the raw difference of a JPEG q50 re-encode is already 0.014-0.020 (~4-5/255)."""
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
REGION_SIDE = 256
"""worst_region is located on a copy with this long side."""
DIFF_MAP_SIDE = 512
"""The saved difference heat map has at most this long side."""
SEAM_FRACTION = 0.01
"""The mask is grown by this share of the long side (min 3 px) before judging the outside."""
SSIM_WINDOW = 7
"""SSIM window (skimage's default: uniform 7x7, sample covariance, K1=0.01, K2=0.03)."""
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
WORST_MIN_DISSIMILARITY = 0.02
"""Below this local dissimilarity ((1 - SSIM) / 2, smoothed) nothing outside the mask counts as changed."""


# --------------------------------------------------------------------------- pixels


def _rgb(image: Image.Image) -> np.ndarray:
    """uint8 RGB array; alpha is flattened onto white, palette/grey/16-bit converted."""
    return np.asarray(flatten_rgb(image))


def mask_edit_area(mask: Image.Image) -> tuple[np.ndarray, str]:
    """Boolean array (True = may change) and the convention used: 'alpha' or 'luminance'."""
    m = mask
    if m.mode == "P":
        m = m.convert("RGBA") if "transparency" in m.info else m.convert("L")
    if m.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(m.convert("RGBA"))
        alpha = rgba[:, :, 3]
        if alpha.size and int(alpha.min()) == 0 and int(alpha.max()) == 255:
            return alpha < 128, "alpha"
        m = Image.fromarray(np.ascontiguousarray(rgba[:, :, :3]), "RGB")
    if m.mode == "1":
        return np.asarray(m, dtype=bool), "luminance"
    if m.mode in ("I", "F") or m.mode.startswith("I;16"):
        a = np.asarray(m, dtype=np.float64)
        hi = float(a.max()) if a.size else 0.0
        return (a >= hi / 2) & (a > 0) if hi > 0 else np.zeros(a.shape, bool), "luminance"
    return np.asarray(m.convert("L")) >= 128, "luminance"


def _work_size(w: int, h: int, max_side: int) -> tuple[int, int]:
    s = min(1.0, max_side / max(w, h))
    return max(1, round(w * s)), max(1, round(h * s))


def _resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    shrinking = size[0] <= arr.shape[1] and size[1] <= arr.shape[0]
    return cv2.resize(arr, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def ssim_map(a: np.ndarray, b: np.ndarray, win: int = SSIM_WINDOW) -> np.ndarray:
    """Per-pixel SSIM of two float32 greyscale images in [0, 1].

    Same definition as ``skimage.metrics.structural_similarity(a, b, data_range=1, full=True)``
    (uniform window, sample covariance, reflected borders) but with OpenCV box filters, ~8x faster.
    """
    a = a.astype(np.float32, copy=False)
    b = b.astype(np.float32, copy=False)
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2
    k = (win, win)

    def f(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, cv2.CV_32F, k, normalize=True, borderType=cv2.BORDER_REFLECT)

    n = win * win
    cov = n / (n - 1)
    ux, uy = f(a), f(b)
    vx = cov * (f(a * a) - ux * ux)
    vy = cov * (f(b * b) - uy * uy)
    vxy = cov * (f(a * b) - ux * uy)
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return num / den


def _edge_map(grey: np.ndarray) -> np.ndarray:
    g = cv2.GaussianBlur(grey, (0, 0), 1.0)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.GaussianBlur(cv2.magnitude(gx, gy), (0, 0), 3.0)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel().astype(np.float64) - a.mean()
    b = b.ravel().astype(np.float64) - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if den < 1e-12:
        return 1.0 if float(np.abs(a).sum() + np.abs(b).sum()) < 1e-9 else 0.0
    return float((a * b).sum() / den)


# --------------------------------------------------------------------------- scoring


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


def worst_region(dissim: np.ndarray, valid: np.ndarray,
                 max_side: int = REGION_SIDE) -> tuple[tuple[int, int, int, int], float] | None:
    """Bounding box (x0 y0 x1 y1, in ``dissim``'s pixels) of the most-changed connected area where ``valid``.

    Runs on a copy downscaled to ``max_side``: the box is an area to point at, not a pixel-exact outline.
    """
    if not valid.any():
        return None
    h, w = dissim.shape
    s = min(1.0, max_side / max(h, w))
    small = (max(1, round(w * s)), max(1, round(h * s)))
    d = np.where(valid, dissim, 0).astype(np.float32)
    if s < 1.0:
        d = cv2.resize(d, small, interpolation=cv2.INTER_AREA)
        v = cv2.resize(valid.astype(np.uint8), small, interpolation=cv2.INTER_NEAREST) > 0
    else:
        v = valid
    r = max(1, round(max(small) / 64))
    d = cv2.blur(d, (2 * r + 1, 2 * r + 1))
    d[~v] = 0
    peak = float(d.max())
    if peak < WORST_MIN_DISSIMILARITY:
        return None
    hot = (d >= max(WORST_MIN_DISSIMILARITY, 0.4 * peak)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    if n <= 1:
        return None
    sums = np.bincount(labels.ravel(), weights=d.ravel(), minlength=n)
    sums[0] = -1
    k = int(np.argmax(sums))
    x, y, bw, bh = (int(v) for v in stats[k, :4])
    fx, fy = w / small[0], h / small[1]
    box = (int(x * fx), int(y * fy), min(w, int(np.ceil((x + bw) * fx))), min(h, int(np.ceil((y + bh) * fy))))
    return box, peak


def _where(box: tuple[int, int, int, int], w: int, h: int) -> str:
    x0, y0, x1, y1 = box
    return Box(x=min(1.0, x0 / w), y=min(1.0, y0 / h), w=max(1e-6, min(1.0, (x1 - x0) / w)),
               h=max(1e-6, min(1.0, (y1 - y0) / h))).describe()


def diff_heatmap(diff: np.ndarray, edit: np.ndarray | None, box: tuple[int, int, int, int] | None,
                 max_side: int = DIFF_MAP_SIDE) -> Image.Image:
    """RGB heat map of |candidate - original| (x4, inferno) at <= ``max_side``; mask outline white,
    worst region (in ``diff``'s pixels) green."""
    h, w = diff.shape
    s = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if s < 1.0:
        diff = cv2.resize(diff, size, interpolation=cv2.INTER_AREA)
    heat = np.clip(diff * (4.0 * 255.0), 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(heat, cv2.COLORMAP_INFERNO)
    if edit is not None and edit.any():
        e = cv2.resize(edit.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) if s < 1.0 else edit.astype(np.uint8)
        contours, _ = cv2.findContours(e, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(bgr, contours, -1, (255, 255, 255), 1)
    if box is not None:
        x0, y0, x1, y1 = (round(c * s) for c in box)
        cv2.rectangle(bgr, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), (0, 255, 0), 2)
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


_CACHE: OrderedDict[tuple, tuple] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4


def _cached(store: Any, ref: ImageRef, kind: str, size: tuple[int, int] | None, build) -> Any:
    """Per-process LRU of prepared originals/masks: every candidate of a run compares with the same
    original, so it is decoded and prepared once. Keyed by file path, hash, mtime and size, so a
    changed or deleted file is never served from the cache (a deleted one raises as before)."""
    path = store.path(ref)
    st = path.stat()
    key = (kind, str(path), ref.sha256, st.st_mtime_ns, st.st_size, size)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = build(store.open(ref))
    with _CACHE_LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def _prepare(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(blurred RGB for colour differences, float32 grey for SSIM) of a work-size RGB array."""
    return cv2.GaussianBlur(rgb, (0, 0), DIFF_BLUR), _grey(rgb)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # cached arrays are shared between threads and calls
    return a


def _prepare_original(im: Image.Image) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    blurred, grey = _prepare(np.ascontiguousarray(_resize(_rgb(im), _work_size(*im.size, MAX_SIDE))))
    return im.size, _readonly(blurred), _readonly(grey)


def _prepare_mask(im: Image.Image) -> tuple[tuple[int, int], np.ndarray, str]:
    edit, convention = mask_edit_area(im)
    return im.size, _readonly(np.ascontiguousarray(edit)), convention


def _colour_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean over channels of |a - b| in [0, 1], float32."""
    d = cv2.absdiff(a, b).astype(np.float32)
    return cv2.transform(d, np.full((1, 3), 1.0 / (3 * 255.0), np.float32))


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
        (ow, oh), ob, go = _cached(store, original_ref, "original", None, _prepare_original)
        cw, ch = image.size
        evidence.update(original_size=[ow, oh], candidate_size=[cw, ch])
        if cw == 0 or ch == 0:
            return 0.0, evidence, f"the edited image is empty ({cw}x{ch}): regenerate the edit", \
                f"candidate is {cw}x{ch}"
        size = _work_size(ow, oh, MAX_SIDE)

        edit_full: np.ndarray | None = None
        if mask_ref is not None:
            (mw, mh), edit_full, convention = _cached(store, mask_ref, "mask", None, _prepare_mask)
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
        cb, gc = _prepare(_resize(_rgb(image), size))
        # colour difference of lightly blurred copies: re-encoding noise averages out, real changes stay
        diff = _colour_diff(ob, cb)
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
            part = {"ssim": score_at_least(s_out, SSIM_OUTSIDE_LIMIT),
                    "colour": score_at_most(mad_out, COLOUR_OUTSIDE_LIMIT),
                    "local": score_at_most(frac_out, CHANGED_OUTSIDE_FRACTION_LIMIT)}
            found = worst_region(np.clip((1 - smap) / 2, 0, 1) + diff, outside)
            box = found[0] if found else None
        else:
            evidence["notes"] = ["the mask covers the whole image: nothing outside it to preserve"]
        out_score = min(part.values())
        evidence["scores"] = {"outside": round(out_score, 4), "inside": round(in_score, 4),
                              **{f"outside_{k}": round(v, 4) for k, v in part.items()}}

        where = _where(box, w, h) if box is not None else "outside the mask"
        if out_score <= in_score and out_score < 0.5:
            if frac_out > 0.2 and s_out >= 0.9:  # spread change with the structure kept: a colour grade
                fb = (f"the edit shifted the colours outside the mask (mean difference {mad_out:.1%}, limit "
                      f"{COLOUR_OUTSIDE_LIMIT:.1%}; {frac_out:.0%} of it visibly changed): keep everything outside "
                      "the mask unchanged")
            else:
                fb = (f"the edit changed the area outside the mask at {where} (SSIM {s_out:.3f}"
                      f"{' < ' if s_out < SSIM_OUTSIDE_LIMIT else ' >= '}{SSIM_OUTSIDE_LIMIT:.2f}, "
                      f"{frac_out:.1%} of it visibly changed): keep everything outside the mask unchanged")
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
        small = _work_size(w, h, GLOBAL_SIDE)
        so = cv2.GaussianBlur(_resize(go, small), (0, 0), LAYOUT_BLUR)
        sc = cv2.GaussianBlur(_resize(gc, small), (0, 0), LAYOUT_BLUR)
        s_global = float(ssim_map(so, sc).mean())
        edge_size = _work_size(w, h, EDGE_SIDE)
        e_corr = _corr(_edge_map(_resize(go, edge_size)), _edge_map(_resize(gc, edge_size)))
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
            where = f", most at {_where(box, w, h)}" if box is not None else ""
            fb = (f"the edit changed the layout of the original (SSIM {s_global:.2f} vs limit {LAYOUT_SSIM_LIMIT:.2f}, "
                  f"edge correlation {e_corr:.2f} vs {EDGE_CORR_LIMIT:.2f}{where}): keep the composition of the "
                  "original and change only what was asked")
        else:
            fb = (f"the edit kept the layout of the original (SSIM {s_global:.2f}, edge correlation {e_corr:.2f})")
        return score, fb, box


__all__ = ["PreservationCritic", "mask_edit_area", "ssim_map", "score_at_least", "score_at_most", "worst_region"]
